environment  = "production"
location     = "westeurope"
name_prefix  = "taskstream"
aks_sku_tier = "Standard"

system_node_vm_size = "Standard_D2s_v5"
user_node_vm_size   = "Standard_D4s_v5"
user_node_min_count = 3
user_node_max_count = 9

postgres_sku                   = "GP_Standard_D2ds_v5"
postgres_storage_mb            = 131072
postgres_backup_retention_days = 35
postgres_high_availability     = true
postgres_geo_redundant_backup  = true

acr_sku = "Premium"

# The AKS API: empty = reachable from any address, still only with an Entra ID token and an
# Azure RBAC role (local accounts are off). GitHub-hosted runners deploy from changing addresses,
# so they need it empty; with self-hosted runners, list their and your egress CIDRs instead.
api_server_authorized_ip_ranges = []
# The Key Vault firewall: the egress CIDR of the machine that runs terraform (it writes the
# secrets). Replace the documentation address (203.0.113.0/24).
key_vault_allowed_ip_ranges = ["203.0.113.10/32"]

tags = {
  cost-center = "taskstream-production"
}
