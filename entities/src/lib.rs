//! Taskstream's data model: sea-orm entities (one module per table) and the pure domain value
//! types stored in their columns ([`priority::Priority`], [`recurrence::RecurrenceRule`],
//! [`reminder_offset::ReminderSpec`]) with their validation and arithmetic.
//!
//! This crate deliberately does no IO: it never opens a connection, reads a clock it was not
//! given, or talks to the broker. Everything here is a pure function with unit tests, so the
//! gateway and the subscribers share one definition of every rule.
//!
//! Module map:
//! - tables: [`user`], [`task`], [`tag`], [`task_tag`], [`reminder`], [`outbox`],
//!   [`consumer_offset`], [`consumer_member`], [`consumer_lease`], [`processed_event`],
//!   [`dead_letter`], [`notification`], [`idempotency_key`], [`task_version`],
//!   [`calendar_feed`];
//! - domain values: [`priority`], [`recurrence`], [`reminder_offset`], [`limits`];
//! - text: [`search`] (the words tasks are searched by and the key titles sort by).
//!
//! Every closed set of names a column stores or an event carries (priority, anchor, statuses,
//! kinds) is a Rust enum mapped by sea-orm and serde to the same names, so a row or an event
//! holding any other value fails to decode ([`UnknownValue`]) instead of being read as a
//! default; the database refuses such values too (`ck_<table>_<column>`).

/// A stored or transmitted name that is not one of its closed set: an unknown priority, anchor,
/// status or kind. Decoding an event with one fails with this message (it names the field's
/// type and the value); a row with one fails to load (`DbErr::Type`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?} (expected one of {expected})")]
pub struct UnknownValue {
    /// What the value is, in words (`priority`, `reminder status`, ...).
    pub what: &'static str,
    /// The value as it was found.
    pub value: String,
    /// The accepted names, comma-separated.
    pub expected: String,
}

impl UnknownValue {
    /// `value` is not one of `names`.
    pub fn new(what: &'static str, value: &str, names: &[&str]) -> UnknownValue {
        UnknownValue {
            what,
            value: value.to_owned(),
            expected: names.join(", "),
        }
    }
}

