# Sources of the orchestrator bake on aws: one amazon-ebs source per architecture of the role's instance types.
# IMDSv2 only (metadata_options, imds_support: amazon plugin 1.2.2 or later), tagged run, AMI and snapshots.
# The launch volume is encrypted, so the AMI's snapshots are too: no encrypt_boot (it would copy the AMI again).
# The temporary security group opens SSH to this builder's public address only, not to 0.0.0.0/0.
# Rendered by imgtool from templates/packer/sources-aws.pkr.hcl.hbs: do not edit.

locals {
  name_prefix = "bench-orchestrator"
  description = "imgtool bench orchestrator"
  tags = {
    Name                   = "${local.name_prefix}-${var.version}"
    "imgtool:pipeline"     = "bench"
    "imgtool:role"         = "orchestrator"
    "imgtool:version"      = var.version
    "imgtool:inputs-hash"  = var.inputs_hash
    "imgtool:git-revision" = var.git_revision
  }
}

source "amazon-ebs" "x86_64" {
  region            = "us-east-1"
  instance_type     = "t3.medium"
  ami_name          = "${local.name_prefix}-${var.version}-x86_64"
  ami_description   = "${local.description} ${var.version} (x86_64)"
  ssh_username      = "ec2-user"
  shutdown_behavior = "terminate"
  imds_support      = "v2.0"
  # The subnet (empty: the default VPC's) is a value of this build, not of the image: it stays out of the inputs
  # hash. Packer connects by SSH from where it runs: a public address even where the subnet assigns none.
  subnet_id                   = var.subnet_id
  associate_public_ip_address = var.subnet_id == "" ? null : true

  temporary_security_group_source_public_ip = true

  source_ami_filter {
    owners      = ["amazon"]
    most_recent = true
    filters = {
      name                = "al2023-ami-2023.*-kernel-6.1-x86_64"
      architecture        = "x86_64"
      virtualization-type = "hvm"
      root-device-type    = "ebs"
    }
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 2
  }

  launch_block_device_mappings {
    device_name           = "/dev/xvda"
    volume_size           = 30
    volume_type           = "gp3"
    iops                  = 3000
    throughput            = 125
    encrypted             = true
    delete_on_termination = true
  }

  run_tags        = merge(local.tags, { "imgtool:arch" = "x86_64" })
  run_volume_tags = merge(local.tags, { "imgtool:arch" = "x86_64" })
  tags            = merge(local.tags, { "imgtool:arch" = "x86_64" })
  snapshot_tags   = merge(local.tags, { "imgtool:arch" = "x86_64" })
}
