/** Names of SSM Run Command that the IAM policies need without loading the SDK. */
export const RUN_SHELL_DOCUMENT = "AWS-RunShellScript";
