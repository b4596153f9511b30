//! Rate-limit windows and leases: the arithmetic of "at most N in each UTC minute", with no I/O.
//!
//! A key's budget is per fixed UTC minute (aligned to :00). Engines do not count each request
//! in the store: they lease blocks of the minute's budget (the store grants at most what is
//! left, atomically) and spend them in memory. A lease that dies with its instance is budget
//! lost, never budget added, so the limit holds whatever the number of engines. [`next_block`]
//! sizes the next lease from how fast the last one was spent: a hot key leases large blocks
//! (few writes), a quiet one small blocks (little budget stranded in an idle instance).

use std::time::Duration;

use chrono::{DateTime, Utc};

/// A UTC minute: whole minutes since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window(pub i64);

impl Window {
    /// The minute `at` falls in.
    pub fn of(at: DateTime<Utc>) -> Self {
        Self(at.timestamp().div_euclid(60))
    }

    /// Whole seconds from `at` to the start of the next minute: 1 to 60, what `Retry-After`
    /// says to a rate-limited caller.
    pub fn retry_after_secs(at: DateTime<Utc>) -> u32 {
        // rem_euclid of 60 is 0..=59, so the answer is 1..=60 (a request at :00 waits 60 s).
        (60 - at.timestamp().rem_euclid(60)) as u32
    }
}

/// Whose budget a lease is taken from. A key has one budget per purpose, so management calls
/// made with an admin key never spend the budget of the APIs it protects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// Verifications for the APIs the key protects (authorizer, `/v1/verify`, the gateway):
    /// limited by the key's own `rate_limit_per_minute`.
    Verify,
    /// Management API calls authenticated by the key: limited by a deployment setting.
    Manage,
}

impl Purpose {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Verify => "verify",
            Self::Manage => "manage",
        }
    }
}

/// One budget: a key's verifications or its management calls.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Counter {
    pub account: String,
    pub key_id: String,
    pub purpose: Purpose,
}

impl Counter {
    /// A name unique to the budget, as stores key it (ids never hold `/`).
    pub fn name(&self) -> String {
        format!("{}/{}/{}", self.account, self.key_id, self.purpose.as_str())
    }
}

/// A lease as the store grants it: how many uses were granted (0 when the window is spent)
/// and how many of the limit were granted in the window, this lease included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub granted: u32,
    pub total: u32,
}

/// The first lease of a budget in an engine: a twentieth of the limit (at least 1), so a
/// quiet instance strands little, and a busy one reaches its block size in a few leases.
pub fn first_block(limit: u32) -> u32 {
    (limit / 20).max(1)
}

/// The largest lease: a quarter of the limit (at least 1), so a few instances hammering one key
/// still share its minute fairly instead of one taking the whole budget at once.
pub fn max_block(limit: u32) -> u32 {
    (limit / 4).max(1)
}

/// A block spent faster than this was too small: the next is twice as large.
pub const GROW_WITHIN: Duration = Duration::from_secs(2);
/// A block that lasted longer than this was too large: the next is half as large.
pub const SHRINK_AFTER: Duration = Duration::from_secs(10);

/// The size of the next lease, from the last one's size and how long it lasted.
pub fn next_block(limit: u32, last: u32, lasted: Duration) -> u32 {
    let next = if lasted < GROW_WITHIN {
        last.saturating_mul(2)
    } else if lasted > SHRINK_AFTER {
        last / 2
    } else {
        last
    };
    next.clamp(1, max_block(limit))
}

/// What the store grants for a request of `want` when `total` of `limit` are already granted
/// in the window: all of it, what is left, or nothing.
pub fn grantable(limit: u32, total: u32, want: u32) -> u32 {
    want.min(limit.saturating_sub(total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    #[test]
    fn windows_are_utc_minutes_aligned_to_zero_seconds() {
        let at = |s| Utc.timestamp_opt(s, 0).single().unwrap();
        assert_eq!(Window::of(at(0)), Window(0));
        assert_eq!(Window::of(at(59)), Window(0));
        assert_eq!(Window::of(at(60)), Window(1));
        assert_eq!(Window::of(at(-1)), Window(-1), "before the epoch too");
        assert_eq!(Window::retry_after_secs(at(60)), 60);
        assert_eq!(Window::retry_after_secs(at(119)), 1);
        assert_eq!(Window::retry_after_secs(at(90)), 30);
    }

    #[test]
    fn blocks_grow_when_spent_fast_and_shrink_when_idle() {
        assert_eq!(first_block(60), 3);
        assert_eq!(first_block(1), 1);
        assert_eq!(next_block(60, 3, Duration::from_millis(10)), 6);
        assert_eq!(next_block(60, 12, Duration::from_millis(10)), 15, "capped");
        assert_eq!(next_block(60, 6, Duration::from_secs(5)), 6);
        assert_eq!(next_block(60, 6, Duration::from_secs(30)), 3);
        assert_eq!(next_block(60, 1, Duration::from_secs(30)), 1, "never 0");
        assert_eq!(grantable(60, 58, 6), 2);
        assert_eq!(grantable(60, 60, 6), 0);
        assert_eq!(grantable(60, 70, 6), 0, "a lowered limit grants nothing");
    }

    proptest! {
        #[test]
        fn retry_after_always_reaches_the_next_window(s in -10_000_000_000i64..10_000_000_000) {
            let at = Utc.timestamp_opt(s, 0).single().unwrap();
            let wait = Window::retry_after_secs(at);
            prop_assert!((1..=60).contains(&wait));
            let then = at + chrono::Duration::seconds(i64::from(wait));
            prop_assert_eq!(Window::of(then).0, Window::of(at).0 + 1);
        }

        #[test]
        fn blocks_stay_within_bounds(limit in 1u32..=100_000, last in 0u32..=100_000, ms in 0u64..60_000) {
            let b = next_block(limit, last, Duration::from_millis(ms));
            prop_assert!(b >= 1 && b <= max_block(limit));
        }
    }
}
