terraform {
  # Lifecycle preconditions, the newest feature used here, arrived in Terraform 1.2.
  required_version = ">= 1.2.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0, < 7.0"
    }
  }
}
