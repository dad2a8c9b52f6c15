environment  = "staging"
location     = "westeurope"
name_prefix  = "taskstream"
aks_sku_tier = "Free"

system_node_vm_size = "Standard_D2s_v5"
user_node_vm_size   = "Standard_D4s_v5"
user_node_min_count = 3
user_node_max_count = 4

postgres_sku                   = "B_Standard_B1ms"
postgres_storage_mb            = 32768
postgres_backup_retention_days = 7
postgres_high_availability     = false
postgres_geo_redundant_backup  = false

acr_sku = "Standard"

# The AKS API: empty = reachable from any address, still only with an Entra ID token and an
# Azure RBAC role (local accounts are off). GitHub-hosted runners deploy from changing addresses,
# so they need it empty; with self-hosted runners, list their and your egress CIDRs instead.
api_server_authorized_ip_ranges = []
# The Key Vault firewall: the egress CIDR of the machine that runs terraform (it writes the
# secrets). Replace the documentation address (203.0.113.0/24).
key_vault_allowed_ip_ranges = ["203.0.113.10/32"]

tags = {
  cost-center = "taskstream-staging"
}
