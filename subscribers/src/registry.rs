//! The one list of subscribers. Everything that runs, replays or reports subscribers iterates
//! [`Subscriber::ALL`] (or looks one up by name) instead of naming them: the gateway's embedded
//! wiring and its health components, `taskstream dlq replay`, the distributed binaries
//! ([`crate::process::run_binary`]) and their default metrics ports, and retention's list of
//! the embedded consumers. Adding a subscriber is one variant here, with its handler (and
//! companion loop, if any).
//!
//! Per subscriber it records the consumer name (offsets, processed events, dead letters), the
//! topic, the CloudEvent types its handler acts on (the runtime skips the others, see
//! [`stream::consumer::Handler::event_types`]), the gateway's health component, the binary that
//! runs it in distributed mode with that binary's default metrics port, how to build its
//! handler ([`AnyHandler`]), and the loop that runs beside it ([`Companion`]: the reminder
//! scheduler, the webhook dispatcher).
//!
//! `stream::consumer::Handler` uses `async fn` in a trait and is not object safe, so the
//! handlers are gathered in an enum that implements it by delegation rather than boxed.

use std::future::Future;
use std::time::Duration;

use sea_orm::{DatabaseConnection, DatabaseTransaction};
use stream::consumer::{Consumer, ConsumerConfig, Handler, HandlerError, HandlerOutcome};
use stream::log::{LogReader, LogRecord};
use stream::topics;

use crate::Clock;
use crate::notification::{self, NotificationHandler};
use crate::recurrence::{self, RecurrenceHandler};
use crate::reminder::{self, ReminderHandler};
use crate::reminder_scheduler::{DEFAULT_LATENESS, ReminderScheduler};
use crate::webhook::{self, WebhookDispatcher, WebhookHandler, WebhookSettings};

/// One subscriber: a handler on one topic, run in-process in embedded mode and by its binary in
/// distributed mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Subscriber {
    /// Creates the next occurrence of completed recurring tasks.
    Recurrence,
    /// Keeps reminders in step with their tasks (and fires them: [`Companion::ReminderScheduler`]).
    Reminder,
    /// Turns fired reminders into in-app notifications.
    Notification,
    /// Queues webhook deliveries of new notifications (sent by [`Companion::WebhookDispatcher`]).
    Webhook,
}

/// What subscribers need beyond the database: where "now" comes from, the reminder lateness
/// and the webhook settings. The default is the system clock, [`DEFAULT_LATENESS`] and
/// [`WebhookSettings::default`].
#[derive(Clone, Debug)]
pub struct SubscriberSettings {
    pub clock: Clock,
    /// Later than this, the reminder scheduler reports a reminder missed rather than fired.
    pub reminder_lateness: Duration,
    pub webhooks: WebhookSettings,
}

impl Default for SubscriberSettings {
    fn default() -> SubscriberSettings {
        SubscriberSettings {
            clock: Clock::System,
            reminder_lateness: DEFAULT_LATENESS,
            webhooks: WebhookSettings::default(),
        }
    }
}

impl Subscriber {
    /// Every subscriber, in the order they are started and reported.
    pub const ALL: [Subscriber; 4] = [
        Subscriber::Recurrence,
        Subscriber::Reminder,
        Subscriber::Notification,
        Subscriber::Webhook,
    ];

