/** `imgtool doctor`: one line per part, with version, state and the command that fixes it. */
import { runDoctor } from "../../doctor/doctor.js";
import { doctorInput } from "../../doctor/input.js";
import type { Context, GlobalArgs } from "../context.js";
import { table } from "../output.js";

export async function doctor(ctx: Context, _args: GlobalArgs): Promise<number> {
  const input = doctorInput({
    config: ctx.config,
    target: ctx.target,
    stack: ctx.deps.stack(),
    ...(ctx.target === "aws" ? { region: ctx.region } : {}),
  });
  const checks = await runDoctor(input, ctx.deps.doctorProbes());
  const ok = checks.every((c) => c.ok);
  ctx.out.result(
    { target: ctx.target, ok, checks },
    () =>
      table(
        ["PART", "VERSION", "STATE", "FIX"],
        checks.map((c) => [c.part, c.version ?? "-", c.ok ? c.state : `FAIL ${c.state}`, c.fix ?? ""]),
      ) + `\n${ok ? "All parts ok." : "Some parts need attention: run the FIX commands above."}`,
  );
  return ok ? 0 : 1;
}
