data "azurerm_client_config" "current" {}

locals {
  env_short = var.environment == "production" ? "prod" : "stg"
  base      = "${var.name_prefix}-${local.env_short}"
  # Globally unique names (Key Vault, ACR, PostgreSQL) get a random suffix: a deleted Key Vault
  # stays soft-deleted for 90 days under its name.
  suffix = random_string.suffix.result
  tags = merge(var.tags, {
    application = "taskstream"
    environment = var.environment
    managed-by  = "terraform"
  })
  app_service_accounts = {
    app       = var.app_release_name
    migration = "${var.app_release_name}-migration"
  }
}

resource "random_string" "suffix" {
  length  = 5
  upper   = false
  special = false
}

resource "azurerm_resource_group" "main" {
  name     = "rg-${local.base}"
  location = var.location
  tags     = local.tags
}

resource "azurerm_log_analytics_workspace" "main" {
  name                = "log-${local.base}"
  location            = azurerm_resource_group.main.location
  resource_group_name = azurerm_resource_group.main.name
  sku                 = "PerGB2018"
  retention_in_days   = 30
  tags                = local.tags
}

# --- network -------------------------------------------------------------------------------

resource "azurerm_virtual_network" "main" {
  name                = "vnet-${local.base}"
  location            = azurerm_resource_group.main.location
  resource_group_name = azurerm_resource_group.main.name
  address_space       = [var.vnet_address_space]
  tags                = local.tags
}

resource "azurerm_subnet" "aks" {
  name                 = "snet-aks"
  resource_group_name  = azurerm_resource_group.main.name
  virtual_network_name = azurerm_virtual_network.main.name
  address_prefixes     = [cidrsubnet(var.vnet_address_space, 4, 0)]
  service_endpoints    = ["Microsoft.KeyVault"]
}

resource "azurerm_subnet" "postgres" {
  name                 = "snet-postgres"
  resource_group_name  = azurerm_resource_group.main.name
  virtual_network_name = azurerm_virtual_network.main.name
  address_prefixes     = [cidrsubnet(var.vnet_address_space, 8, 16)]

  delegation {
    name = "postgres-flexible"
    service_delegation {
      name    = "Microsoft.DBforPostgreSQL/flexibleServers"
      actions = ["Microsoft.Network/virtualNetworks/subnets/join/action"]
    }
  }
}

resource "azurerm_network_security_group" "aks" {
  name                = "nsg-${local.base}-aks"
  location            = azurerm_resource_group.main.location
  resource_group_name = azurerm_resource_group.main.name
  tags                = local.tags
}

resource "azurerm_subnet_network_security_group_association" "aks" {
  subnet_id                 = azurerm_subnet.aks.id
  network_security_group_id = azurerm_network_security_group.aks.id
}

resource "azurerm_network_security_group" "postgres" {
  name                = "nsg-${local.base}-postgres"
  location            = azurerm_resource_group.main.location
  resource_group_name = azurerm_resource_group.main.name
  tags                = local.tags
}

resource "azurerm_subnet_network_security_group_association" "postgres" {
  subnet_id                 = azurerm_subnet.postgres.id
  network_security_group_id = azurerm_network_security_group.postgres.id
}

# --- AKS -----------------------------------------------------------------------------------

