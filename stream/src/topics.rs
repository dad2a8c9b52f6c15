//! Topic names (the wire contract) and their dead-letter twins.

/// The immutable history of task changes, each with the full post-change snapshot.
/// Consumed by the recurrence and reminder subscribers.
pub const TASK_EVENTS: &str = "task-events";
/// Latest state per task for client sync; compaction-friendly (a delete is a tombstone).
/// Consumed by the gateway for live subscriptions.
pub const TASK_UPDATES: &str = "task-updates";
/// `ReminderDue` events from the reminder scheduler; consumed by the notification subscriber.
pub const REMINDERS: &str = "reminders";
/// `NotificationCreated` events; consumed by the gateway for live push.
pub const NOTIFICATIONS: &str = "notifications";

/// Every topic Taskstream produces to, in a stable order.
pub const ALL: [&str; 4] = [TASK_EVENTS, TASK_UPDATES, REMINDERS, NOTIFICATIONS];

/// The dead-letter topic of `topic`: `<topic>.dlq`.
pub fn dlq(topic: &str) -> String {
    format!("{topic}.dlq")
}

#[cfg(test)]
mod tests {
    #[test]
    fn dead_letter_topic_appends_dlq() {
        assert_eq!(super::dlq(super::TASK_EVENTS), "task-events.dlq");
    }
}
