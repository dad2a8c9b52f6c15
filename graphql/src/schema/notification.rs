//! `Notification`, the `notifications` inbox query, `markNotificationRead` and the
//! `notificationReceived` subscription.
//!
//! `notificationReceived` delivers the caller's new notifications from the gateway's
//! [`LiveHub`] (fed by the `notifications` topic), from the moment of subscribing; like
//! `taskChanged`, a subscriber that falls more than the hub's capacity behind gets one
//! `RATE_LIMITED` error and its stream ends, and it counts against the socket's cap.

use async_graphql::{Context, ID, Object, Result, Subscription};
use chrono::{DateTime, Utc};
use entities::notification;
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use super::subscription::{SocketSubscriptions, SubscriptionSlot};
use super::task::Task;
use super::task_list::PageInfo;
use super::{db, now, parse_id, viewer};
use crate::error::ApiError;
use crate::live::{LiveHub, LiveNotification};
use crate::service::notification as service;

/// An in-app notification of the caller (today: a reminder that fired or was missed).
pub struct Notification(pub notification::Model);

#[Object]
impl Notification {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// `REMINDER_DUE` or `REMINDER_MISSED`.
    async fn kind(&self) -> &str {
        self.0.kind.as_str()
    }

    async fn title(&self) -> &str {
        &self.0.title
    }

    async fn body(&self) -> &str {
        &self.0.body
    }

    /// The task it is about; null when the task has been deleted since.
    async fn task(&self, ctx: &Context<'_>) -> Result<Option<Task>> {
        let Some(task_id) = self.0.task_id else {
            return Ok(None);
        };
        Ok(
            crate::service::task::find_task(db(ctx), &self.0.owner_id, task_id)
                .await?
                .map(Task::from),
        )
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// Null while unread.
    async fn read_at(&self) -> Option<DateTime<Utc>> {
        self.0.read_at
    }

    /// The task's due date when the reminder fired; null if it had none (and for
    /// notifications from before this field existed). Word it in your own time zone.
    async fn due_at(&self) -> Option<DateTime<Utc>> {
        self.0.due_at
    }

    /// The time the reminder was set for; null for notifications from before this field
    /// existed.
    async fn remind_at(&self) -> Option<DateTime<Utc>> {
        self.0.remind_at
    }
}

/// A page of notifications, newest first. `totalCount` runs a COUNT only when selected.
pub struct NotificationConnection {
    query: service::NotificationListQuery,
    page: service::NotificationPage,
}

#[Object]
impl NotificationConnection {
    async fn nodes(&self) -> Vec<Notification> {
        self.page.rows.iter().cloned().map(Notification).collect()
    }

    async fn page_info(&self) -> PageInfo {
        PageInfo {
            has_next_page: self.page.has_next_page,
            has_previous_page: self.page.has_previous_page,
            start_cursor: self.page.cursors.first().cloned(),
            end_cursor: self.page.cursors.last().cloned(),
        }
    }

    /// All notifications of the list (unread only, if asked), ignoring paging.
    async fn total_count(&self, ctx: &Context<'_>) -> Result<i32> {
        let n = service::count_notifications(db(ctx), &self.query).await?;
        Ok(i32::try_from(n).unwrap_or(i32::MAX))
    }
}

#[derive(Default)]
pub struct NotificationQuery;

#[Object]
impl NotificationQuery {
    /// The caller's notifications, newest first. `first` is 20 by default, at most 100;
    /// `after` is the `endCursor` of the previous page.
    #[graphql(complexity = "first.map_or(20, |n| n.clamp(1, 100) as usize) * child_complexity")]
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        unread_only: Option<bool>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<NotificationConnection> {
        let user = viewer(ctx)?;
        let query = service::NotificationListQuery {
            owner_id: user.id.clone(),
            unread_only: unread_only.unwrap_or(false),
        };
        let page = service::list_notifications(db(ctx), &query, first, after.as_deref()).await?;
        Ok(NotificationConnection { query, page })
    }
}

#[derive(Default)]
pub struct NotificationMutation;

#[Object]
impl NotificationMutation {
    /// Marks one of the caller's notifications read; marking it again keeps the first
    /// `readAt`. NOT_FOUND for an unknown id or another user's notification.
    async fn mark_notification_read(&self, ctx: &Context<'_>, id: ID) -> Result<Notification> {
        let user = viewer(ctx)?;
        let id = parse_id("notification", &id)?;
        Ok(Notification(
            service::mark_read(db(ctx), &user.id, id, now(ctx)).await?,
        ))
    }
}

#[derive(Default)]
pub struct NotificationSubscription;

#[Subscription]
impl NotificationSubscription {
    /// The caller's new notifications from now on (reminders that fired or were missed). A
    /// subscriber that falls too far behind gets a RATE_LIMITED error and the stream ends:
    /// subscribe again and refetch with the notifications query.
    async fn notification_received(
        &self,
        ctx: &Context<'_>,
    ) -> Result<impl Stream<Item = Result<Notification>> + use<>> {
        let owner_id = viewer(ctx)?.id.clone();
        let hub = ctx
            .data::<LiveHub>()
            .map_err(|_| ApiError::internal(anyhow::anyhow!("BUG: the schema has no LiveHub")))?;
        let slot = ctx
            .data_opt::<SocketSubscriptions>()
            .map(SocketSubscriptions::acquire)
            .transpose()?;
        let live = LiveInbox {
            rx: hub.subscribe_notifications(),
            owner_id,
            _slot: slot,
        };
        Ok(futures_util::stream::unfold(Some(live), next_notification))
    }
}

/// One `notificationReceived` subscription's state.
struct LiveInbox {
    rx: tokio::sync::broadcast::Receiver<LiveNotification>,
    owner_id: String,
    _slot: Option<SubscriptionSlot>,
}

/// The subscriber's next notification; after a lag error the state is `None` and it ends.
async fn next_notification(
    state: Option<LiveInbox>,
) -> Option<(Result<Notification>, Option<LiveInbox>)> {
    let mut live = state?;
    loop {
        match live.rx.recv().await {
            Ok(n) if n.owner_id == live.owner_id => {
                let notification = Notification((*n.notification).clone());
                return Some((Ok(notification), Some(live)));
            }
            Ok(_) => continue,
            Err(RecvError::Lagged(missed)) => {
                let err = ApiError::RateLimited(format!(
                    "this subscription fell {missed} notifications behind and was ended; \
                     subscribe again and refetch with the notifications query"
                ));
                return Some((Err(err.into()), None));
            }
            Err(RecvError::Closed) => return None,
        }
    }
}