resource "azurerm_kubernetes_cluster" "main" {
  #checkov:skip=CKV_AZURE_115:a private API server needs a jump host or VPN for CI; the API is limited to api_server_authorized_ip_ranges and Entra ID RBAC instead
  #checkov:skip=CKV_AZURE_117:disk encryption with a customer-managed key (disk encryption set) is not required; platform-managed keys encrypt the disks
  #checkov:skip=CKV_AZURE_226:ephemeral OS disks need VM sizes with a large enough cache; managed OS disks are kept for portability across sizes
  #checkov:skip=CKV_AZURE_6:api_server_authorized_ip_ranges may be empty on purpose: GitHub-hosted runners deploy from changing addresses; the API then needs Entra ID (local accounts are off) and Azure RBAC (docs/CICD.md)
  name                              = "aks-${local.base}"
  location                          = azurerm_resource_group.main.location
  resource_group_name               = azurerm_resource_group.main.name
  dns_prefix                        = local.base
  kubernetes_version                = var.kubernetes_version
  sku_tier                          = var.aks_sku_tier
  automatic_upgrade_channel         = "patch"
  node_os_upgrade_channel           = "NodeImage"
  oidc_issuer_enabled               = true
  workload_identity_enabled         = true
  local_account_disabled            = true
  role_based_access_control_enabled = true
  azure_policy_enabled              = true
  image_cleaner_enabled             = true
  image_cleaner_interval_hours      = 48

  azure_active_directory_role_based_access_control {
    azure_rbac_enabled     = true
    tenant_id              = data.azurerm_client_config.current.tenant_id
    admin_group_object_ids = var.aks_admin_group_object_ids
  }

  # Empty: reachable from anywhere, still only with an Entra ID token and an Azure RBAC role.
  dynamic "api_server_access_profile" {
    for_each = length(var.api_server_authorized_ip_ranges) > 0 ? [1] : []
    content {
      authorized_ip_ranges = var.api_server_authorized_ip_ranges
    }
  }

  default_node_pool {
    name                         = "system"
    vm_size                      = var.system_node_vm_size
    vnet_subnet_id               = azurerm_subnet.aks.id
    zones                        = var.availability_zones
    auto_scaling_enabled         = true
    min_count                    = 2
    max_count                    = 3
    max_pods                     = 50
    only_critical_addons_enabled = true
    host_encryption_enabled      = true
    os_sku                       = "AzureLinux"
    temporary_name_for_rotation  = "systemtmp"
    tags                         = local.tags

    upgrade_settings {
      max_surge = "33%"
    }
  }

  identity {
    type = "SystemAssigned"
  }

  network_profile {
    network_plugin      = "azure"
    network_plugin_mode = "overlay"
    network_data_plane  = "cilium"
    network_policy      = "cilium"
    load_balancer_sku   = "standard"
  }

  oms_agent {
    log_analytics_workspace_id      = azurerm_log_analytics_workspace.main.id
    msi_auth_for_monitoring_enabled = true
  }

  key_vault_secrets_provider {
    secret_rotation_enabled  = true
    secret_rotation_interval = "2m"
  }

  # KEDA as the AKS add-on (the chart's subscribers.*.keda).
  workload_autoscaler_profile {
    keda_enabled = true
  }

  # App routing (managed NGINX) for the chart's Ingress (className webapprouting.kubernetes.azure.com).
  web_app_routing {
    dns_zone_ids = []
  }

  tags = local.tags

  lifecycle {
    ignore_changes = [
      kubernetes_version,
      default_node_pool[0].node_count,
    ]
  }
}

resource "azurerm_kubernetes_cluster_node_pool" "user" {
  name                    = "user"
  kubernetes_cluster_id   = azurerm_kubernetes_cluster.main.id
  mode                    = "User"
  vm_size                 = var.user_node_vm_size
  vnet_subnet_id          = azurerm_subnet.aks.id
  zones                   = var.availability_zones
  auto_scaling_enabled    = true
  host_encryption_enabled = true
  min_count               = var.user_node_min_count
  max_count               = var.user_node_max_count
  max_pods                = 50
  os_sku                  = "AzureLinux"
  tags                    = local.tags

  upgrade_settings {
    max_surge = "33%"
  }

  lifecycle {
    ignore_changes = [node_count]
  }
}

# --- container registry ----------------------------------------------------------------------

resource "azurerm_container_registry" "main" {
  #checkov:skip=CKV_AZURE_139:public network access stays on so that GitHub-hosted runners can push; pushes need Entra ID (AcrPush), anonymous pull is off
  #checkov:skip=CKV_AZURE_166:image quarantine needs an external scanner to release images; release.yml scans each pushed image (Trivy) and signs it (cosign) only when it passes, and deploy.yml deploys only verified signatures
  #checkov:skip=CKV_AZURE_164:Docker Content Trust is deprecated in ACR (Notation signing replaces it); images are referenced by immutable SHA tags
  #checkov:skip=CKV_AZURE_233:zone redundancy is on whenever acr_sku is Premium (production); the Standard SKU (staging) does not offer it
  name                          = replace("acr${local.base}${local.suffix}", "-", "")
  location                      = azurerm_resource_group.main.location
  resource_group_name           = azurerm_resource_group.main.name
  sku                           = var.acr_sku
  admin_enabled                 = false
  anonymous_pull_enabled        = false
  data_endpoint_enabled         = var.acr_sku == "Premium"
  zone_redundancy_enabled       = var.acr_sku == "Premium"
  retention_policy_in_days      = var.acr_sku == "Premium" ? 30 : null
  trust_policy_enabled          = false
  public_network_access_enabled = true
  tags                          = local.tags

  dynamic "georeplications" {
    for_each = var.environment == "production" && var.acr_sku == "Premium" ? ["northeurope"] : []
    content {
      location                = georeplications.value
      zone_redundancy_enabled = true
      tags                    = local.tags
    }
  }
}

# The kubelet identity pulls images (not the control-plane identity).
resource "azurerm_role_assignment" "aks_acr_pull" {
  scope                            = azurerm_container_registry.main.id
  role_definition_name             = "AcrPull"
  principal_id                     = azurerm_kubernetes_cluster.main.kubelet_identity[0].object_id
  skip_service_principal_aad_check = true
}

