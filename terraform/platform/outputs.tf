output "kafka_brokers" {
  description = "Chart value kafka.brokers."
  value       = join(",", [for i in range(3) : "redpanda-${i}.redpanda.redpanda.svc.cluster.local:9093"])
}