    /// The consumer name: the key of its offsets, processed events and dead letters.
    pub fn name(self) -> &'static str {
        match self {
            Subscriber::Recurrence => recurrence::CONSUMER,
            Subscriber::Reminder => reminder::CONSUMER,
            Subscriber::Notification => notification::CONSUMER,
            Subscriber::Webhook => webhook::CONSUMER,
        }
    }

    /// The topic it consumes.
    pub fn topic(self) -> &'static str {
        match self {
            Subscriber::Recurrence | Subscriber::Reminder => topics::TASK_EVENTS,
            Subscriber::Notification => topics::REMINDERS,
            Subscriber::Webhook => topics::NOTIFICATIONS,
        }
    }

    /// The CloudEvent types its handler acts on; the runtime skips records of other types.
    pub fn event_types(self) -> &'static [&'static str] {
        match self {
            Subscriber::Recurrence => recurrence::EVENT_TYPES,
            Subscriber::Reminder => reminder::EVENT_TYPES,
            Subscriber::Notification => notification::EVENT_TYPES,
            Subscriber::Webhook => webhook::EVENT_TYPES,
        }
    }

    /// The gateway's health component (`/readyz`) of the subscriber run in-process.
    pub fn component(self) -> &'static str {
        match self {
            Subscriber::Recurrence => "subscriber recurrence",
            Subscriber::Reminder => "subscriber reminder",
            Subscriber::Notification => "subscriber notification",
            Subscriber::Webhook => "subscriber webhook",
        }
    }

    /// The binary that runs it in distributed mode (`src/bin/<binary>.rs`).
    pub fn binary(self) -> &'static str {
        match self {
            Subscriber::Recurrence => "recurrence",
            Subscriber::Reminder => "reminder",
            Subscriber::Notification | Subscriber::Webhook => "notification",
        }
    }

    /// The default loopback port of its binary's `/metrics` and `/healthz` (one per binary, so
    /// the binaries can run side by side on a laptop).
    pub fn metrics_port(self) -> u16 {
        match self {
            Subscriber::Recurrence => 9091,
            Subscriber::Reminder => 9092,
            Subscriber::Notification | Subscriber::Webhook => 9093,
        }
    }

    /// The subscriber whose consumer is named `name`.
    pub fn named(name: &str) -> Option<Subscriber> {
        Subscriber::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The subscribers `binary` runs, in [`Subscriber::ALL`] order.
    pub fn in_binary(binary: &str) -> impl Iterator<Item = Subscriber> + '_ {
        Subscriber::ALL
            .into_iter()
            .filter(move |s| s.binary() == binary)
    }

    /// Its handler.
    pub fn handler(self, settings: &SubscriberSettings) -> AnyHandler {
        match self {
            Subscriber::Recurrence => {
                AnyHandler::Recurrence(RecurrenceHandler::new(settings.clock))
            }
            Subscriber::Reminder => AnyHandler::Reminder(ReminderHandler::new()),
            Subscriber::Notification => AnyHandler::Notification(NotificationHandler::new()),
            Subscriber::Webhook => AnyHandler::Webhook(WebhookHandler::new()),
        }
    }

    /// Its consumer on `log`, consuming `partitions` of its topic: all of them, or with
    /// `lease`, its share of them among the subscriber's running instances.
    pub fn consumer<L: LogReader + 'static>(
        self,
        db: DatabaseConnection,
        log: L,
        settings: &SubscriberSettings,
        partitions: Vec<i32>,
        lease: Option<stream::consumer::LeaseConfig>,
    ) -> Consumer<L, AnyHandler> {
        let config = ConsumerConfig {
            partitions,
            lease,
            fetch_max_wait: log.idle_fetch_wait(),
            ..ConsumerConfig::new(self.name(), self.topic())
        };
        Consumer::new(db, log, self.handler(settings), config)
    }

    /// The loop that runs beside its consumer, if any. Fails on settings it cannot use (the
    /// webhook dispatcher's HTTP client).
    pub fn companion(
        self,
        db: &DatabaseConnection,
        settings: &SubscriberSettings,
    ) -> anyhow::Result<Option<Companion>> {
        Ok(match self {
            Subscriber::Recurrence | Subscriber::Notification => None,
            Subscriber::Reminder => Some(Companion::ReminderScheduler(ReminderScheduler {
                lateness: settings.reminder_lateness,
                ..ReminderScheduler::new(db.clone(), settings.clock)
            })),
            Subscriber::Webhook => Some(Companion::WebhookDispatcher(WebhookDispatcher::new(
                db.clone(),
                settings.webhooks.clone(),
                settings.clock,
            )?)),
        })
    }
}