# --- PostgreSQL (private access: delegated subnet + private DNS) --------------------------------

resource "azurerm_private_dns_zone" "postgres" {
  name                = "${local.base}.private.postgres.database.azure.com"
  resource_group_name = azurerm_resource_group.main.name
  tags                = local.tags
}

resource "azurerm_private_dns_zone_virtual_network_link" "postgres" {
  name                  = "postgres-vnet"
  private_dns_zone_name = azurerm_private_dns_zone.postgres.name
  resource_group_name   = azurerm_resource_group.main.name
  virtual_network_id    = azurerm_virtual_network.main.id
  registration_enabled  = false
  tags                  = local.tags
}

resource "random_password" "postgres_admin" {
  length           = 32
  special          = true
  override_special = "-_"
}

resource "azurerm_postgresql_flexible_server" "main" {
  #checkov:skip=CKV2_AZURE_57:private access through VNet integration (delegated subnet, private DNS zone, public access off) instead of a private endpoint
  name                          = "psql-${local.base}-${local.suffix}"
  location                      = azurerm_resource_group.main.location
  resource_group_name           = azurerm_resource_group.main.name
  version                       = var.postgres_version
  sku_name                      = var.postgres_sku
  storage_mb                    = var.postgres_storage_mb
  auto_grow_enabled             = true
  backup_retention_days         = var.postgres_backup_retention_days
  geo_redundant_backup_enabled  = var.postgres_geo_redundant_backup
  delegated_subnet_id           = azurerm_subnet.postgres.id
  private_dns_zone_id           = azurerm_private_dns_zone.postgres.id
  public_network_access_enabled = false
  administrator_login           = "taskstream_admin"
  administrator_password        = random_password.postgres_admin.result
  zone                          = var.availability_zones[0]
  tags                          = local.tags

  authentication {
    active_directory_auth_enabled = true
    password_auth_enabled         = true
    tenant_id                     = data.azurerm_client_config.current.tenant_id
  }

  dynamic "high_availability" {
    for_each = var.postgres_high_availability ? [1] : []
    content {
      mode                      = "ZoneRedundant"
      standby_availability_zone = var.availability_zones[1]
    }
  }

  depends_on = [azurerm_private_dns_zone_virtual_network_link.postgres]

  lifecycle {
    # Azure swaps the zones on a failover.
    ignore_changes = [zone, high_availability[0].standby_availability_zone]
  }
}

resource "azurerm_postgresql_flexible_server_database" "taskstream" {
  name      = "taskstream"
  server_id = azurerm_postgresql_flexible_server.main.id
  charset   = "UTF8"
  collation = "en_US.utf8"

  lifecycle {
    prevent_destroy = true
  }
}

resource "azurerm_postgresql_flexible_server_configuration" "require_tls" {
  name      = "require_secure_transport"
  server_id = azurerm_postgresql_flexible_server.main.id
  value     = "on"
}

resource "azurerm_postgresql_flexible_server_configuration" "log_checkpoints" {
  name      = "log_checkpoints"
  server_id = azurerm_postgresql_flexible_server.main.id
  value     = "on"
}

resource "azurerm_postgresql_flexible_server_configuration" "connection_throttling" {
  name      = "connection_throttle.enable"
  server_id = azurerm_postgresql_flexible_server.main.id
  value     = "on"
}

# --- Key Vault (RBAC) and the secrets the chart reads -------------------------------------------

resource "azurerm_key_vault" "main" {
  #checkov:skip=CKV_AZURE_189:public access stays on behind the firewall (default deny, AKS subnet and key_vault_allowed_ip_ranges) so that terraform can write the secrets without a private runner
  #checkov:skip=CKV2_AZURE_32:no private endpoint for the same reason; the network ACLs deny everything else
  name                          = "kv-${local.base}-${local.suffix}"
  location                      = azurerm_resource_group.main.location
  resource_group_name           = azurerm_resource_group.main.name
  tenant_id                     = data.azurerm_client_config.current.tenant_id
  sku_name                      = "standard"
  rbac_authorization_enabled    = true
  purge_protection_enabled      = true
  soft_delete_retention_days    = 90
  public_network_access_enabled = true
  tags                          = local.tags

  network_acls {
    default_action             = "Deny"
    bypass                     = "AzureServices"
    ip_rules                   = var.key_vault_allowed_ip_ranges
    virtual_network_subnet_ids = [azurerm_subnet.aks.id]
  }
}

# Whoever runs terraform writes the secrets.
resource "azurerm_role_assignment" "deployer_kv_secrets_officer" {
  scope                = azurerm_key_vault.main.id
  role_definition_name = "Key Vault Secrets Officer"
  principal_id         = data.azurerm_client_config.current.object_id
}

resource "random_password" "jwt_secret" {
  length  = 48
  special = false
}