/// Defines a closed set of names stored in a text column and carried in event payloads:
/// `enum $name("what it is") { Variant = "NAME", ... }`. It derives the sea-orm mapping (a row
/// holding another text fails to load with `DbErr::Type`) and the serde mapping (an event
/// carrying another name fails to deserialise with [`UnknownValue`]), both through the same
/// names, and adds `ALL`, `as_str`, `parse`, `Display` and `TryFrom<String>`.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, Hash,
            sea_orm::EnumIter, sea_orm::DeriveActiveEnum, serde::Serialize, serde::Deserialize,
        )]
        #[sea_orm(rs_type = "String", db_type = "String(sea_orm::sea_query::StringLen::None)")]
        #[serde(try_from = "String", into = "&'static str")]
        $vis enum $name {
            $( $(#[$vmeta])* #[sea_orm(string_value = $text)] $variant ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored and wire name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The value named exactly `s` (case-sensitive), if any.
            pub fn parse(s: &str) -> Option<$name> {
                match s {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }

            /// The error for `value`, which is none of the names.
            pub(crate) fn unknown(value: &str) -> $crate::UnknownValue {
                $crate::UnknownValue::new($what, value, &[$($text),+])
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl From<$name> for &'static str {
            fn from(value: $name) -> &'static str {
                value.as_str()
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::UnknownValue;

            fn try_from(s: String) -> Result<$name, $crate::UnknownValue> {
                $name::parse(&s).ok_or_else(|| $name::unknown(&s))
            }
        }
    };
}

pub mod calendar_feed;
pub mod consumer_lease;
pub mod consumer_member;
pub mod consumer_offset;
pub mod dead_letter;
pub mod idempotency_key;
pub mod limits;
pub mod notification;
pub mod outbox;
pub mod priority;
pub mod processed_event;
pub mod recurrence;
pub mod reminder;
pub mod reminder_offset;
pub mod search;
pub mod tag;
pub mod task;
pub mod task_tag;
pub mod task_version;
pub mod user;
pub mod webhook_delivery;

/// Truncates a timestamp to whole microseconds, the precision PostgreSQL stores. Every
/// timestamp is truncated before it is written so that a value read back (and a keyset cursor
/// built from it) compares equal to the stored one on both databases.
pub fn to_db_precision(t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    t.trunc_subsecs(6)
}

#[cfg(test)]
mod tests {
    use sea_orm::ActiveEnum;

    use crate::dead_letter::DeadLetterStatus;
    use crate::notification::NotificationKind;
    use crate::recurrence::RecurrenceAnchor;
    use crate::reminder_offset::ReminderStatus;
    use crate::task_version::VersionKind;
    use crate::webhook_delivery::DeliveryStatus;

    /// Every value of a text enum round-trips through its name, serde and sea-orm, and an
    /// unknown name fails in all three, naming what it is and the value.
    fn round_trips<T>(all: &[T], names: &[&str], what: &str)
    where
        T: ActiveEnum<Value = String>
            + serde::Serialize
            + serde::de::DeserializeOwned
            + Copy
            + std::fmt::Debug
            + std::fmt::Display
            + PartialEq,
    {
        let shown: Vec<String> = all.iter().map(ToString::to_string).collect();
        assert_eq!(shown, names, "{what}: names");
        for (value, name) in all.iter().zip(names) {
            assert_eq!(value.to_value(), *name);
            assert_eq!(T::try_from_value(&(*name).to_owned()).ok(), Some(*value));
            let json = serde_json::to_value(value).unwrap();
            assert_eq!(json, serde_json::json!(name));
            assert_eq!(serde_json::from_value::<T>(json).unwrap(), *value);
        }
        for unknown in ["", "BOGUS", &names[0].to_lowercase()] {
            assert!(
                T::try_from_value(&unknown.to_owned()).is_err(),
                "{what}: {unknown:?}"
            );
            let error = serde_json::from_value::<T>(serde_json::json!(unknown))
                .unwrap_err()
                .to_string();
            assert!(
                error.starts_with(&format!("unknown {what} {unknown:?} (expected one of ")),
                "{error}"
            );
        }
        assert!(serde_json::from_value::<T>(serde_json::json!(1)).is_err());
    }

    #[test]
    fn every_text_enum_round_trips_and_refuses_unknown_names() {
        round_trips(
            RecurrenceAnchor::ALL,
            &["SCHEDULE", "COMPLETION"],
            "recurrence anchor",
        );
        round_trips(
            ReminderStatus::ALL,
            &["PENDING", "FIRED", "CANCELLED", "MISSED"],
            "reminder status",
        );
        round_trips(
            NotificationKind::ALL,
            &["REMINDER_DUE", "REMINDER_MISSED"],
            "notification kind",
        );
        round_trips(
            DeliveryStatus::ALL,
            &["PENDING", "DELIVERED", "FAILED"],
            "webhook delivery status",
        );
        round_trips(
            DeadLetterStatus::ALL,
            &["PARKED", "REPLAYED", "DISCARDED"],
            "dead-letter status",
        );
        round_trips(
            VersionKind::ALL,
            &[
                "CREATED",
                "UPDATED",
                "COMPLETED",
                "REOPENED",
                "DELETED",
                "RESTORED",
            ],
            "task version kind",
        );
    }

    #[test]
    fn dead_letter_statuses_parse_case_insensitively_for_flags() {
        for status in DeadLetterStatus::ALL {
            assert_eq!(
                status.as_str().parse::<DeadLetterStatus>().ok(),
                Some(*status)
            );
        }
        assert_eq!(
            " parked ".parse::<DeadLetterStatus>().ok(),
            Some(DeadLetterStatus::Parked)
        );
        let error = "gone".parse::<DeadLetterStatus>().unwrap_err().to_string();
        assert_eq!(
            error,
            "unknown dead-letter status \"gone\" (expected one of PARKED, REPLAYED, DISCARDED)"
        );
    }
}
