/** The aws target's bake steps over EC2: base lookup, wait + tag, copy to other regions. */
import type { Config } from "../config/load.js";
import type { Arch, Role } from "../config/schema.js";
import { UsageError } from "../errors.js";
import type { EventSink } from "../events.js";
import type { Ec2Images, WaitOptions } from "../aws/ec2.js";
import type { AwsBakeOps } from "./bake.js";

export function makeAwsBakeOps(opts: {
  config: Config;
  ec2: (region: string) => Promise<Ec2Images>;
  events: EventSink;
  wait?: WaitOptions;
}): AwsBakeOps {
  const { config } = opts;
  const home = config.aws.regions[0]!;
  return {
    async resolveBase(role: Role, arch: Arch) {
      const b = config.roles[role].base.aws;
      const image = await (await opts.ec2(home)).newest(b.owner, b.name[arch], arch);
      if (!image?.ImageId) {
        throw new UsageError(
          `No ${arch} base AMI matches roles.${role}.base.aws (owner ${b.owner}, name ${JSON.stringify(b.name[arch])}) in ${home}.`,
          {
            fix: `Check roles.${role}.base.aws.owner and .name.${arch}; \`aws ec2 describe-images --owners ${b.owner} --filters Name=name,Values='${b.name[arch]}'\` shows what exists.`,
          },
        );
      }
      return image.ImageId;
    },
    async finish(region, imageId, tags) {
      const ec2 = await opts.ec2(region);
      opts.events({ type: "check", message: `waiting for ${imageId} in ${region} to be available` });
      const image = await ec2.waitAvailable(imageId, opts.wait);
      await ec2.tagWithSnapshots(image, tags);
    },
    async copy(fromRegion, imageId, toRegion, name, token, tags) {
      const ec2 = await opts.ec2(toRegion);
      const copyId = await ec2.copyFrom(fromRegion, imageId, name, token);
      const image = await ec2.waitAvailable(copyId, opts.wait);
      await ec2.tagWithSnapshots(image, tags);
      return copyId;
    },
  };
}