resource "random_password" "kafka_sasl" {
  length  = 32
  special = false
}

locals {
  database_url = format(
    "postgres://%s:%s@%s:5432/%s?sslmode=require",
    azurerm_postgresql_flexible_server.main.administrator_login,
    random_password.postgres_admin.result,
    azurerm_postgresql_flexible_server.main.fqdn,
    azurerm_postgresql_flexible_server_database.taskstream.name,
  )
  app_secrets = {
    "database-url"        = local.database_url
    "jwt-secret"          = random_password.jwt_secret.result
    "kafka-sasl-password" = random_password.kafka_sasl.result
  }
}

resource "azurerm_key_vault_secret" "app" {
  #checkov:skip=CKV_AZURE_41:these secrets are rotated by re-applying terraform, not by expiry; an expired database URL would take the service down
  for_each     = local.app_secrets
  name         = each.key
  value        = each.value
  key_vault_id = azurerm_key_vault.main.id
  content_type = "text/plain"

  depends_on = [azurerm_role_assignment.deployer_kv_secrets_officer]
}

# --- workload identity for the chart's service accounts ---------------------------------------

resource "azurerm_user_assigned_identity" "app" {
  name                = "id-${local.base}-app"
  location            = azurerm_resource_group.main.location
  resource_group_name = azurerm_resource_group.main.name
  tags                = local.tags
}

resource "azurerm_role_assignment" "app_kv_secrets_user" {
  scope                = azurerm_key_vault.main.id
  role_definition_name = "Key Vault Secrets User"
  principal_id         = azurerm_user_assigned_identity.app.principal_id
}

# One federated credential per service account the chart creates: the workloads' and the
# migration hook's (templates/migration-job.yaml).
resource "azurerm_federated_identity_credential" "app" {
  for_each = local.app_service_accounts
  name     = "fic-${each.key}"
  # Deprecated in recent 4.x (parent_id holds it), still accepted; drop it with azurerm v5.
  resource_group_name = azurerm_resource_group.main.name
  parent_id           = azurerm_user_assigned_identity.app.id
  audience            = ["api://AzureADTokenExchange"]
  issuer              = azurerm_kubernetes_cluster.main.oidc_issuer_url
  subject             = "system:serviceaccount:${var.app_namespace}:${each.value}"
}

# --- CI identity (GitHub Actions OIDC) ------------------------------------------------------

resource "azurerm_user_assigned_identity" "ci" {
  count               = var.github_repository == "" ? 0 : 1
  name                = "id-${local.base}-ci"
  location            = azurerm_resource_group.main.location
  resource_group_name = azurerm_resource_group.main.name
  tags                = local.tags
}

resource "azurerm_federated_identity_credential" "ci" {
  count               = var.github_repository == "" ? 0 : 1
  name                = "github-${var.environment}"
  resource_group_name = azurerm_resource_group.main.name
  parent_id           = azurerm_user_assigned_identity.ci[0].id
  audience            = ["api://AzureADTokenExchange"]
  issuer              = "https://token.actions.githubusercontent.com"
  # The deploy job runs with `environment: <name>`.
  subject = "repo:${var.github_repository}:environment:${var.environment}"
}

resource "azurerm_role_assignment" "ci_acr_push" {
  count                = var.github_repository == "" ? 0 : 1
  scope                = azurerm_container_registry.main.id
  role_definition_name = "AcrPush"
  principal_id         = azurerm_user_assigned_identity.ci[0].principal_id
}

resource "azurerm_role_assignment" "ci_aks_user" {
  count                = var.github_repository == "" ? 0 : 1
  scope                = azurerm_kubernetes_cluster.main.id
  role_definition_name = "Azure Kubernetes Service Cluster User Role"
  principal_id         = azurerm_user_assigned_identity.ci[0].principal_id
}

# Kubernetes rights of the deploy, in the release's namespace only. "RBAC Writer" covers the
# built-in kinds only; the chart also creates custom resources (SecretProviderClass when Key
# Vault is on, the cert-manager Issuer of the Ingress's certificate, and ScaledObject,
# ServiceMonitor, PodMonitor, PrometheusRule, HTTPRoute, Dapr Component when enabled), and Azure
# RBAC grants custom resources only through the wildcard data action, which "RBAC Admin" has
# (it excludes namespaces and resource quotas). Scoped to the namespace, it is admin of nothing
# else; the namespace itself is created once by an admin (docs/CICD.md).
resource "azurerm_role_assignment" "ci_aks_namespace_admin" {
  count                = var.github_repository == "" ? 0 : 1
  scope                = "${azurerm_kubernetes_cluster.main.id}/namespaces/${var.app_namespace}"
  role_definition_name = "Azure Kubernetes Service RBAC Admin"
  principal_id         = azurerm_user_assigned_identity.ci[0].principal_id
}
