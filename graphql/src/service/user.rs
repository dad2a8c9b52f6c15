//! Users and their settings.

use chrono::{DateTime, Utc};
use entities::limits::no_nul;
use entities::user;
use sea_orm::{ActiveModelTrait, ConnectionTrait, DatabaseConnection, EntityTrait, Set};

use crate::error::{ApiError, ApiResult};

/// The default time zone of a user who has not chosen one.
pub const DEFAULT_TIMEZONE: &str = "UTC";

/// Shortest webhook secret accepted: 16 characters, so an HMAC signature cannot be forged by
/// guessing the secret.
pub const MIN_WEBHOOK_SECRET_CHARS: usize = 16;
/// Longest webhook secret accepted.
pub const MAX_WEBHOOK_SECRET_CHARS: usize = 256;

/// The user's row, or the defaults a user has before their first write.
pub async fn find_or_default<C: ConnectionTrait>(
    db: &C,
    user_id: &str,
    now: DateTime<Utc>,
) -> ApiResult<user::Model> {
    Ok(user::Entity::find_by_id(user_id.to_owned())
        .one(db)
        .await?
        .unwrap_or_else(|| default_user(user_id, now)))
}

fn default_user(user_id: &str, now: DateTime<Utc>) -> user::Model {
    user::Model {
        id: user_id.to_owned(),
        timezone: DEFAULT_TIMEZONE.to_owned(),
        webhook_url: None,
        webhook_secret: None,
        created_at: now,
        updated_at: now,
    }
}

/// Creates the user's row if it does not exist yet (every owned row references it).
pub async fn ensure_exists<C: ConnectionTrait>(
    db: &C,
    user_id: &str,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    let now = entities::to_db_precision(now);
    let row = user::ActiveModel {
        id: Set(user_id.to_owned()),
        timezone: Set(DEFAULT_TIMEZONE.to_owned()),
        webhook_url: Set(None),
        webhook_secret: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    };
    user::Entity::insert(row)
        .on_conflict_do_nothing_on([user::Column::Id])
        .exec(db)
        .await?;
    Ok(())
}

/// The users whose row this process has seen committed, so a write does not upsert the row
/// again on every request (the row is never deleted). One set per schema (per database); it
/// forgets everything when it reaches [`KnownUsers::CAPACITY`] entries, which only costs one
/// upsert per user again.
#[derive(Clone, Debug, Default)]
pub struct KnownUsers(std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>);

impl KnownUsers {
    /// Most user ids remembered.
    pub const CAPACITY: usize = 100_000;

