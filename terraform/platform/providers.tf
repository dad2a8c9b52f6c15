provider "azurerm" {
  features {}

  subscription_id                 = var.subscription_id
  resource_provider_registrations = "none"
}

# The cluster comes from the infra root (a separate apply): configuring the helm provider from a
# cluster created in the same apply breaks on cluster replacement.
data "azurerm_kubernetes_cluster" "main" {
  name                = var.aks_name
  resource_group_name = var.resource_group_name
}

# Helm provider 3.x: `kubernetes` is an attribute (object), `exec` too. Local accounts are off, so
# the token comes from kubelogin (Entra ID).
provider "helm" {
  kubernetes = {
    host                   = data.azurerm_kubernetes_cluster.main.kube_config[0].host
    cluster_ca_certificate = base64decode(data.azurerm_kubernetes_cluster.main.kube_config[0].cluster_ca_certificate)
    exec = {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "kubelogin"
      args        = ["get-token", "--login", "azurecli", "--server-id", "6dae42f8-4368-4678-94ff-3960e28e3630"]
    }
  }
}
