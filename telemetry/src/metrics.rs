//! Every metric a Taskstream process exports, in one process-wide registry, rendered in the
//! Prometheus/OpenMetrics text format by [`render`].
//!
//! One registry for all binaries: unlabelled metrics are always listed; a labelled family
//! appears once its first series is touched (a process that never relays has no relay
//! series). In embedded mode the gateway runs the subscribers in-process and so serves their
//! metrics too.
//!
//! Label values are bounded: operation labels are the schema's root field names (not the
//! client's operation name), error codes come from one table, consumers/topics/partitions from
//! configuration.

use std::sync::LazyLock;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The `Content-Type` of [`render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    /// `query`, `mutation` or `subscription`.
    pub kind: String,
    /// The operation's first root field (`createTask`, `tasks`), or `-` when it did not parse.
    pub operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabels {
    pub topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabels {
    pub consumer: String,
    pub topic: String,
    pub partition: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RecordLabels {
    pub consumer: String,
    pub topic: String,
    /// `applied`, `ignored` or `duplicate`.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConsumerLabels {
    pub consumer: String,
    pub topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TableLabels {
    /// A table retention prunes (`outbox`, `processed_events`, ...).
    pub table: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ComponentLabels {
    /// A long-lived task of the gateway (`relay`, `live updates`, `subscriber recurrence`, ...).
    pub component: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

type Seconds = Gauge<f64, AtomicU64>;

fn latency_histogram() -> Histogram {
    // 1 ms to ~16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

fn lateness_histogram() -> Histogram {
    // 50 ms to ~7 h: a scheduler that keeps up stays in the first buckets; MISSED is past 1 h.
    Histogram::new(exponential_buckets(0.05, 2.0, 20))
}

/// The instruments. Use [`metrics()`].
pub struct Metrics {
    registry: Registry,
    pub graphql_requests: Family<OperationLabels, Counter>,
    pub graphql_request_duration: Family<OperationLabels, Histogram, fn() -> Histogram>,
    pub graphql_errors: Family<CodeLabels, Counter>,
    pub live_subscriptions: Gauge,
    pub outbox_pending: Gauge,
    pub outbox_oldest_pending_age: Seconds,
    pub dead_letters_parked: Gauge,
    pub relay_published: Family<TopicLabels, Counter>,
    pub relay_produce_errors: Family<TopicLabels, Counter>,
    pub consumer_lag: Family<PartitionLabels, Gauge>,
    pub consumer_partitions: Family<ConsumerLabels, Gauge>,
    pub consumer_records: Family<RecordLabels, Counter>,
    pub consumer_retries: Family<ConsumerLabels, Counter>,
    pub consumer_dead_letters: Family<ConsumerLabels, Counter>,
    pub reminder_lateness: Family<OutcomeLabels, Histogram, fn() -> Histogram>,
    pub webhook_deliveries: Family<OutcomeLabels, Counter>,
    pub retention_deleted_rows: Family<TableLabels, Counter>,
    pub component_up: Family<ComponentLabels, Gauge>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

/// The whole registry in the OpenMetrics text format (which Prometheus scrapes natively).
pub fn render() -> String {
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &METRICS.registry) {
        tracing::warn!(error = %e, "cannot encode the metrics");
    }
    out
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("taskstream");
        let graphql_requests = Family::default();
        registry.register(
            "graphql_requests",
            "GraphQL operations executed, by kind and first root field",
            graphql_requests.clone(),
        );
        let graphql_request_duration: Family<_, _, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "graphql_request_duration_seconds",
            "GraphQL operation latency (parse, validate, execute), by kind and first root field",
            graphql_request_duration.clone(),
        );
        let graphql_errors = Family::default();
        registry.register(
            "graphql_errors",
            "GraphQL errors returned to clients, by extensions.code",
            graphql_errors.clone(),
        );
        let live_subscriptions = Gauge::default();
        registry.register(
            "live_subscriptions",
            "Live GraphQL subscriptions (taskChanged, notificationReceived) open on this gateway",
            live_subscriptions.clone(),
        );
        let outbox_pending = Gauge::default();
        registry.register(
            "outbox_pending",
            "Outbox rows not yet published to the broker (distributed mode; 0 in embedded \
             mode, where the outbox is the log and consumer lag measures the backlog)",
            outbox_pending.clone(),
        );
        let outbox_oldest_pending_age = Seconds::default();
        registry.register(
            "outbox_oldest_pending_age_seconds",
            "Age of the oldest unpublished outbox row (0 when none)",
            outbox_oldest_pending_age.clone(),
        );
        let dead_letters_parked = Gauge::default();
        registry.register(
            "dead_letters_parked",
            "Dead letters in status PARKED (all consumers), read from the database",
            dead_letters_parked.clone(),
        );
        let relay_published = Family::default();
        registry.register(
            "relay_published_records",
            "Outbox rows the relay published to the broker, by topic",
            relay_published.clone(),
        );
        let relay_produce_errors = Family::default();
        registry.register(
            "relay_produce_errors",
            "Outbox rows whose produce failed (they stay pending and are retried), by topic",
            relay_produce_errors.clone(),
        );
        let consumer_lag = Family::default();
        registry.register(
            "consumer_lag_records",
            "Records between a consumer's stored offset and the partition's end, as of its \
             last fetch (embedded mode: the outbox's end)",
            consumer_lag.clone(),
        );
        let consumer_partitions = Family::default();
        registry.register(
            "consumer_partitions",
            "Partitions of its topic this consumer instance is consuming now (with leases, its \
             share; with fixed partitions, all it was given)",
            consumer_partitions.clone(),
        );
        let consumer_records = Family::default();
        registry.register(
            "consumer_records",
            "Records a consumer got through, by outcome: applied, ignored (not of interest) or \
             duplicate (already processed)",
            consumer_records.clone(),
        );
        let consumer_retries = Family::default();
        registry.register(
            "consumer_retries",
            "Retries of a failing record (handler or database error)",
            consumer_retries.clone(),
        );
        let consumer_dead_letters = Family::default();
        registry.register(
            "consumer_dead_letters",
            "Records parked in dead_letters by this process",
            consumer_dead_letters.clone(),
        );
        let reminder_lateness: Family<_, _, fn() -> Histogram> =
            Family::new_with_constructor(lateness_histogram);
        registry.register(
            "reminder_lateness_seconds",
            "How late a reminder fired after its fire time, by outcome (fired, missed)",
            reminder_lateness.clone(),
        );
        let webhook_deliveries = Family::default();
        registry.register(
            "webhook_delivery_attempts",
            "Webhook delivery attempts, by outcome: delivered, retry (will be retried), failed \
             (given up, parked)",
            webhook_deliveries.clone(),
        );
        let retention_deleted_rows = Family::default();
        registry.register(
            "retention_deleted_rows",
            "Rows the retention loop deleted, by table",
            retention_deleted_rows.clone(),
        );
        let component_up = Family::default();
        registry.register(
            "component_up",
            "1 while a long-lived task of the gateway runs, 0 once it halted before shutdown \
             (/readyz then fails naming it)",
            component_up.clone(),
        );
        Metrics {
            registry,
            graphql_requests,
            graphql_request_duration,
            graphql_errors,
            live_subscriptions,
            outbox_pending,
            outbox_oldest_pending_age,
            dead_letters_parked,
            relay_published,
            relay_produce_errors,
            consumer_lag,
            consumer_partitions,
            consumer_records,
            consumer_retries,
            consumer_dead_letters,
            reminder_lateness,
            webhook_deliveries,
            retention_deleted_rows,
            component_up,
        }
    }

    /// Sets the lag of one consumer partition.
    pub fn set_consumer_lag(&self, consumer: &str, topic: &str, partition: i32, lag: i64) {
        self.consumer_lag
            .get_or_create(&PartitionLabels {
                consumer: consumer.to_owned(),
                topic: topic.to_owned(),
                partition: partition.to_string(),
            })
            .set(lag.max(0));
    }

    /// Forgets the lag of a consumer partition this instance no longer consumes (its new owner
    /// reports it), so that summing the lag over instances counts each partition once.
    pub fn clear_consumer_lag(&self, consumer: &str, topic: &str, partition: i32) {
        self.consumer_lag.remove(&PartitionLabels {
            consumer: consumer.to_owned(),
            topic: topic.to_owned(),
            partition: partition.to_string(),
        });
    }

    /// Sets how many partitions of its topic a consumer instance is consuming.
    pub fn set_consumer_partitions(&self, consumer: &str, topic: &str, n: usize) {
        self.consumer_partitions
            .get_or_create(&Self::consumer_labels(consumer, topic))
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Counts `n` records of a consumer with `outcome`.
    pub fn count_records(&self, consumer: &str, topic: &str, outcome: &str, n: u64) {
        if n == 0 {
            return;
        }
        self.consumer_records
            .get_or_create(&RecordLabels {
                consumer: consumer.to_owned(),
                topic: topic.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc_by(n);
    }

    /// Counts one retry of a failed record by a consumer.
    pub fn count_consumer_retry(&self, consumer: &str, topic: &str) {
        self.consumer_retries
            .get_or_create(&Self::consumer_labels(consumer, topic))
            .inc();
    }

    /// Counts one record a consumer parked as a dead letter.
    pub fn count_dead_letter(&self, consumer: &str, topic: &str) {
        self.consumer_dead_letters
            .get_or_create(&Self::consumer_labels(consumer, topic))
            .inc();
    }

    /// The labels of a consumer on a topic.
    pub fn consumer_labels(consumer: &str, topic: &str) -> ConsumerLabels {
        ConsumerLabels {
            consumer: consumer.to_owned(),
            topic: topic.to_owned(),
        }
    }

    /// Counts one webhook delivery attempt with `outcome`.
    pub fn count_webhook(&self, outcome: &str) {
        self.webhook_deliveries
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Counts `n` rows the retention loop deleted from `table`.
    pub fn count_retention_deleted(&self, table: &str, n: u64) {
        self.retention_deleted_rows
            .get_or_create(&TableLabels {
                table: table.to_owned(),
            })
            .inc_by(n);
    }

    /// Sets whether the gateway component `name` runs.
    pub fn component_up(&self, name: &str, up: bool) {
        self.component_up
            .get_or_create(&ComponentLabels {
                component: name.to_owned(),
            })
            .set(i64::from(up));
    }

    /// Records a reminder that fired `lateness` after its time.
    pub fn observe_reminder_lateness(&self, outcome: &str, lateness_seconds: f64) {
        self.reminder_lateness
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .observe(lateness_seconds.max(0.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_lists_every_metric_with_the_prefix() {
        let m = metrics();
        let op = OperationLabels {
            kind: "query".into(),
            operation: "tasks".into(),
        };
        m.graphql_requests.get_or_create(&op).inc();
        m.graphql_request_duration.get_or_create(&op).observe(0.01);
        m.graphql_errors
            .get_or_create(&CodeLabels {
                code: "NOT_FOUND".into(),
            })
            .inc();
        let topic = TopicLabels {
            topic: "task-events".into(),
        };
        m.relay_published.get_or_create(&topic).inc();
        m.relay_produce_errors.get_or_create(&topic).inc();
        m.set_consumer_lag("recurrence", "task-events", 0, 3);
        m.set_consumer_partitions("recurrence", "task-events", 2);
        m.count_records("recurrence", "task-events", "applied", 2);
        let consumer = Metrics::consumer_labels("recurrence", "task-events");
        m.consumer_retries.get_or_create(&consumer).inc();
        m.consumer_dead_letters.get_or_create(&consumer).inc();
        m.observe_reminder_lateness("fired", 0.2);
        m.count_webhook("delivered");
        m.count_retention_deleted("outbox", 2);
        m.component_up("relay", true);
        let text = render();
        for name in [
            "taskstream_graphql_requests",
            "taskstream_graphql_request_duration_seconds",
            "taskstream_graphql_errors",
            "taskstream_live_subscriptions",
            "taskstream_outbox_pending",
            "taskstream_outbox_oldest_pending_age_seconds",
            "taskstream_dead_letters_parked",
            "taskstream_relay_published_records",
            "taskstream_relay_produce_errors",
            "taskstream_consumer_lag_records",
            "taskstream_consumer_records",
            "taskstream_consumer_retries",
            "taskstream_consumer_dead_letters",
            "taskstream_reminder_lateness_seconds",
            "taskstream_webhook_delivery_attempts",
            "taskstream_retention_deleted_rows",
            "taskstream_component_up",
        ] {
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "{name} in {text}"
            );
        }
        assert!(text.contains(
            "taskstream_consumer_lag_records{consumer=\"recurrence\",topic=\"task-events\",partition=\"0\"} 3"
        ));
        assert!(text.contains("taskstream_retention_deleted_rows_total{table=\"outbox\"} "));
        assert!(text.ends_with("# EOF\n"));

        // The example alerts and dashboard query only series this process renders (a renamed
        // metric would leave an alert that never fires).
        let exported: std::collections::BTreeSet<&str> = text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.split(['{', ' ']).next())
            .collect();
        for (file, body) in [
            (
                "alerts.yaml",
                include_str!("../../infra/observability/alerts.yaml"),
            ),
            (
                "grafana-dashboard.json",
                include_str!("../../infra/observability/grafana-dashboard.json"),
            ),
        ] {
            let queried = series_names(body);
            assert!(queried.len() >= 5, "{file} queries {queried:?}");
            for name in queried {
                assert!(
                    exported.contains(name.as_str()),
                    "{file} queries {name}, which is not exported; exported: {exported:?}"
                );
            }
        }
    }

    /// Every `taskstream_…` identifier in `text`.
    fn series_names(text: &str) -> std::collections::BTreeSet<String> {
        text.match_indices("taskstream_")
            .map(|(at, _)| {
                text[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect()
            })
            .collect()
    }
}
