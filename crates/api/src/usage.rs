//! Usage on the wire.

use chrono::{DateTime, NaiveDate, Utc};
pub use keyward_core::usage::DayUsage;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Usage of one key: lifetime figures (every verification that resolved to it, whatever the
/// outcome) and its days in the range, by outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct KeyUsage {
    pub key_id: String,
    pub request_count: u64,
    pub last_used_at: Option<DateTime<Utc>>,
    #[serde(default)]
    #[schemars(schema_with = "keyward_core::cidr::ip_address_or_null")]
    pub last_used_ip: Option<std::net::IpAddr>,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Days with requests, oldest first.
    pub days: Vec<DayUsage>,
}

/// Usage of the whole account: its days in the range, by outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AccountUsage {
    pub account: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Days with requests, oldest first.
    pub days: Vec<DayUsage>,
}
