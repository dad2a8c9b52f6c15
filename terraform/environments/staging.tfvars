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

# Replace with your public egress CIDR(s) and the CI runners' (203.0.113.0/24 is a documentation range).
api_server_authorized_ip_ranges = ["203.0.113.10/32"]
key_vault_allowed_ip_ranges     = ["203.0.113.10/32"]

tags = {
  cost-center = "taskstream-staging"
}
