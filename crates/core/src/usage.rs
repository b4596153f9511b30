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
