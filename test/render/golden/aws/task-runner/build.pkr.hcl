# The task-runner bake on aws: one shell provisioner per script, in order, so that a failure names its step;
# then the manifest post-processor, the one place imgtool reads the AMI ID from.
# The scripts read their inputs from build.env (shell words rendered by imgtool): no value from the config is
# handed to Packer's environment_vars, which Packer quotes and template-expands itself.
# Rendered by imgtool from templates/packer/build.pkr.hcl.hbs: do not edit.

locals {
  # Where every step finds the shared helpers and the bake's values.
  step_env = ["IMGTOOL_COMMON=/tmp/imgtool-lib/common.sh", "IMGTOOL_ENV_FILE=/tmp/imgtool-build.env"]
  # Packer writes environment_vars to a file (not onto a command line); sudo runs the step as root.
  execute_command = "chmod +x {{ .Path }}; sudo -n sh -c '. {{ .EnvVarFile }} && exec {{ .Path }}'"
}

build {
  name    = "imgtool"
  sources = ["source.amazon-ebs.x86_64"]

  provisioner "shell" {
    inline = ["mkdir -p /tmp/imgtool-lib"]
  }

  provisioner "file" {
    source      = "scripts/lib/"
    destination = "/tmp/imgtool-lib/"
  }

  provisioner "file" {
    source      = "build.env"
    destination = "/tmp/imgtool-build.env"
  }

  provisioner "shell" {
    script           = "scripts/update-os.sh"
    environment_vars = concat(local.step_env, ["IMGTOOL_STEP=update-os"])
    use_env_var_file = true
    execute_command  = local.execute_command
  }

  provisioner "shell" {
    script           = "scripts/install-packages.sh"
    environment_vars = concat(local.step_env, ["IMGTOOL_STEP=install-packages"])
    use_env_var_file = true
    execute_command  = local.execute_command
  }

  provisioner "shell" {
    script           = "scripts/install-docker.sh"
    environment_vars = concat(local.step_env, ["IMGTOOL_STEP=install-docker"])
    use_env_var_file = true
    execute_command  = local.execute_command
  }

  provisioner "shell" {
    script           = "scripts/install-stack.sh"
    environment_vars = concat(local.step_env, ["IMGTOOL_STEP=install-stack"])
    use_env_var_file = true
    execute_command  = local.execute_command
  }

  provisioner "shell" {
    script           = "scripts/configure-cloud-init.sh"
    environment_vars = concat(local.step_env, ["IMGTOOL_STEP=configure-cloud-init"])
    use_env_var_file = true
    execute_command  = local.execute_command
  }

  provisioner "shell" {
    script           = "scripts/install-ruby.sh"
    environment_vars = concat(local.step_env, ["IMGTOOL_STEP=install-ruby"])
    use_env_var_file = true
    execute_command  = local.execute_command
  }

  provisioner "shell" {
    script           = "scripts/install-ruby-bench.sh"
    environment_vars = concat(local.step_env, ["IMGTOOL_STEP=install-ruby-bench"])
    use_env_var_file = true
    execute_command  = local.execute_command
  }

  provisioner "shell" {
    script           = "scripts/preload-image.sh"
    environment_vars = concat(local.step_env, ["IMGTOOL_STEP=preload-image"])
    use_env_var_file = true
    execute_command  = local.execute_command
  }

  provisioner "shell" {
    script           = "scripts/configure-cpu.sh"
    environment_vars = concat(local.step_env, ["IMGTOOL_STEP=configure-cpu"])
    use_env_var_file = true
    execute_command  = local.execute_command
  }

  provisioner "shell" {
    script           = "scripts/cleanup.sh"
    environment_vars = concat(local.step_env, ["IMGTOOL_STEP=cleanup"])
    use_env_var_file = true
    execute_command  = local.execute_command
  }

  provisioner "shell" {
    script           = "scripts/validate.sh"
    environment_vars = concat(local.step_env, ["IMGTOOL_STEP=validate"])
    use_env_var_file = true
    execute_command  = local.execute_command
  }

  provisioner "shell" {
    script = "scripts/write-manifest.sh"
    environment_vars = concat(local.step_env, [
      "IMGTOOL_STEP=write-manifest",
      "IMGTOOL_VERSION_B64=${base64encode(var.version)}",
      "IMGTOOL_INPUTS_HASH_B64=${base64encode(var.inputs_hash)}",
      "IMGTOOL_GIT_REVISION_B64=${base64encode(var.git_revision)}",
    ])
    use_env_var_file = true
    execute_command  = local.execute_command
  }

  # The version manifest that write-manifest.sh wrote, next to packer-manifest.json.
  provisioner "file" {
    direction   = "download"
    source      = "/etc/imgtool/manifest.json"
    destination = "version-manifest.json"
  }

  provisioner "shell" {
    inline = ["rm -rf /tmp/imgtool-lib /tmp/imgtool-build.env"]
  }

  post-processor "manifest" {
    output     = "packer-manifest.json"
    strip_path = true
    custom_data = {
      pipeline     = "bench"
      role         = "task-runner"
      target       = "aws"
      version      = var.version
      inputs_hash  = var.inputs_hash
      git_revision = var.git_revision
    }
  }
}
