// The one ruby-bench ref resolver (src/git.ts), against real git repositories: branches before tags of the same
// name, commit ids verified, and a ref that names nothing a usage error naming the config key and the value.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { pathToFileURL } from "node:url";
import { UsageError } from "../src/errors.js";
import { resolveRubyBenchRef } from "../src/git.js";
import { git, makeBenchRepo } from "./support/fixtures/bench-repo.js";

const local = (repository: string, ref: string) => ({ repository, ref, localPath: repository });

describe("resolveRubyBenchRef", () => {
  test("a branch wins over a tag of the same name; a tag alone resolves to its commit (peeled)", async () => {
    const repo = makeBenchRepo();
    // An annotated tag named like the branch `other`, on main's commit.
    git(repo.path, "tag", "-a", "-m", "same name", "other", repo.commit);
    assert.notEqual(repo.commit, repo.otherCommit);
    assert.equal(await resolveRubyBenchRef("task-runner", local(repo.path, "other")), repo.otherCommit);
    git(repo.path, "tag", "-a", "-m", "annotated", "v2", repo.otherCommit);
    assert.equal(await resolveRubyBenchRef("task-runner", local(repo.path, "v2")), repo.otherCommit);
  });

  test("a full commit id is verified: one the repository has resolves, another is a usage error", async () => {
    const repo = makeBenchRepo();
    assert.equal(
      await resolveRubyBenchRef("orchestrator", local(repo.path, repo.otherCommit)),
      repo.otherCommit,
    );
    const missing = "0123456789abcdef0123456789abcdef01234567";
    await assert.rejects(
      resolveRubyBenchRef("orchestrator", local(repo.path, missing)),
      (e: unknown) =>
        e instanceof UsageError &&
        e.exitCode === 2 &&
        e.message.startsWith(`roles.orchestrator.ruby_bench.ref: "${missing}"`),
    );
    // A remote (here a file:// URL given as a remote: no local path) is looked up in a temporary mirror.
    const url = pathToFileURL(repo.path).href;
    assert.equal(
      await resolveRubyBenchRef("task-runner", { repository: url, ref: repo.otherCommit }),
      repo.otherCommit,
    );
    await assert.rejects(
      resolveRubyBenchRef("task-runner", { repository: url, ref: missing }),
      /roles\.task-runner\.ruby_bench\.ref: "0123456789abcdef/,
    );
  });

  test("a ref that names nothing is a usage error (exit 2) naming roles.<role>.ruby_bench.ref and the value", async () => {
    const repo = makeBenchRepo();
    await assert.rejects(
      resolveRubyBenchRef("task-runner", local(repo.path, "no-such-branch")),
      (e: unknown) =>
        e instanceof UsageError &&
        e.exitCode === 2 &&
        e.message.includes('roles.task-runner.ruby_bench.ref: "no-such-branch"') &&
        /roles\.task-runner\.ruby_bench\.ref/.test(e.fix ?? ""),
    );
    await assert.rejects(
      resolveRubyBenchRef("orchestrator", local("/nonexistent/ruby-bench", "main")),
      (e: unknown) =>
        e instanceof UsageError &&
        e.message.startsWith("roles.orchestrator.ruby_bench.repository: cannot read"),
    );
  });
});
