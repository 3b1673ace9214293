/** `imgtool iam-policy --for ACTOR`: a least-privilege policy document for one actor of the pipeline. */
import { stackRepositories } from "../../bake/stack-images.js";
import { policyFor, type Actor } from "../../iam/policies.js";
import type { Context, GlobalArgs } from "../context.js";

export async function iamPolicy(ctx: Context, args: GlobalArgs & { for: Actor }): Promise<number> {
  // The bake's policy names the stacks' third-party repositories, read from their compose files.
  const doc = policyFor(args.for, ctx.config, {
    stackRepositories: args.for === "bake" ? await stackRepositories(ctx.config) : [],
  });
  // The document is the result in both modes: it is what `aws iam put-role-policy --policy-document` takes.
  ctx.out.result(doc, () => JSON.stringify(doc, null, 2));
  return 0;
}
