/**
 * The narrow ECR interface: only the calls imgtool makes, typed with the SDK's own input and output
 * shapes, so flows can be handed the real client or a stand-in. `ecrApi()` imports the SDK: load this
 * module lazily; flows import only its types.
 */
import {
  BatchGetRepositoryScanningConfigurationCommand,
  CreateRepositoryCommand,
  DescribeImagesCommand,
  DescribeRepositoriesCommand,
  GetAuthorizationTokenCommand,
  GetLifecyclePolicyCommand,
  PutLifecyclePolicyCommand,
  type BatchGetRepositoryScanningConfigurationCommandInput,
  type BatchGetRepositoryScanningConfigurationCommandOutput,
  type CreateRepositoryCommandInput,
  type CreateRepositoryCommandOutput,
  type DescribeImagesCommandInput,
  type DescribeImagesCommandOutput,
  type DescribeRepositoriesCommandInput,
  type DescribeRepositoriesCommandOutput,
  type ECRClient,
  type GetAuthorizationTokenCommandInput,
  type GetAuthorizationTokenCommandOutput,
  type GetLifecyclePolicyCommandInput,
  type GetLifecyclePolicyCommandOutput,
  type PutLifecyclePolicyCommandInput,
  type PutLifecyclePolicyCommandOutput,
} from "@aws-sdk/client-ecr";

export interface EcrApi {
  describeRepositories(input: DescribeRepositoriesCommandInput): Promise<DescribeRepositoriesCommandOutput>;
  createRepository(input: CreateRepositoryCommandInput): Promise<CreateRepositoryCommandOutput>;
  getLifecyclePolicy(input: GetLifecyclePolicyCommandInput): Promise<GetLifecyclePolicyCommandOutput>;
  putLifecyclePolicy(input: PutLifecyclePolicyCommandInput): Promise<PutLifecyclePolicyCommandOutput>;
  describeImages(input: DescribeImagesCommandInput): Promise<DescribeImagesCommandOutput>;
  getAuthorizationToken(
    input: GetAuthorizationTokenCommandInput,
  ): Promise<GetAuthorizationTokenCommandOutput>;
  /** The scanning in effect for repositories: the repository's own, or the registry's rules (basic or enhanced). */
  batchGetRepositoryScanningConfiguration(
    input: BatchGetRepositoryScanningConfigurationCommandInput,
  ): Promise<BatchGetRepositoryScanningConfigurationCommandOutput>;
}

/** {@link EcrApi} over an SDK client (from src/aws/clients.ts). */
export function ecrApi(client: ECRClient): EcrApi {
  return {
    describeRepositories: (i) => client.send(new DescribeRepositoriesCommand(i)),
    createRepository: (i) => client.send(new CreateRepositoryCommand(i)),
    getLifecyclePolicy: (i) => client.send(new GetLifecyclePolicyCommand(i)),
    putLifecyclePolicy: (i) => client.send(new PutLifecyclePolicyCommand(i)),
    describeImages: (i) => client.send(new DescribeImagesCommand(i)),
    getAuthorizationToken: (i) => client.send(new GetAuthorizationTokenCommand(i)),
    batchGetRepositoryScanningConfiguration: (i) =>
      client.send(new BatchGetRepositoryScanningConfigurationCommand(i)),
  };
}
