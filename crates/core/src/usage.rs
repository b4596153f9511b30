//! Usage: what verifications are counted as, the records engines flush, what the aggregator
//! rolls them into, and what is read back.
//!
//! An engine counts every verification that resolved to a key by its [`Outcome`], in memory,
//! and flushes [`UsageRecord`]s: one per account and day, at most [`MAX_KEYS_PER_RECORD`] keys
//! each. The aggregator applies each record exactly once (the record is consumed as it is
//! applied, so a redelivered one finds nothing to do) to each key's lifetime figures, each
//! key's day and the account's day.

use std::net::IpAddr;

use chrono::{DateTime, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::decision::Code;

/// How a verification that resolved to a key is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Valid,
    RateLimited,
    /// Every other answer about a key that exists: inactive, revoked or expired, address,
    /// workspace, permission, a route outside the policy, or no lease to be had.
    Denied,
}

impl Outcome {
    pub const fn of(code: Code) -> Self {
        match code {
            Code::Valid => Self::Valid,
            Code::RateLimited => Self::RateLimited,
            _ => Self::Denied,
        }
    }
}

/// Counts by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcomes {
    #[serde(default)]
    pub valid: u64,
    #[serde(default)]
    pub rate_limited: u64,
    #[serde(default)]
    pub denied: u64,
}

impl Outcomes {
    pub fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Valid => self.valid += 1,
            Outcome::RateLimited => self.rate_limited += 1,
            Outcome::Denied => self.denied += 1,
        }
    }

    pub fn merge(&mut self, other: Self) {
        self.valid = self.valid.saturating_add(other.valid);
        self.rate_limited = self.rate_limited.saturating_add(other.rate_limited);
        self.denied = self.denied.saturating_add(other.denied);
    }

    pub fn total(&self) -> u64 {
        self.valid
            .saturating_add(self.rate_limited)
            .saturating_add(self.denied)
    }
}

/// The uses of one key on one day, since the engine's last flush.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyUse {
    pub key_id: String,
    #[serde(flatten)]
    pub outcomes: Outcomes,
    /// The latest verification among them, and its caller's address (when known).
    pub last_used_at: DateTime<Utc>,
    pub last_used_ip: Option<IpAddr>,
}

impl KeyUse {
    /// Adds `more`'s uses (of the same key) to these, keeping the later last use.
    pub fn merge(&mut self, more: &KeyUse) {
        self.outcomes.merge(more.outcomes);
        if more.last_used_at > self.last_used_at {
            self.last_used_at = more.last_used_at;
            self.last_used_ip = more.last_used_ip;
        }
    }
}

/// The most keys in one record: its roll-up is one DynamoDB transaction of two items per key,
/// the record itself and the account's day (100 items at most).
pub const MAX_KEYS_PER_RECORD: usize = 40;

/// What an engine flushes: the uses of some keys of one account on one day. Its id is unique;
/// the aggregator applies a record once whatever the number of times it is delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRecord {
    pub id: String,
    pub account: String,
    pub day: NaiveDate,
    pub keys: Vec<KeyUse>,
}

impl UsageRecord {
    /// The record with each key once (the uses of a key named twice added up), as a roll-up
    /// needs it: one write per item.
    pub fn merged(&self) -> Self {
        let mut keys: Vec<KeyUse> = Vec::with_capacity(self.keys.len());
        for k in &self.keys {
            match keys.iter_mut().find(|m| m.key_id == k.key_id) {
                Some(m) => m.merge(k),
                None => keys.push(k.clone()),
            }
        }
        Self {
            keys,
            ..self.clone()
        }
    }

    /// Every use in the record, by outcome.
    pub fn outcomes(&self) -> Outcomes {
        let mut all = Outcomes::default();
        for k in &self.keys {
            all.merge(k.outcomes);
        }
        all
    }
}

/// What applying a record did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Rolled up now.
    Now,
    /// Rolled up before (a redelivery): nothing changed.
    Before,
}

/// Verifications on one day (UTC), by outcome, as the usage endpoints answer them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DayUsage {
    pub date: NaiveDate,
    pub valid: u64,
    pub rate_limited: u64,
    pub denied: u64,
    /// The sum of the three.
    pub total: u64,
}

impl DayUsage {
    pub fn new(date: NaiveDate, o: Outcomes) -> Self {
        Self {
            date,
            valid: o.valid,
            rate_limited: o.rate_limited,
            denied: o.denied,
            total: o.total(),
        }
    }
}

/// A change to a key that verifiers must not miss: the lookup hash that was valid before it
/// (revoked, edited, regenerated away or deleted), so any cached verdict for it is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyChange {
    pub hash: crate::hash::KeyHash,
    pub at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_follow_the_code() {
        let mut o = Outcomes::default();
        for code in [
            Code::Valid,
            Code::Valid,
            Code::RateLimited,
            Code::Inactive,
            Code::PermissionDenied,
            Code::Revoked,
        ] {
            o.add(Outcome::of(code));
        }
        assert_eq!((o.valid, o.rate_limited, o.denied, o.total()), (2, 1, 3, 6));
        let day = DayUsage::new(NaiveDate::MIN, o);
        assert_eq!(day.total, 6);
    }

    #[test]
    fn records_travel_as_json_with_flat_counts() {
        let r = UsageRecord {
            id: "usage_1".into(),
            account: "acc".into(),
            day: "2026-11-27".parse().unwrap(),
            keys: vec![KeyUse {
                key_id: "key_1".into(),
                outcomes: Outcomes {
                    valid: 3,
                    rate_limited: 1,
                    denied: 0,
                },
                last_used_at: "2026-11-27T10:00:00Z".parse().unwrap(),
                last_used_ip: Some("10.0.0.1".parse().unwrap()),
            }],
        };
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["keys"][0]["valid"], 3);
        assert_eq!(serde_json::from_value::<UsageRecord>(json).unwrap(), r);
        assert_eq!(r.outcomes().total(), 4);
    }
}
