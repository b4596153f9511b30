# keyward in one account, from the zips `cargo lambda build --release --arm64 --output-format zip`
# of the four function packages leaves in target/lambda (infra/README.md). Against real AWS:
# the standard credential chain and var.region. Against moto (tests):
# -var moto_endpoint=http://127.0.0.1:8799.

terraform {
  required_version = ">= 1.11.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.87.0, < 6.0.0"
    }
  }
}

variable "region" {
  description = "AWS region to deploy to."
  type        = string
  default     = "us-east-1"
}

variable "moto_endpoint" {
  description = "URL of a moto server to deploy to instead of AWS (tests only); null deploys to AWS."
  type        = string
  default     = null
}

variable "lambda_zip_dir" {
  description = "target/lambda of the workspace after `cargo lambda build --release --arm64 --output-format zip`."
  type        = string
  default     = "../../../target/lambda"
}

variable "name" {
  description = "Prefix of every resource name."
  type        = string
  default     = "keyward"
}

variable "api_type" {
  description = "http or rest."
  type        = string
  default     = "http"
}

variable "deletion_protection" {
  description = "Deletion protection of the table (false to let destroy remove it)."
  type        = bool
  default     = true
}

variable "pepper_recovery_window_days" {
  description = "Recovery window of the pepper secret on destroy (0 deletes at once)."
  type        = number
  default     = 30
}

locals {
  moto = var.moto_endpoint != null
}

provider "aws" {
  region = var.region

  # moto accepts any credentials; real AWS uses the standard chain (null here).
  access_key                  = local.moto ? "testing" : null
  secret_key                  = local.moto ? "testing" : null
  skip_credentials_validation = local.moto
  skip_requesting_account_id  = local.moto
  skip_metadata_api_check     = local.moto

  dynamic "endpoints" {
    for_each = local.moto ? [var.moto_endpoint] : []
    content {
      apigateway     = endpoints.value
      apigatewayv2   = endpoints.value
      dynamodb       = endpoints.value
      events         = endpoints.value
      iam            = endpoints.value
      kms            = endpoints.value
      lambda         = endpoints.value
      logs           = endpoints.value
      secretsmanager = endpoints.value
      sqs            = endpoints.value
      ssm            = endpoints.value
      sts            = endpoints.value
    }
  }

  default_tags {
    tags = {
      app = "keyward"
    }
  }
}

module "keyward" {
  source = "../.."

  name                        = var.name
  lambda_zip_dir              = var.lambda_zip_dir
  api_type                    = var.api_type
  deletion_protection         = var.deletion_protection
  pepper_recovery_window_days = var.pepper_recovery_window_days
  create_event_bus            = true
}

output "management_api_url" {
  description = "KEYWARD_ENDPOINT for the keyward command."
  value       = module.keyward.management_api_url
}

output "protected_sample_url" {
  description = "GET it with X-API-Key: a key with read on sample/**."
  value       = module.keyward.protected_sample_url
}

output "authorizer_function_arn" {
  description = "Attach it to another API's authorizer."
  value       = module.keyward.authorizer_function_arn
}

output "authorizer_invoke_role_arn" {
  description = "The credentials of that authorizer."
  value       = module.keyward.authorizer_invoke_role_arn
}

output "table_name" {
  description = "KEYWARD_STORE is dynamodb://<this>."
  value       = module.keyward.table_name
}

output "pepper_secret_arn" {
  description = "The pepper's secret (its ARN only)."
  value       = module.keyward.pepper_secret_arn
}

output "function_names" {
  description = "The four functions."
  value       = module.keyward.function_names
}
