//! A usage record as its item holds it (the `record` attribute): compact JSON, because the item
//! is billed per KB twice, by its put and by the roll-up that marks it applied (a transactional
//! update, 2 write units per KB of the item as it was).
//!
//! The compact form: short names (`a` account, `k` keys; per key `k` id, `v` valid,
//! `r` rate-limited, `d` denied, `t` last use, `ip` its address), counts of 0 and an unknown
//! address left out, and the last use as nanoseconds since the epoch. About 85 bytes a key
//! where the core's own JSON takes 155, so a full record of 40 keys fits 4 KB instead of 7.
//!
//! Records written before this form hold the core's own JSON, and are read as ever. The
//! aggregator must read this form before any writer writes it: the templates update the
//! aggregator before the functions that write records (docs/deploy.md, "Upgrading").

use std::net::IpAddr;

use chrono::{DateTime, NaiveDate, Utc};
use keyward_core::usage::{KeyUse, Outcomes, UsageRecord};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The record in its compact form.
pub fn encode(record: &UsageRecord) -> Result<String, serde_json::Error> {
    serde_json::to_string(&Stored {
        id: record.id.clone(),
        account: record.account.clone(),
        day: record.day,
        keys: record.keys.iter().map(StoredUse::of).collect(),
    })
}

/// A record in either form: the compact one, or the core's JSON that records had before it.
pub fn decode(json: &str) -> Result<UsageRecord, serde_json::Error> {
    match serde_json::from_str::<Stored>(json) {
        Ok(stored) => Ok(stored.into_record()),
        Err(compact) => serde_json::from_str::<UsageRecord>(json).map_err(|_| compact),
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    id: String,
    #[serde(rename = "a")]
    account: String,
    day: NaiveDate,
    #[serde(rename = "k")]
    keys: Vec<StoredUse>,
}

impl Stored {
    fn into_record(self) -> UsageRecord {
        UsageRecord {
            id: self.id,
            account: self.account,
            day: self.day,
            keys: self
                .keys
                .into_iter()
                .map(|u| KeyUse {
                    key_id: u.key_id,
                    outcomes: Outcomes {
                        valid: u.valid,
                        rate_limited: u.rate_limited,
                        denied: u.denied,
                    },
                    last_used_at: u.last_used_at,
                    last_used_ip: u.last_used_ip,
                })
                .collect(),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredUse {
    #[serde(rename = "k")]
    key_id: String,
    #[serde(rename = "v", default, skip_serializing_if = "is_zero")]
    valid: u64,
    #[serde(rename = "r", default, skip_serializing_if = "is_zero")]
    rate_limited: u64,
    #[serde(rename = "d", default, skip_serializing_if = "is_zero")]
    denied: u64,
    #[serde(rename = "t", with = "nanos")]
    last_used_at: DateTime<Utc>,
    #[serde(rename = "ip", default, skip_serializing_if = "Option::is_none")]
    last_used_ip: Option<IpAddr>,
}

impl StoredUse {
    fn of(u: &KeyUse) -> Self {
        Self {
            key_id: u.key_id.clone(),
            valid: u.outcomes.valid,
            rate_limited: u.outcomes.rate_limited,
            denied: u.outcomes.denied,
            last_used_at: u.last_used_at,
            last_used_ip: u.last_used_ip,
        }
    }
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `skip_serializing_if` passes a reference
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A time as nanoseconds since the epoch; one outside what that can hold (before 1677 or after
/// 2262) as RFC 3339 text, which reads back too.
mod nanos {
    use super::*;

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        match at.timestamp_nanos_opt() {
            Some(ns) => s.serialize_i64(ns),
            None => at.serialize(s),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum At {
            Nanos(i64),
            Text(DateTime<Utc>),
        }
        Ok(match At::deserialize(d)? {
            At::Nanos(ns) => DateTime::from_timestamp_nanos(ns),
            At::Text(at) => at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(keys: usize) -> UsageRecord {
        let at = DateTime::from_timestamp(1_795_820_307, 123_456_789).unwrap();
        UsageRecord {
            id: "usage_0123456789abcdefghij".into(),
            account: "default".into(),
            day: at.date_naive(),
            keys: (0..keys)
                .map(|i| KeyUse {
                    key_id: format!("key_{i:020}"),
                    outcomes: Outcomes {
                        valid: 25,
                        rate_limited: u64::from(i % 3 == 1) * 4,
                        denied: u64::from(i % 3 == 2) * 2,
                    },
                    last_used_at: at + chrono::Duration::nanoseconds(i as i64),
                    // Every fourth key's address is unknown; the others alternate v4 and v6.
                    last_used_ip: match i % 4 {
                        3 => None,
                        1 => "2001:db8::7".parse().ok(),
                        _ => "203.0.113.70".parse().ok(),
                    },
                })
                .collect(),
        }
    }

    #[test]
    fn a_record_reads_back_exactly_as_it_was_written() {
        let r = record(40);
        assert_eq!(decode(&encode(&r).unwrap()).unwrap(), r);
    }

    #[test]
    fn a_record_in_the_cores_json_from_before_reads_the_same() {
        let r = record(40);
        assert_eq!(decode(&serde_json::to_string(&r).unwrap()).unwrap(), r);
    }

    #[test]
    fn the_compact_form_leaves_out_zero_counts_and_unknown_addresses() {
        let json = encode(&record(4)).unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let keys = value["k"].as_array().unwrap();
        assert_eq!(keys[0].as_object().unwrap().len(), 4, "{json}"); // k, v, t, ip
        assert_eq!(keys[1]["r"], 4);
        assert!(keys[1].get("d").is_none());
        assert_eq!(keys[2]["d"], 2);
        assert!(keys[3].get("ip").is_none());
        assert_eq!(keys[0]["t"], 1_795_820_307_123_456_789_i64);
    }

    #[test]
    fn a_full_record_takes_at_most_60_percent_of_the_cores_json() {
        let r = record(40);
        let (compact, core) = (
            encode(&r).unwrap().len(),
            serde_json::to_string(&r).unwrap().len(),
        );
        assert!(compact * 100 <= core * 60, "{compact} vs {core}");
        assert!(
            compact < 4_000,
            "{compact} bytes: no longer fits 4 KB with its keys"
        );
    }

    #[test]
    fn a_time_beyond_nanoseconds_is_kept_as_text() {
        let mut r = record(1);
        r.keys[0].last_used_at = DateTime::from_timestamp(10_000_000_000, 5).unwrap();
        let json = encode(&r).unwrap();
        assert!(json.contains("\"t\":\"2286-"), "{json}");
        assert_eq!(decode(&json).unwrap(), r);
    }

    #[test]
    fn what_is_not_a_record_is_refused_in_either_form() {
        for bad in [
            "{not json",
            "{}",
            r#"{"id":"u","a":"acc","day":"2026-11-27","k":[{"k":"key","t":"yesterday"}]}"#,
            r#"{"id":"u","a":"acc","day":"2026-11-27","k":[{"k":"key","t":1,"v":-1}]}"#,
            r#"{"id":"u","a":"acc","day":"2026-11-27","k":[{"k":"key","t":1,"x":1}]}"#,
        ] {
            assert!(decode(bad).is_err(), "{bad}");
        }
    }
}
