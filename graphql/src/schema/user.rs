//! `User`, `me` and `updateSettings`.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, Result};
use entities::user;

use super::{db, now, viewer};
use crate::service::user as service;

/// The caller and their settings.
pub struct User(pub user::Model);

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    /// IANA time zone name.
    async fn timezone(&self) -> &str {
        &self.0.timezone
    }

    async fn webhook_url(&self) -> Option<&str> {
        self.0.webhook_url.as_deref()
    }
}

/// Absent = unchanged, null = clear.
#[derive(InputObject, Debug, Default)]
pub struct SettingsInput {
    /// IANA time zone name, e.g. "Europe/London". Cannot be cleared.
    pub timezone: MaybeUndefined<String>,
    /// http(s) URL that receives signed notification webhooks.
    pub webhook_url: MaybeUndefined<String>,
    /// Secret for the HMAC-SHA256 signature (16 to 256 characters); never returned.
    pub webhook_secret: MaybeUndefined<String>,
}

#[derive(Default)]
pub struct UserQuery;

#[Object]
impl UserQuery {
    /// The caller.
    async fn me(&self, ctx: &Context<'_>) -> Result<User> {
        let user = viewer(ctx)?;
        Ok(User(
            service::find_or_default(db(ctx), &user.id, now(ctx)).await?,
        ))
    }
}

#[derive(Default)]
pub struct UserMutation;

#[Object]
impl UserMutation {
    async fn update_settings(&self, ctx: &Context<'_>, input: SettingsInput) -> Result<User> {
        let user = viewer(ctx)?;
        let patch = service::SettingsPatch {
            timezone: match input.timezone {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => {
                    return Err(crate::error::ApiError::invalid(
                        "input.timezone",
                        "input.timezone cannot be null; give an IANA time zone name",
                    )
                    .into());
                }
                MaybeUndefined::Value(tz) => {
                    Some(service::validate_timezone("input.timezone", &tz)?)
                }
            },
            webhook_url: match input.webhook_url {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(u) => {
                    let targets = ctx
                        .data_opt::<subscribers::webhook::TargetPolicy>()
                        .cloned()
                        .unwrap_or_default();
                    Some(Some(service::validate_webhook_url(
                        "input.webhookUrl",
                        &u,
                        &targets,
                    )?))
                }
            },
            webhook_secret: match input.webhook_secret {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(s) => Some(Some(service::validate_webhook_secret(
                    "input.webhookSecret",
                    &s,
                )?)),
            },
        };
        Ok(User(
            service::update_settings(db(ctx), &user.id, patch, now(ctx)).await?,
        ))
    }
}
