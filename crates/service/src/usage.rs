//! Reading usage: a key's lifetime count and last use, and per-day counts by outcome for a key
//! or the whole account. Engines flush usage records in batches (see the verification engine);
//! the aggregator rolls them up (`crate::aggregation`).

use chrono::{Duration, NaiveDate};
use keyward_api::usage::{AccountUsage, KeyUsage};
use keyward_core::validation::{FieldError, ValidationErrors};
use serde::Serialize;

use crate::app::{Actor, App};
use crate::error::ServiceError;

/// Longest range one usage request may cover.
pub const MAX_USAGE_DAYS: i64 = 400;
/// The range when none is given: the last 30 days, today included.
pub const DEFAULT_USAGE_DAYS: i64 = 30;

/// A day range, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DayRange {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl DayRange {
    /// From optional `from`/`to` (YYYY-MM-DD); defaults to the last 30 days.
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        today: NaiveDate,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = Vec::new();
        let mut day = |field: &str, v: Option<&str>, default: NaiveDate| match v {
            None => default,
            Some(s) => parse_day(s).unwrap_or_else(|| {
                errors.push(FieldError::new(field, "a date as YYYY-MM-DD"));
                default
            }),
        };
        let to = day("to", to, today);
        // Saturating: a `to` in the first days chrono can represent has no 30 days before it
        // (`to - days` would panic on such a request).
        let default_from = to
            .checked_sub_signed(Duration::days(DEFAULT_USAGE_DAYS - 1))
            .unwrap_or(NaiveDate::MIN);
        let from = day("from", from, default_from);
        if errors.is_empty() && from > to {
            errors.push(FieldError::new("from", "must not be after 'to'"));
        }
        if errors.is_empty() && (to - from).num_days() >= MAX_USAGE_DAYS {
            errors.push(FieldError::new(
                "from",
                format!("a range covers at most {MAX_USAGE_DAYS} days"),
            ));
        }
        if errors.is_empty() {
            Ok(Self { from, to })
        } else {
            Err(ValidationErrors(errors))
        }
    }
}

/// A day exactly as RFC 3339 writes a `full-date` (the OpenAPI format `date`): `YYYY-MM-DD`,
/// a real calendar day. chrono alone would also take `2026-1-5`, a sign or spaces around.
fn parse_day(s: &str) -> Option<NaiveDate> {
    let shape = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    shape
        .then(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .flatten()
}

impl App {
    pub async fn key_usage(
        &self,
        actor: &Actor,
        id: &str,
        range: DayRange,
    ) -> Result<KeyUsage, ServiceError> {
        let key = self.get_key(actor, id).await?;
        let days = self
            .store
            .usage_days(&actor.account, Some(id), range.from, range.to)
            .await?;
        Ok(KeyUsage {
            key_id: key.id,
            request_count: key.request_count,
            last_used_at: key.last_used_at,
            last_used_ip: key.last_used_ip,
            from: range.from,
            to: range.to,
            days,
        })
    }

    pub async fn account_usage(
        &self,
        actor: &Actor,
        range: DayRange,
    ) -> Result<AccountUsage, ServiceError> {
        let days = self
            .store
            .usage_days(&actor.account, None, range.from, range.to)
            .await?;
        Ok(AccountUsage {
            account: actor.account.clone(),
            from: range.from,
            to: range.to,
            days,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_default_and_refuse_bad_input() {
        let today: NaiveDate = "2026-11-23".parse().unwrap();
        let r = DayRange::parse(None, None, today).unwrap();
        assert_eq!(
            (r.from.to_string(), r.to.to_string()),
            ("2026-10-25".into(), "2026-11-23".into())
        );
        assert!(DayRange::parse(Some("2026-11-24"), Some("2026-11-23"), today).is_err());
        assert!(DayRange::parse(Some("yesterday"), None, today).is_err());
        assert!(DayRange::parse(Some("2020-01-01"), None, today).is_err());
        assert!(DayRange::parse(Some("2026-11-23"), Some("2026-11-23"), today).is_ok());
        for not_a_full_date in [
            "2026-11-2",
            "+2026-11-23",
            " 2026-11-23",
            "2026-02-30",
            "2026/11/23",
        ] {
            assert!(
                DayRange::parse(None, Some(not_a_full_date), today).is_err(),
                "{not_a_full_date}"
            );
        }
        // The earliest date there is: a request with it as `to` used to panic; it is not a
        // YYYY-MM-DD date, and the earliest that is has its 30 days before it.
        let first = NaiveDate::MIN.to_string();
        assert!(DayRange::parse(None, Some(&first), today).is_err());
        let r = DayRange::parse(None, Some("0000-01-01"), today).unwrap();
        assert_eq!(r.to - r.from, Duration::days(DEFAULT_USAGE_DAYS - 1));
    }
}
