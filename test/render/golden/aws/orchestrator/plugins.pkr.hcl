# Packer plugins of the orchestrator bake on aws, for `packer init` (Packer 1.7 or later). Kept in a file of its
# own: Packer before 1.7 does not know this block, and everything else validates without it.
# Rendered by imgtool from templates/packer/plugins.pkr.hcl.hbs and packer/versions.json: do not edit.

packer {
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = "= 1.3.9"
    }
  }
}
