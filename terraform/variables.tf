variable "subscription_id" {
  description = "Azure subscription to deploy into."
  type        = string
}

variable "environment" {
  description = "Environment name: staging or production."
  type        = string

  validation {
    condition     = contains(["staging", "production"], var.environment)
    error_message = "environment must be staging or production."
  }
}

variable "location" {
  description = "Azure region."
  type        = string
  default     = "westeurope"
}

variable "name_prefix" {
  description = "Prefix of resource names (lowercase letters and digits, 3 to 12 characters)."
  type        = string
  default     = "taskstream"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{2,11}$", var.name_prefix))
    error_message = "name_prefix must be 3 to 12 lowercase letters or digits, starting with a letter."
  }
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}

variable "kubernetes_version" {
  description = "AKS minor version (no patch: the patch upgrade channel moves patches). Upstream supports a minor for 14 months: 1.35 until 2027-02-28; check `az aks get-versions -l <location>`."
  type        = string
  default     = "1.35"

  validation {
    condition     = can(regex("^1\\.[0-9]+$", var.kubernetes_version))
    error_message = "kubernetes_version is a minor version such as 1.35."
  }
}

variable "aks_sku_tier" {
  description = "AKS control plane tier: Free (no SLA) or Standard."
  type        = string
  default     = "Standard"

  validation {
    condition     = contains(["Free", "Standard", "Premium"], var.aks_sku_tier)
    error_message = "aks_sku_tier must be Free, Standard or Premium."
  }
}

variable "api_server_authorized_ip_ranges" {
  description = "CIDRs allowed to reach the AKS API server. Empty: any address, still only with an Entra ID token and an Azure RBAC role; GitHub-hosted runners need that (their addresses change), self-hosted runners inside a listed range do not (docs/CICD.md)."
  type        = list(string)

  validation {
    condition     = alltrue([for cidr in var.api_server_authorized_ip_ranges : can(cidrhost(cidr, 0))])
    error_message = "api_server_authorized_ip_ranges holds CIDRs such as 203.0.113.10/32."
  }
}

variable "aks_admin_group_object_ids" {
  description = "Entra ID groups that are cluster admins (Azure RBAC for Kubernetes)."
  type        = list(string)
  default     = []
}

variable "system_node_vm_size" {
  description = "VM size of the system node pool."
  type        = string
  default     = "Standard_D2s_v5"
}

variable "user_node_vm_size" {
  description = "VM size of the user node pool (Taskstream, Redpanda)."
  type        = string
  default     = "Standard_D4s_v5"
}

variable "user_node_min_count" {
  description = "Minimum nodes of the user pool (3 spreads Redpanda's brokers over zones)."
  type        = number
  default     = 3
}

variable "user_node_max_count" {
  description = "Maximum nodes of the user pool."
  type        = number
  default     = 6

  validation {
    condition     = var.user_node_max_count >= 1
    error_message = "user_node_max_count must be at least 1."
  }
}

variable "availability_zones" {
  description = "Zones for node pools and the database standby."
  type        = list(string)
  default     = ["1", "2", "3"]
}

variable "vnet_address_space" {
  description = "Address space of the virtual network."
  type        = string
  default     = "10.40.0.0/16"
}

variable "postgres_version" {
  description = "PostgreSQL major version."
  type        = string
  default     = "16"
}

variable "postgres_sku" {
  description = "PostgreSQL Flexible Server SKU (B_Standard_B1ms for staging, GP_Standard_D2ds_v5 or larger for production)."
  type        = string
  default     = "GP_Standard_D2ds_v5"
}

variable "postgres_storage_mb" {
  description = "Database storage in MB (it can only grow)."
  type        = number
  default     = 65536
}

variable "postgres_backup_retention_days" {
  description = "Days of point-in-time restore."
  type        = number
  default     = 14

  validation {
    condition     = var.postgres_backup_retention_days >= 7 && var.postgres_backup_retention_days <= 35
    error_message = "postgres_backup_retention_days must be between 7 and 35."
  }
}

variable "postgres_high_availability" {
  description = "Zone-redundant standby for the database (production)."
  type        = bool
  default     = true
}

variable "postgres_geo_redundant_backup" {
  description = "Geo-redundant backups (production)."
  type        = bool
  default     = true
}

variable "acr_sku" {
  description = "Container registry SKU (Premium enables private networking and retention)."
  type        = string
  default     = "Premium"

  validation {
    condition     = contains(["Basic", "Standard", "Premium"], var.acr_sku)
    error_message = "acr_sku must be Basic, Standard or Premium."
  }
}

variable "key_vault_allowed_ip_ranges" {
  description = "CIDRs allowed through the Key Vault firewall (the machine that runs terraform)."
  type        = list(string)
  default     = []
}

variable "app_namespace" {
  description = "Kubernetes namespace of the Taskstream release."
  type        = string
  default     = "taskstream"
}

variable "app_release_name" {
  description = "Helm release name of Taskstream (service accounts are <release> and <release>-migration)."
  type        = string
  default     = "taskstream"
}

variable "github_repository" {
  description = "GitHub repository (OWNER/REPO, or OWNER@ID/REPO@ID for the new immutable subject format) that deploys through OIDC. Empty: no CI identity."
  type        = string
  default     = ""
}

variable "api_client_id" {
  description = "Client id of the Entra ID app registration that represents the Taskstream API (tokens with this audience are accepted; requestedAccessTokenVersion 2). Empty: the gateway verifies HS256 tokens with the jwt-secret from Key Vault."
  type        = string
  default     = ""

  validation {
    condition     = var.api_client_id == "" || can(regex("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", var.api_client_id))
    error_message = "api_client_id is empty or a client id (a lowercase GUID)."
  }
}
