//! Task priority, stored as its rank so that ordering by priority is an integer sort.

use sea_orm::{DeriveActiveEnum, EnumIter};
use serde::{Deserialize, Serialize};

/// How important a task is. Ordered: `Urgent` is highest.
///
/// Stored in `tasks.priority` as its rank (`ck_tasks_priority`: 0 to 4): a row with another
/// rank fails to load (`DbErr::Type`). Carried in events by name (`NONE` … `URGENT`): an event
/// with another name fails to deserialise ([`crate::UnknownValue`]).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    Default,
    EnumIter,
    DeriveActiveEnum,
)]
#[sea_orm(rs_type = "i16", db_type = "SmallInteger")]
#[serde(try_from = "String", into = "&'static str")]
pub enum Priority {
    #[default]
    #[sea_orm(num_value = 0)]
    None,
    #[sea_orm(num_value = 1)]
    Low,
    #[sea_orm(num_value = 2)]
    Medium,
    #[sea_orm(num_value = 3)]
    High,
    #[sea_orm(num_value = 4)]
    Urgent,
}

impl Priority {
    pub const ALL: [Priority; 5] = [
        Priority::None,
        Priority::Low,
        Priority::Medium,
        Priority::High,
        Priority::Urgent,
    ];

    /// The stored rank: 0 for `None` up to 4 for `Urgent`.
    pub fn rank(self) -> i16 {
        self as i16
    }

    /// The priority stored as `rank`; `None` for a rank outside 0..=4.
    pub fn from_rank(rank: i16) -> Option<Priority> {
        usize::try_from(rank)
            .ok()
            .and_then(|i| Self::ALL.get(i).copied())
    }

    /// The GraphQL enum name (`NONE` … `URGENT`), also used in event payloads.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::None => "NONE",
            Priority::Low => "LOW",
            Priority::Medium => "MEDIUM",
            Priority::High => "HIGH",
            Priority::Urgent => "URGENT",
        }
    }

    /// The priority named exactly `name` (`NONE` … `URGENT`), if any.
    pub fn parse(name: &str) -> Option<Priority> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

impl From<Priority> for &'static str {
    fn from(p: Priority) -> &'static str {
        p.as_str()
    }
}

impl TryFrom<String> for Priority {
    type Error = crate::UnknownValue;

    fn try_from(name: String) -> Result<Priority, crate::UnknownValue> {
        Priority::parse(&name).ok_or_else(|| {
            crate::UnknownValue::new("priority", &name, &Priority::ALL.map(Priority::as_str))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_round_trips_and_orders_urgent_highest() {
        for p in Priority::ALL {
            assert_eq!(Priority::from_rank(p.rank()), Some(p));
        }
        assert!(Priority::Urgent.rank() > Priority::High.rank());
        assert!(Priority::Low > Priority::None);
    }

    #[test]
    fn out_of_range_rank_is_rejected() {
        assert_eq!(Priority::from_rank(-1), None);
        assert_eq!(Priority::from_rank(5), None);
    }

    #[test]
    fn stored_rank_is_the_active_enum_value_and_unknown_ranks_fail() {
        use sea_orm::ActiveEnum;
        for p in Priority::ALL {
            assert_eq!(p.to_value(), p.rank());
            assert_eq!(Priority::try_from_value(&p.rank()).ok(), Some(p));
        }
        assert!(Priority::try_from_value(&5).is_err());
        assert!(Priority::try_from_value(&-1).is_err());
    }

    #[test]
    fn names_round_trip_through_serde_and_unknown_names_fail_naming_the_value() {
        for p in Priority::ALL {
            let json = serde_json::to_value(p).unwrap();
            assert_eq!(json, serde_json::json!(p.as_str()));
            assert_eq!(serde_json::from_value::<Priority>(json).unwrap(), p);
            assert_eq!(Priority::parse(p.as_str()), Some(p));
        }
        let error = serde_json::from_value::<Priority>(serde_json::json!("WHENEVER"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown priority \"WHENEVER\""), "{error}");
        assert_eq!(Priority::parse("high"), None);
    }
}
