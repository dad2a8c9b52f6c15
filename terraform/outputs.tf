output "resource_group_name" {
  description = "Resource group of the environment."
  value       = azurerm_resource_group.main.name
}

output "aks_name" {
  description = "AKS cluster name (az aks get-credentials -n <this> -g <resource_group_name>)."
  value       = azurerm_kubernetes_cluster.main.name
}

output "oidc_issuer_url" {
  description = "OIDC issuer of the cluster (workload identity)."
  value       = azurerm_kubernetes_cluster.main.oidc_issuer_url
}

output "acr_login_server" {
  description = "Registry for the image (chart value image.registry)."
  value       = azurerm_container_registry.main.login_server
}

output "key_vault_name" {
  description = "Key Vault holding database-url, jwt-secret and kafka-sasl-password (chart value keyVault.name)."
  value       = azurerm_key_vault.main.name
}

output "key_vault_uri" {
  description = "Key Vault URI."
  value       = azurerm_key_vault.main.vault_uri
}

output "postgres_fqdn" {
  description = "Private FQDN of the PostgreSQL server."
  value       = azurerm_postgresql_flexible_server.main.fqdn
}

output "app_identity_client_id" {
  description = "Client id of the workload identity (chart value workloadIdentity.clientId)."
  value       = azurerm_user_assigned_identity.app.client_id
}

output "tenant_id" {
  description = "Entra ID tenant (chart value workloadIdentity.tenantId)."
  value       = data.azurerm_client_config.current.tenant_id
}

output "ci_identity_client_id" {
  description = "Client id for azure/login in the deploy workflow (empty without github_repository)."
  value       = try(azurerm_user_assigned_identity.ci[0].client_id, "")
}

output "kafka_sasl_password" {
  description = "SASL password of the taskstream Redpanda user (terraform/platform creates the user)."
  value       = random_password.kafka_sasl.result
  sensitive   = true
}

# The hand-off to Helm: .github/scripts/terraform-values.py turns `terraform output -json` into
# a values file (workload identity, Key Vault, registry, token verification); the outputs below
# exist for it. None of them is secret.
output "app_namespace" {
  description = "Namespace the federated credentials trust (the release must be installed there)."
  value       = var.app_namespace
}

output "app_release_name" {
  description = "Helm release name the federated credentials trust (service accounts <this> and <this>-migration)."
  value       = var.app_release_name
}

output "key_vault_secret_names" {
  description = "Key Vault secrets terraform writes (chart value keyVault.objects maps them to Secret keys)."
  value       = sort(keys(local.app_secrets))
}

output "jwt" {
  description = "Token verification for the chart's config.jwt when api_client_id is set (Entra ID v2 tokens); null: HS256 with the jwt-secret."
  value = var.api_client_id == "" ? null : {
    jwks_url = "https://login.microsoftonline.com/${data.azurerm_client_config.current.tenant_id}/discovery/v2.0/keys"
    issuer   = "https://login.microsoftonline.com/${data.azurerm_client_config.current.tenant_id}/v2.0"
    audience = var.api_client_id
  }
}
