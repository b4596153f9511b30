//! Rate-limit windows and leases: the arithmetic of "at most N in each UTC minute", with no I/O.
//!
//! A key's budget is per fixed UTC minute (aligned to :00). Engines do not count each request
//! in the store: they lease blocks of the minute's budget (the store grants at most what is
//! left, atomically) and spend them in memory. A lease that dies with its instance is budget
//! lost, never budget added, so the limit holds whatever the number of engines. [`next_block`]
//! sizes the next lease to the uses the rate the engine saw expects in the rest of the minute
//! (blocks cannot outlive their minute): a key used steadily costs about one lease a minute
//! per engine, and a quiet one leases small blocks (little budget stranded in an idle instance).

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

    /// The time from `at` to the start of the next minute: at most 60 s, what a block leased
    /// at `at` can still be spent in.
    pub fn time_left(at: DateTime<Utc>) -> Duration {
        // A leap second's nanoseconds reach past the minute: nothing is left then.
        let into = Duration::new(
            at.timestamp().rem_euclid(60) as u64,
            at.timestamp_subsec_nanos(),
        );
        Duration::from_secs(60).saturating_sub(into)
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

/// The first lease of a budget in an engine, when no rate has been seen yet: a twentieth of the
/// limit (at least 1), so a key seen once strands little, and a busy one has a rate to size
/// its next lease from after a few uses.
pub fn first_block(limit: u32) -> u32 {
    (limit / 20).max(1)
}

/// The largest lease: a quarter of the limit (at least 1), so a few instances hammering one key
/// still share its minute fairly instead of one taking the whole budget at once.
pub fn max_block(limit: u32) -> u32 {
    (limit / 4).max(1)
}

/// The size of the next lease: the uses the engine's rate expects in the rest of the minute.
///
/// The rate is `uses` (the requests that asked for a use since the last lease, in whichever
/// minute: spent from it, or refused because the minute's budget was spent) over `took` (the
/// time from that lease to now); the block is that rate times `left` (the time to the end of
/// the current minute, [`Window::time_left`]), rounded up, at most twice `uses`, clamped to
/// `1..=`[`max_block`]. A block cannot outlive its minute, so a larger one would only strand
/// budget; one this size costs about one lease per key per minute per engine at a steady rate.
/// The cap of twice the uses seen keeps a quiet key's blocks small: one use soon after another
/// is not yet a rate, and a rate read from one or two gaps overshoots often enough to strand
/// budget that engines sharing a key near its limit would have used. Refusals count because a
/// key held at its limit wants that many: its next minute starts from full-size blocks.
pub fn next_block(limit: u32, uses: u32, took: Duration, left: Duration) -> u32 {
    let expected = (u128::from(uses) * left.as_nanos()).div_ceil(took.as_nanos().max(1));
    u32::try_from(expected)
        .unwrap_or(u32::MAX)
        .min(uses.saturating_mul(2))
        .clamp(1, max_block(limit))
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
        assert_eq!(Window::time_left(at(60)), Duration::from_secs(60));
        let half = Utc.timestamp_opt(89, 500_000_000).single().unwrap();
        assert_eq!(Window::time_left(half), Duration::from_millis(30_500));
        assert_eq!(Window::time_left(at(-1)), Duration::from_secs(1));
    }

    #[test]
    fn blocks_hold_what_the_seen_rate_expects_in_the_rest_of_the_minute() {
        // Limit 60: blocks of 1 to 15. Times in seconds.
        let secs = Duration::from_secs_f64;
        let block = |uses, took, left| next_block(60, uses, secs(took), secs(left));
        assert_eq!(first_block(60), 3);
        assert_eq!(first_block(1), 1);
        // A use every 4 s (API Gateway's cache with a 4 s TTL): the rest of the minute's uses,
        // rounded up, once twice the uses seen allows it.
        assert_eq!(block(6, 24.0, 40.0), 10);
        assert_eq!(block(5, 20.0, 30.0), 8);
        assert_eq!(block(3, 12.0, 40.0), 6, "at most twice the uses seen");
        // The minute turned before the block ran out: its uses spent, over the time they took.
        assert_eq!(block(2, 50.0, 59.0), 3);
        // A key held at its limit: the 5 uses of a last, partial lease and 200 refusals.
        assert_eq!(block(205, 55.0, 59.0), 15, "at most a quarter of the limit");
        assert_eq!(block(12, 0.0, 50.0), 15, "no time: the most");
        // A quiet key: one at a time, and never more than two after a single quick use.
        assert_eq!(block(1, 60.0, 30.0), 1);
        assert_eq!(block(1, 1.0, 59.0), 2);
        assert_eq!(block(5, 5.0, 0.0), 1, "never 0");
        assert_eq!(block(0, 5.0, 30.0), 1, "never 0");
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
        fn time_left_ends_at_the_next_window(s in -10_000_000_000i64..10_000_000_000, ns in 0u32..1_000_000_000) {
            let at = Utc.timestamp_opt(s, ns).single().unwrap();
            let left = Window::time_left(at);
            prop_assert!(left > Duration::ZERO && left <= Duration::from_secs(60));
            let end = at + chrono::Duration::from_std(left).unwrap();
            prop_assert_eq!(Window::of(end).0, Window::of(at).0 + 1);
            prop_assert_eq!(end.timestamp_subsec_nanos(), 0);
        }

        #[test]
        fn blocks_stay_within_bounds_and_the_expected_uses(
            limit in 1u32..=100_000,
            uses in 0u32..=100_000,
            took_ms in 0u64..3_600_000,
            left_ms in 0u64..=60_000,
        ) {
            let (took, left) = (Duration::from_millis(took_ms), Duration::from_millis(left_ms));
            let b = next_block(limit, uses, took, left);
            prop_assert!(b >= 1 && b <= max_block(limit));
            prop_assert!(b == 1 || b <= 2 * uses, "at most twice the uses seen");
            // Never more than the rate expects in what is left of the minute, rounded up...
            let expected = u64::from(uses) * left_ms;
            prop_assert!(b == 1 || u64::from(b - 1) * took_ms < expected);
            // ...and all of it unless capped: a steady rate leases once in the rest of the minute.
            let cap = max_block(limit).min(2 * uses);
            prop_assert!(b >= cap || u64::from(b) * took_ms >= expected);
        }
    }
}
