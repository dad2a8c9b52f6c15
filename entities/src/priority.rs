//! Task priority, stored as its rank so that ordering by priority is an integer sort.

use serde::{Deserialize, Serialize};

/// How important a task is. Ordered: `Urgent` is highest.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Priority {
    #[default]
    None,
    Low,
    Medium,
    High,
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
}