/// The companions of `subscribers`, in their order.
pub fn companions(
    subscribers: impl IntoIterator<Item = Subscriber>,
    db: &DatabaseConnection,
    settings: &SubscriberSettings,
) -> anyhow::Result<Vec<Companion>> {
    subscribers
        .into_iter()
        .filter_map(|s| s.companion(db, settings).transpose())
        .collect()
}

/// A loop that runs beside a subscriber's consumer, on the database only.
#[derive(Clone, Debug)]
pub enum Companion {
    /// Fires due reminders into `reminders` (beside [`Subscriber::Reminder`]).
    ReminderScheduler(ReminderScheduler),
    /// Sends queued webhook deliveries (beside [`Subscriber::Webhook`]).
    WebhookDispatcher(WebhookDispatcher),
}

impl Companion {
    /// Its name as a component of a process (in `/readyz` and logs).
    pub fn component(&self) -> &'static str {
        match self {
            Companion::ReminderScheduler(_) => "reminder scheduler",
            Companion::WebhookDispatcher(_) => "webhook dispatcher",
        }
    }

    /// Runs until `shutdown` completes (a pass in flight finishes first).
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        match self {
            Companion::ReminderScheduler(scheduler) => scheduler.run(shutdown).await,
            Companion::WebhookDispatcher(dispatcher) => dispatcher.run(shutdown).await,
        }
    }
}

/// The handler of any [`Subscriber`], implementing [`Handler`] by delegation.
#[derive(Clone, Debug)]
pub enum AnyHandler {
    Recurrence(RecurrenceHandler),
    Reminder(ReminderHandler),
    Notification(NotificationHandler),
    Webhook(WebhookHandler),
}

impl Handler for AnyHandler {
    fn name(&self) -> &str {
        match self {
            AnyHandler::Recurrence(h) => h.name(),
            AnyHandler::Reminder(h) => h.name(),
            AnyHandler::Notification(h) => h.name(),
            AnyHandler::Webhook(h) => h.name(),
        }
    }

    fn event_types(&self) -> Option<&'static [&'static str]> {
        match self {
            AnyHandler::Recurrence(h) => h.event_types(),
            AnyHandler::Reminder(h) => h.event_types(),
            AnyHandler::Notification(h) => h.event_types(),
            AnyHandler::Webhook(h) => h.event_types(),
        }
    }

    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        record: &LogRecord,
    ) -> Result<HandlerOutcome, HandlerError> {
        match self {
            AnyHandler::Recurrence(h) => h.handle(txn, record).await,
            AnyHandler::Reminder(h) => h.handle(txn, record).await,
            AnyHandler::Notification(h) => h.handle(txn, record).await,
            AnyHandler::Webhook(h) => h.handle(txn, record).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_components_and_lookups_agree() {
        for s in Subscriber::ALL {
            assert_eq!(Subscriber::named(s.name()), Some(s));
            assert_eq!(s.handler(&SubscriberSettings::default()).name(), s.name());
            assert_eq!(
                s.handler(&SubscriberSettings::default()).event_types(),
                Some(s.event_types())
            );
            assert_eq!(s.component(), format!("subscriber {}", s.name()));
            assert!(!s.event_types().is_empty());
        }
        assert_eq!(Subscriber::named("nobody"), None);
    }

    #[test]
    fn each_binary_has_one_metrics_port_of_its_own() {
        for a in Subscriber::ALL {
            for b in Subscriber::ALL {
                assert_eq!(
                    a.binary() == b.binary(),
                    a.metrics_port() == b.metrics_port(),
                    "{a:?} and {b:?}"
                );
            }
        }
        let notification: Vec<_> = Subscriber::in_binary("notification").collect();
        assert_eq!(
            notification,
            [Subscriber::Notification, Subscriber::Webhook]
        );
    }
}
