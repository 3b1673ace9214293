# Variables of the orchestrator bake on aws. Their values for one build are in imgtool.pkrvars.hcl: they name
# the build but do not shape it, so they stay out of the inputs hash.
# Rendered by imgtool from templates/packer/variables.pkr.hcl.hbs: do not edit.

variable "version" {
  type        = string
  description = "Version name, e.g. v20261129-171500-1a2b3c4d: in the artefact's name, tags and manifest."
}

variable "inputs_hash" {
  type        = string
  description = "Hash of everything that shapes the bake (these files, the base, the ruby-bench commit)."
}

variable "git_revision" {
  type        = string
  description = "Git revision of imgtool that rendered this bake."
}

variable "run_id" {
  type        = string
  description = "The imgtool run that bakes (its record is <state>/runs/<run_id>): labels what the builder makes."
}

variable "subnet_id" {
  type        = string
  description = "Subnet of the build instance: aws.bake_subnet_id, else aws.subnet_id; empty: the default VPC's."
  default     = ""
}
