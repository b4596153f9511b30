# Keys as Terraform resources, next to the stack that serves them (../basic deploys it; its
# `management_api_url` output is this configuration's endpoint). A sharing group, a preset and
# two keys whose secrets go to AWS Secrets Manager: the secrets never enter this state or a plan.
#
#   export KEYWARD_ENDPOINT=$(terraform -chdir=../basic output -raw management_api_url)
#   export KEYWARD_API_KEY=...   # an admin key (admin on keys/**), never in a .tf file
#   terraform plan && terraform apply
#
# The provider is terraform-provider-keyward (crates/terraform-provider; docs/terraform.md says
# how to install it, or to load a local build with dev_overrides).

terraform {
  required_version = ">= 1.11.0"

  required_providers {
    keyward = {
      source = "keyward/keyward"
    }
  }
}

# endpoint and api_key come from KEYWARD_ENDPOINT and KEYWARD_API_KEY.
provider "keyward" {}

variable "secret_prefix" {
  description = "Prefix of the Secrets Manager secrets the keys' secrets go to."
  type        = string
  default     = "keyward/keys"
}

variable "ci_generation" {
  description = "The CI key's secret generation: raise it to rotate the secret (the old one keeps verifying for an hour)."
  type        = number
  default     = 1
}

resource "keyward_sharing_group" "platform" {
  name        = "platform-team"
  description = "Owns what CI creates"
}

resource "keyward_preset" "ci_runner" {
  name        = "ci-runner"
  description = "What a CI job runs with"
  scopes      = ["agent:executor", "project:viewer"]
}

resource "keyward_api_key" "ci" {
  name                  = "ci-nightly"
  description           = "Nightly evals from CI"
  preset                = keyward_preset.ci_runner.name
  scopes                = ["read:projects/*"]
  workspaces            = ["ws_1"]
  groups                = [keyward_sharing_group.platform.name]
  allowed_cidrs         = ["10.0.0.0/8"]
  rate_limit_per_minute = 120
  metadata              = { team = "platform" }
  generation            = var.ci_generation
  grace_period_seconds  = 3600

  secret = {
    sink      = "aws-secretsmanager"
    secret_id = "${var.secret_prefix}/ci-nightly"
  }
}

resource "keyward_api_key" "deploy" {
  name   = "deploy-bot"
  scopes = ["agent:editor"]
  groups = [keyward_sharing_group.platform.name]

  secret = {
    sink      = "aws-secretsmanager"
    secret_id = "${var.secret_prefix}/deploy-bot"
  }
}

data "keyward_presets" "all" {
  depends_on = [keyward_preset.ci_runner]
}

output "keys" {
  description = "Each key's id and how its secret is recognised (start…last4): never the secret."
  value = {
    for k in [keyward_api_key.ci, keyward_api_key.deploy] :
    k.name => { id = k.id, shown = "${k.start}…${k.last4}", status = k.status }
  }
}

output "ci_secret_arn_hint" {
  description = "Where the CI key's secret is (read it with aws secretsmanager get-secret-value)."
  value       = "${var.secret_prefix}/ci-nightly"
}

output "presets" {
  description = "Every preset a key may name."
  value       = [for p in data.keyward_presets.all.presets : p.name]
}