    fn set(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `user_id`'s row is known to exist.
    pub fn contains(&self, user_id: &str) -> bool {
        self.set().contains(user_id)
    }

    /// Records that `user_id`'s row exists (call after the transaction that made sure of it
    /// committed).
    pub fn insert(&self, user_id: &str) {
        let mut set = self.set();
        if set.len() >= Self::CAPACITY {
            set.clear();
        }
        set.insert(user_id.to_owned());
    }
}

/// Creates the user's row in `txn` unless `known` says it exists; call
/// [`KnownUsers::insert`] after `txn` committed.
pub async fn ensure_exists_once<C: ConnectionTrait>(
    db: &C,
    known: &KnownUsers,
    user_id: &str,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    if known.contains(user_id) {
        return Ok(());
    }
    ensure_exists(db, user_id, now).await
}

/// A validated settings change; `None` = unchanged, `Some(None)` = clear.
#[derive(Clone, Debug, Default)]
pub struct SettingsPatch {
    pub timezone: Option<String>,
    pub webhook_url: Option<Option<String>>,
    pub webhook_secret: Option<Option<String>>,
}

/// Validates a time zone name; returns the canonical IANA name.
pub fn validate_timezone(field: &str, name: &str) -> ApiResult<String> {
    no_nul(field, name).map_err(ApiError::at(field))?;
    entities::recurrence::parse_timezone(name)
        .map(|tz| tz.name().to_owned())
        .map_err(|e| ApiError::invalid(field, format!("{field}: {e}")))
}

/// Validates a webhook URL: absolute http(s) with a host, at most
/// [`entities::limits::MAX_URL_CHARS`], and not a private, loopback or link-local IP literal
/// (or `localhost`) unless `targets` allows it. Host names are checked again, resolved, at
/// every delivery.
pub fn validate_webhook_url(
    field: &str,
    raw: &str,
    targets: &subscribers::webhook::TargetPolicy,
) -> ApiResult<String> {
    no_nul(field, raw).map_err(ApiError::at(field))?;
    let raw = raw.trim();
    if raw.chars().count() > entities::limits::MAX_URL_CHARS {
        return Err(ApiError::invalid(
            field,
            format!(
                "{field} is longer than {} characters",
                entities::limits::MAX_URL_CHARS
            ),
        ));
    }
    let url = reqwest::Url::parse(raw)
        .map_err(|e| ApiError::invalid(field, format!("{field} is not a valid URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ApiError::invalid(
            field,
            format!("{field} must be an http or https URL"),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ApiError::invalid(
            field,
            format!("{field} must name a host"),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ApiError::invalid(
            field,
            format!("{field} must not contain credentials; use webhookSecret"),
        ));
    }
    targets
        .check_url(url.as_str())
        .map_err(|e| ApiError::invalid(field, format!("{field}: {e}")))?;
    Ok(url.to_string())
}

/// Validates a webhook secret: its length, and no NUL character.
pub fn validate_webhook_secret(field: &str, secret: &str) -> ApiResult<String> {
    no_nul(field, secret).map_err(ApiError::at(field))?;
    let n = secret.chars().count();
    if !(MIN_WEBHOOK_SECRET_CHARS..=MAX_WEBHOOK_SECRET_CHARS).contains(&n) {
        return Err(ApiError::invalid(
            field,
            format!(
                "{field} must be {MIN_WEBHOOK_SECRET_CHARS} to {MAX_WEBHOOK_SECRET_CHARS} characters long"
            ),
        ));
    }
    Ok(secret.to_owned())
}

/// Applies a validated settings change and returns the user. One transaction: creating the
/// user's row and changing it commit together, so a change that fails leaves no row behind.
pub async fn update_settings(
    db: &DatabaseConnection,
    user_id: &str,
    patch: SettingsPatch,
    now: DateTime<Utc>,
) -> ApiResult<user::Model> {
    let txn = super::begin_write(db).await?;
    ensure_exists(&txn, user_id, now).await?;
    let current = user::Entity::find_by_id(user_id.to_owned())
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("user row vanished")))?;
    let mut row: user::ActiveModel = current.into();
    if let Some(tz) = patch.timezone {
        row.timezone = Set(tz);
    }
    if let Some(url) = patch.webhook_url {
        row.webhook_url = Set(url);
    }
    if let Some(secret) = patch.webhook_secret {
        row.webhook_secret = Set(secret);
    }
    row.updated_at = Set(entities::to_db_precision(now));
    let updated = row.update(&txn).await?;
    txn.commit().await?;
    Ok(updated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_must_be_http_with_a_host_and_no_credentials() {
        assert!(validate_webhook_url("u", "https://example.com/hook", &Default::default()).is_ok());
        for bad in [
            "ftp://example.com",
            "not a url",
            "https://user:pw@example.com/",
            "file:///etc/passwd",
            "",
        ] {
            let err =
                validate_webhook_url("input.webhookUrl", bad, &Default::default()).unwrap_err();
            assert!(
                err.to_string().starts_with("input.webhookUrl"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn settings_with_a_nul_character_are_rejected_naming_the_field() {
        let targets = Default::default();
        for err in [
            validate_timezone("input.timezone", "UTC\0").unwrap_err(),
            validate_webhook_url("input.webhookUrl", "https://example.com/\0", &targets)
                .unwrap_err(),
            validate_webhook_secret("input.webhookSecret", &format!("{}\0", "x".repeat(20)))
                .unwrap_err(),
        ] {
            assert!(
                err.to_string()
                    .ends_with("must not contain a NUL character"),
                "{err}"
            );
        }
    }

    #[test]
    fn short_webhook_secrets_are_rejected() {
        assert!(validate_webhook_secret("s", "short").is_err());
        assert!(validate_webhook_secret("s", &"x".repeat(16)).is_ok());
        assert!(validate_webhook_secret("s", &"x".repeat(257)).is_err());
    }
}
