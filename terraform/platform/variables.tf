variable "subscription_id" {
  description = "Azure subscription of the cluster."
  type        = string
}

variable "resource_group_name" {
  description = "terraform output resource_group_name of the infra root."
  type        = string
}

variable "aks_name" {
  description = "terraform output aks_name of the infra root."
  type        = string
}

variable "kafka_sasl_password" {
  description = "SASL password of the taskstream Redpanda user: terraform output -raw kafka_sasl_password of the infra root."
  type        = string
  sensitive   = true
}

variable "redpanda_admin_password" {
  description = "Password of the Redpanda superuser (admin)."
  type        = string
  sensitive   = true
}

variable "install_dapr" {
  description = "Install the Dapr control plane (the chart's dapr.enabled needs it)."
  type        = bool
  default     = false
}

variable "cert_manager_version" {
  description = "cert-manager chart version (Redpanda's TLS certificates)."
  type        = string
  default     = "v1.19.1"
}

variable "redpanda_chart_version" {
  description = "Redpanda chart version."
  type        = string
  default     = "25.1.1"
}

variable "dapr_chart_version" {
  description = "Dapr chart version."
  type        = string
  default     = "1.16.2"
}
