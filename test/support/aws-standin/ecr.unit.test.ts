/**
 * The AWS stand-in's ECR: repositories, images, manifests, lifecycle policies, authorization tokens.
 * Every operation goes through the real SDK clients made by the project's client factory (see self-test.ts).
 */
import { test, describe } from "node:test";
import {
  CreateRepositoryCommand,
  DescribeImagesCommand as EcrDescribeImagesCommand,
  DescribeRepositoriesCommand,
  GetAuthorizationTokenCommand,
  GetLifecyclePolicyCommand,
  PutImageCommand,
  PutLifecyclePolicyCommand,
} from "@aws-sdk/client-ecr";
import { makeAwsClients } from "../../../src/aws/clients.js";
import assert from "node:assert/strict";
import { startAwsStandin } from "./index.js";
import { REGION, standin, clients, rejectsWith, sha256, manifest, useStandin } from "./self-test.js";

useStandin();

// ---------------------------------------------------------------- ECR

describe("ECR", () => {
  test("GetAuthorizationToken answers the configured registry and token lifetime", async () => {
    const fixed = new Date("2026-01-01T00:00:00.000Z");
    const own = await startAwsStandin({
      accountId: "210987654321",
      registry: { endpoint: "http://127.0.0.1:5999", user: "AWS", password: "pa55:word" },
      tokenTtlSeconds: 600,
      now: () => fixed,
    });
    try {
      const ecr = makeAwsClients({
        region: REGION,
        endpoint: own.endpoint,
        credentials: async () => ({ accessKeyId: "AKIDTEST", secretAccessKey: "secret" }),
        retryBaseDelayMs: 5,
      }).ecr;
      const out = await ecr.send(new GetAuthorizationTokenCommand({}));
      const data = out.authorizationData?.[0];
      assert.equal(data?.proxyEndpoint, "http://127.0.0.1:5999");
      assert.equal(Buffer.from(data?.authorizationToken ?? "", "base64").toString(), "AWS:pa55:word");
      assert.equal(data?.expiresAt?.toISOString(), "2026-01-01T00:10:00.000Z");
      const repo = await ecr.send(new CreateRepositoryCommand({ repositoryName: "bench" }));
      assert.equal(repo.repository?.repositoryUri, "127.0.0.1:5999/bench");
      assert.equal(repo.repository?.registryId, "210987654321");
      ecr.destroy();
    } finally {
      await own.close();
    }
  });

  test("CreateRepository settings, RepositoryAlreadyExistsException, DescribeRepositories", async () => {
    const ecr = clients().ecr;
    const created = await ecr.send(
      new CreateRepositoryCommand({
        repositoryName: "bench/ruby",
        imageTagMutability: "IMMUTABLE",
        imageScanningConfiguration: { scanOnPush: true },
        encryptionConfiguration: { encryptionType: "KMS", kmsKey: "alias/ecr" },
      }),
    );
    assert.equal(
      created.repository?.repositoryArn,
      "arn:aws:ecr:us-east-1:123456789012:repository/bench/ruby",
    );
    assert.equal(
      created.repository?.repositoryUri,
      "123456789012.dkr.ecr.us-east-1.amazonaws.com/bench/ruby",
    );
    assert.equal(created.repository?.imageTagMutability, "IMMUTABLE");
    assert.equal(created.repository?.imageScanningConfiguration?.scanOnPush, true);
    assert.deepEqual(created.repository?.encryptionConfiguration, {
      encryptionType: "KMS",
      kmsKey: "alias/ecr",
    });
    assert.ok(created.repository?.createdAt instanceof Date);
    await rejectsWith(
      ecr.send(new CreateRepositoryCommand({ repositoryName: "bench/ruby" })),
      "RepositoryAlreadyExistsException",
    );
    await rejectsWith(
      ecr.send(new CreateRepositoryCommand({ repositoryName: "Bad_Name!" })),
      "InvalidParameterException",
    );
    await ecr.send(new CreateRepositoryCommand({ repositoryName: "bench/base" }));
    const named = await ecr.send(new DescribeRepositoriesCommand({ repositoryNames: ["bench/ruby"] }));
    assert.deepEqual(
      named.repositories?.map((r) => r.repositoryName),
      ["bench/ruby"],
    );
    const all = await ecr.send(new DescribeRepositoriesCommand({}));
    assert.equal(all.repositories?.length, 2);
    await rejectsWith(
      ecr.send(new DescribeRepositoriesCommand({ repositoryNames: ["nope"] })),
      "RepositoryNotFoundException",
      /nope/,
    );
  });

  test("DescribeImages by tag and digest, every page; operations imgtool never calls are unknown", async () => {
    const ecr = clients().ecr;
    await ecr.send(new CreateRepositoryCommand({ repositoryName: "app" }));
    const m1 = manifest(1);
    standin.addEcrImage(REGION, "app", { digest: sha256(m1), tags: ["v1"], manifest: m1 });
    standin.addEcrImage(REGION, "app", {
      digest: `sha256:${"a".repeat(64)}`,
      tags: ["seeded"],
      sizeBytes: 1234,
    });

    const byTag = await ecr.send(
      new EcrDescribeImagesCommand({ repositoryName: "app", imageIds: [{ imageTag: "v1" }] }),
    );
    const detail = byTag.imageDetails?.[0];
    assert.equal(detail?.imageDigest, sha256(m1));
    assert.deepEqual(detail?.imageTags, ["v1"]);
    assert.ok(detail?.imagePushedAt instanceof Date);
    const byDigest = await ecr.send(
      new EcrDescribeImagesCommand({
        repositoryName: "app",
        imageIds: [{ imageDigest: `sha256:${"a".repeat(64)}` }],
      }),
    );
    assert.equal(byDigest.imageDetails?.[0]?.imageSizeInBytes, 1234);
    const all = await ecr.send(new EcrDescribeImagesCommand({ repositoryName: "app" }));
    assert.equal(all.imageDetails?.length, 2);
    await rejectsWith(
      ecr.send(
        new EcrDescribeImagesCommand({
          repositoryName: "app",
          imageIds: [{ imageTag: "v1" }, { imageTag: "nope" }],
        }),
      ),
      "ImageNotFoundException",
      /nope/,
    );
    await rejectsWith(
      ecr.send(new EcrDescribeImagesCommand({ repositoryName: "zzz" })),
      "RepositoryNotFoundException",
    );
    // By digest (what the launch's registry check asks): a digest the repository lacks is named.
    await rejectsWith(
      ecr.send(
        new EcrDescribeImagesCommand({
          repositoryName: "app",
          imageIds: [{ imageDigest: `sha256:${"c".repeat(64)}` }],
        }),
      ),
      "ImageNotFoundException",
      new RegExp(`imageDigest:'sha256:${"c".repeat(64)}'.*repository with name 'app'`),
    );
    // registryId: this account's is the default; another account's registry holds none of these repositories.
    const own = await ecr.send(
      new EcrDescribeImagesCommand({
        repositoryName: "app",
        registryId: "123456789012",
        imageIds: [{ imageTag: "v1" }],
      }),
    );
    assert.equal(own.imageDetails?.length, 1);
    await rejectsWith(
      ecr.send(new EcrDescribeImagesCommand({ repositoryName: "app", registryId: "999999999999" })),
      "RepositoryNotFoundException",
      /registry with id '999999999999'/,
    );
    await rejectsWith(
      ecr.send(new EcrDescribeImagesCommand({ repositoryName: "app", registryId: "12345" })),
      "InvalidParameterException",
      /registryId/,
    );
    // Pushes go through the registry, not the API: the stand-in has no PutImage (nor BatchGetImage, ...).
    await rejectsWith(
      ecr.send(new PutImageCommand({ repositoryName: "app", imageManifest: m1, imageTag: "v2" })),
      "UnknownOperationException",
    );
  });

  test("lifecycle policy", async () => {
    const ecr = clients().ecr;
    await ecr.send(new CreateRepositoryCommand({ repositoryName: "policy" }));
    await rejectsWith(
      ecr.send(new GetLifecyclePolicyCommand({ repositoryName: "policy" })),
      "LifecyclePolicyNotFoundException",
    );
    const text = JSON.stringify({
      rules: [
        {
          rulePriority: 1,
          selection: {
            tagStatus: "untagged",
            countType: "sinceImagePushed",
            countUnit: "days",
            countNumber: 7,
          },
          action: { type: "expire" },
        },
      ],
    });
    const put = await ecr.send(
      new PutLifecyclePolicyCommand({ repositoryName: "policy", lifecyclePolicyText: text }),
    );
    assert.equal(put.lifecyclePolicyText, text);
    const got = await ecr.send(new GetLifecyclePolicyCommand({ repositoryName: "policy" }));
    assert.equal(got.lifecyclePolicyText, text);
    await rejectsWith(
      ecr.send(new PutLifecyclePolicyCommand({ repositoryName: "policy", lifecyclePolicyText: "{not json" })),
      "InvalidParameterException",
    );
  });
});
