terraform {
  required_version = ">= 1.9"

  required_providers {
    azurerm = {
      source = "hashicorp/azurerm"
      # >= 4.42: azurerm_key_vault.rbac_authorization_enabled (the old name goes in v5).
      version = "~> 4.50"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.7"
    }
  }

  # Remote state in Azure Storage, Entra ID auth (no access keys). The storage account is
  # bootstrapped once, out of band (terraform/README.md); pass the rest with
  # -backend-config=environments/<env>.backend.hcl
  backend "azurerm" {
    use_azuread_auth = true
  }
}
