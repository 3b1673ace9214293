/**
 * SSM Run Command's size limits, as AWS documents them, and imgtool's measure of a command against them. Pure
 * (no SDK), so config checks and the renderers can use them.
 *
 * - GetCommandInvocation's `StandardOutputContent` holds "the first 24,000 characters written by the plugin to
 *   stdout", `StandardErrorContent` "the first 8,000 characters written ... to stderr" (the rest only in S3 or
 *   CloudWatch, which imgtool does not use). A script whose report is its last line must keep its output short.
 * - SendCommand answers `MaxDocumentSizeExceeded` ("The size limit of a document is 64 KB."). The command's
 *   parameters are substituted into the AWS-RunShellScript document, so imgtool keeps the parameters (as the
 *   JSON the request carries, in UTF-8 bytes) under 64 KB less an allowance for the document's own text.
 */

/** GetCommandInvocation's StandardOutputContent: the first this many characters of stdout. */
export const RUN_COMMAND_STDOUT_MAX_CHARS = 24_000;
/** GetCommandInvocation's StandardErrorContent: the first this many characters of stderr. */
export const RUN_COMMAND_STDERR_MAX_CHARS = 8_000;
/** SendCommand's MaxDocumentSizeExceeded: a document may have at most 64 KB. */
export const RUN_COMMAND_DOCUMENT_MAX_BYTES = 64 * 1024;
/** What the AWS-RunShellScript document's own text may take of it (its text is about 1.3 KB; kept generous). */
export const RUN_SHELL_DOCUMENT_ALLOWANCE_BYTES = 4 * 1024;
/** The most a command's parameters (JSON, UTF-8) may have. */
export const RUN_COMMAND_PARAMETERS_MAX_BYTES =
  RUN_COMMAND_DOCUMENT_MAX_BYTES - RUN_SHELL_DOCUMENT_ALLOWANCE_BYTES;

/** The parameters imgtool sends with AWS-RunShellScript. */
export function runShellParameters(script: string[], timeoutSeconds: number): Record<string, string[]> {
  return { commands: script, executionTimeout: [String(timeoutSeconds)] };
}

/** The size of a command's parameters as the request carries them: the UTF-8 bytes of their JSON. */
export function runCommandParametersBytes(parameters: Record<string, string[]>): number {
  return Buffer.byteLength(JSON.stringify(parameters), "utf8");
}

/** The size of the command that runs `script`, to compare with {@link RUN_COMMAND_PARAMETERS_MAX_BYTES}. */
export function runShellCommandBytes(script: string[], timeoutSeconds: number): number {
  return runCommandParametersBytes(runShellParameters(script, timeoutSeconds));
}
