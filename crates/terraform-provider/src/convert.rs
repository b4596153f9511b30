//! How the server's values read in Terraform, the same in resources and data sources: times as
//! RFC 3339 (UTC, `Z`), counters as numbers, metadata as strings (a value that is not a string
//! as its JSON text). Group ids read as names by the core's `group::names_of`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value as Json};

use crate::cty::Value;

pub fn time(at: DateTime<Utc>) -> Value {
    Value::String(at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

pub fn opt_time(at: Option<DateTime<Utc>>) -> Value {
    at.map_or(Value::Null, time)
}

pub fn number(n: u64) -> Value {
    Value::Number(i64::try_from(n).unwrap_or(i64::MAX))
}

pub fn metadata(metadata: &Map<String, Json>) -> Value {
    Value::Map(
        metadata
            .iter()
            .map(|(k, v)| {
                let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                (k.clone(), Value::String(text))
            })
            .collect(),
    )
}
