//! A usage record as its item holds it (the `record` attribute): compact JSON, because the item
//! is billed per KB twice, by its put and by the roll-up that marks it applied (a transactional
//! update, 2 write units per KB of the item as it was).
//!
//! The compact form: short names (`a` account, `k` keys; per key `k` id, `v` valid,
//! `r` rate-limited, `d` denied, `t` last use, `ip` its address), counts of 0 and an unknown
//! address left out, and the last use as nanoseconds since the epoch. A key with valid uses
//! only, last used from an IPv4 address, takes about 85 bytes where the core's own JSON takes
//! 155: a full record of 40 such keys is a 3.5 KB item (4 write units) instead of 6.3 KB (7).
//! From full-length IPv6 addresses it is 4.6 KB (5), and with all three counts 5.1 KB (6).
//!
//! Records written before this form hold the core's own JSON, and are read as ever. The
//! aggregator must read this form before any writer writes it: the SAM template updates the
//! aggregator before the functions that write records (docs/deploy.md, §10).

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

/// A record in either form: the compact one, or the core's JSON that records had before it
/// (told apart by its `keys`). An error is the one of the form the text is in. A compact
/// record is read in one pass; only text the compact form refuses is looked at again.
pub fn decode(json: &str) -> Result<UsageRecord, serde_json::Error> {
    match serde_json::from_str::<Stored>(json) {
        Ok(stored) => Ok(stored.into_record()),
        Err(_) if Form::of(json).is_before => serde_json::from_str::<UsageRecord>(json),
        Err(compact) => Err(compact),
    }
}

/// Which form a record's text is in: the core's JSON names its keys `keys`, the compact `k`.
#[derive(Deserialize)]
struct Form {
    #[serde(default, rename = "keys", deserialize_with = "present")]
    is_before: bool,
}

impl Form {
    fn of(json: &str) -> Self {
        serde_json::from_str(json).unwrap_or(Self { is_before: false })
    }
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
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

/// A time as nanoseconds since the epoch. One that a count of nanoseconds cannot hold exactly
/// (before 1677 or after 2262, or within a leap second) is written as RFC 3339 text, which
/// reads back too.
mod nanos {
    use std::fmt;

    use serde::de::{self, Visitor};

    use super::*;

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        match at.timestamp_nanos_opt() {
            Some(ns) if at.timestamp_subsec_nanos() < 1_000_000_000 => s.serialize_i64(ns),
            _ => at.serialize(s),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        d.deserialize_any(At)
    }

    struct At;

    impl Visitor<'_> for At {
        type Value = DateTime<Utc>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("nanoseconds since the epoch, or an RFC 3339 time")
        }

        fn visit_i64<E: de::Error>(self, ns: i64) -> Result<Self::Value, E> {
            Ok(DateTime::from_timestamp_nanos(ns))
        }

        fn visit_u64<E: de::Error>(self, ns: u64) -> Result<Self::Value, E> {
            i64::try_from(ns)
                .map(DateTime::from_timestamp_nanos)
                .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(ns), &self))
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
            DateTime::parse_from_rfc3339(text)
                .map(|at| at.with_timezone(&Utc))
                .map_err(|_| E::invalid_value(de::Unexpected::Str(text), &self))
        }
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
                        1 => "2600:1f18:4a3c:9d00:8e1f:5b2a:c4d7:e913".parse().ok(),
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
    }

    #[test]
    fn a_time_nanoseconds_cannot_hold_is_kept_as_text() {
        let mut r = record(1);
        r.keys[0].last_used_at = DateTime::from_timestamp(10_000_000_000, 5).unwrap();
        let json = encode(&r).unwrap();
        assert!(json.contains("\"t\":\"2286-"), "{json}");
        assert_eq!(decode(&json).unwrap(), r);
        // Within a leap second (23:59:60.5), which a count of nanoseconds would fold into the
        // next second.
        r.keys[0].last_used_at = DateTime::from_timestamp(1_483_228_799, 1_500_000_000).unwrap();
        let json = encode(&r).unwrap();
        assert!(json.contains(":60.5"), "{json}");
        assert_eq!(decode(&json).unwrap(), r);
    }

    #[test]
    fn a_bad_record_is_refused_with_the_fault_of_its_own_form() {
        let before = r#"{"id":"u","account":"acc","day":"2026-11-27","keys":[{"key_id":"key"}]}"#;
        let e = decode(before).unwrap_err().to_string();
        assert!(e.contains("last_used_at"), "{e}");
        let compact = r#"{"id":"u","a":"acc","day":"2026-11-27","k":[{"k":"key","t":"soon"}]}"#;
        let e = decode(compact).unwrap_err().to_string();
        assert!(
            e.contains("nanoseconds since the epoch, or an RFC 3339 time"),
            "{e}"
        );
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
