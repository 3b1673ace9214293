# Source of the task-runner bake on local: the Docker twin, a container of the local base image committed as an
# image whose entrypoint (imgtool-boot) starts its Docker engine the way systemd does on the AMI.
# Rendered by imgtool from templates/packer/sources-local.pkr.hcl.hbs: do not edit.

source "docker" "twin" {
  image  = "imgtool/base:bookworm"
  pull   = false
  commit = true
  # Packer's default run command plus the run's owner label: a run killed mid-build leaves a container that
  # `imgtool doctor` finds and `imgtool prune --leftovers` removes.
  run_command = ["-d", "-i", "-t", "--label", "imgtool.owner=${var.run_id}", "--entrypoint=/bin/sh", "--", "{{.Image}}"]
  changes = [
    "ENTRYPOINT [\"/usr/local/sbin/imgtool-boot\"]",
    "CMD [\"sleep\", \"infinity\"]",
    "LABEL org.imgtool.pipeline=\"bench\" org.imgtool.role=\"task-runner\"",
  ]
}
