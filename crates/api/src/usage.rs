//! Usage on the wire.

use chrono::{DateTime, NaiveDate, Utc};
pub use keyward_core::usage::DayCount;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Usage of one key.
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
    pub days: Vec<DayCount>,
}

/// Usage of the whole account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AccountUsage {
    pub account: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub total: u64,
    pub days: Vec<DayCount>,
}
