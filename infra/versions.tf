terraform {
  # 1.11 for write-only attributes: the generated pepper is written with `secret_string_wo`
  # from an ephemeral resource, so it never reaches a plan or the state.
  required_version = ">= 1.11.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.87 brought `secret_string_wo` and the `aws_secretsmanager_random_password` ephemeral
      # resource; tested with 5.100.
      version = ">= 5.87.0, < 6.0.0"
    }
  }
}
