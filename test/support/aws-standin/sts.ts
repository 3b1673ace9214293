/**
 * STS (awsQuery protocol, XML answers) operations of the AWS stand-in: GetCallerIdentity.
 */
import type { QueryParams } from "./params.js";
import type { HandlerContext } from "./state.js";
import type { XmlObject } from "./xml.js";

/** Returns the children of `<ActionResult>`. */
export type StsHandler = (ctx: HandlerContext, params: QueryParams) => XmlObject;

export function callerArn(accountId: string): string {
  return `arn:aws:iam::${accountId}:user/standin`;
}

export const stsHandlers: Readonly<Record<string, StsHandler>> = {
  GetCallerIdentity: (ctx) => ({
    Arn: callerArn(ctx.options.accountId),
    UserId: "AIDASTANDINEXAMPLE01",
    Account: ctx.options.accountId,
  }),
};
