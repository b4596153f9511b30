//! Usage: what the verifier counts in memory and flushes in batches, and what is read back.

use std::net::IpAddr;

use chrono::{DateTime, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Uses of one key since the last flush.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageDelta {
    pub account: String,
    pub key_id: String,
    pub count: u64,
    pub last_used_at: DateTime<Utc>,
    pub last_used_ip: Option<IpAddr>,
}

/// Requests on one day (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DayCount {
    pub date: NaiveDate,
    pub count: u64,
}

/// A change to a key that verifiers must not miss: the lookup hash that was valid before it
/// (revoked, edited, regenerated away or deleted), so any cached verdict for it is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyChange {
    pub hash: crate::hash::KeyHash,
    pub at: DateTime<Utc>,
}
