resource "helm_release" "cert_manager" {
  name             = "cert-manager"
  repository       = "https://charts.jetstack.io"
  chart            = "cert-manager"
  version          = var.cert_manager_version
  namespace        = "cert-manager"
  create_namespace = true
  wait             = true

  set = [
    {
      name  = "crds.enabled"
      value = "true"
    },
  ]
}

# Three brokers, TLS (cert-manager) and SASL/SCRAM: infra/helm/redpanda/values-aks.yaml.
resource "helm_release" "redpanda" {
  name             = "redpanda"
  repository       = "https://charts.redpanda.com"
  chart            = "redpanda"
  version          = var.redpanda_chart_version
  namespace        = "redpanda"
  create_namespace = true
  wait             = true
  timeout          = 900

  values = [file("${path.module}/../../infra/helm/redpanda/values-aks.yaml")]

  set_sensitive = [
    {
      name  = "auth.sasl.users[0].password"
      value = var.redpanda_admin_password
    },
    {
      name  = "auth.sasl.users[1].password"
      value = var.kafka_sasl_password
    },
  ]

  depends_on = [helm_release.cert_manager]
}

resource "helm_release" "dapr" {
  count            = var.install_dapr ? 1 : 0
  name             = "dapr"
  repository       = "https://dapr.github.io/helm-charts/"
  chart            = "dapr"
  version          = var.dapr_chart_version
  namespace        = "dapr-system"
  create_namespace = true
  wait             = true

  set = [
    {
      name  = "global.ha.enabled"
      value = "true"
    },
  ]
}
