terraform {
  required_version = ">= 1.9"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.50"
    }
    helm = {
      source  = "hashicorp/helm"
      version = "~> 3.0"
    }
  }

  # Same storage account as the infra root, another key (platform.backend.hcl).
  backend "azurerm" {
    use_azuread_auth = true
  }
}
