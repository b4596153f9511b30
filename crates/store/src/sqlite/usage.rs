//! Usage: records in `usage_records` until applied (then an empty row for an hour, so a
//! retried write of an applied record is refused); lifetime figures in the key record's JSON;
//! per-day figures by outcome in `usage_days` (key_id '' is the account's day).

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use keyward_core::usage::{Applied, DayUsage, Outcomes, UsageRecord};
use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};

use super::{SqliteStore, backend, from_json, micros, to_json};
use crate::error::{StoreError, StoreResult};
use crate::port::{APPLIED_RECORD_RETENTION_SECS, UsageStore};

/// Version 6: `usage_days.count` (every use was valid then) becomes `valid`, beside the new
/// outcome columns.
pub(super) fn migrate_outcomes(tx: &Transaction<'_>) -> StoreResult<()> {
    let has_count: bool = tx
        .query_row(
            "SELECT count(*) > 0 FROM pragma_table_info('usage_days') WHERE name = 'count'",
            [],
            |r| r.get(0),
        )
        .map_err(backend)?;
    if !has_count {
        return Ok(()); // no usage table yet: it is created in the new shape
    }
    tx.execute_batch(
        "ALTER TABLE usage_days RENAME COLUMN count TO valid;
         ALTER TABLE usage_days ADD COLUMN rate_limited INTEGER NOT NULL DEFAULT 0;
         ALTER TABLE usage_days ADD COLUMN denied INTEGER NOT NULL DEFAULT 0;",
    )
    .map_err(backend)
}

fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn add_day(
    tx: &Transaction<'_>,
    account: &str,
    key_id: &str,
    day: &str,
    o: Outcomes,
) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO usage_days (account, key_id, day, valid, rate_limited, denied)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (account, key_id, day) DO UPDATE SET
             valid = valid + excluded.valid,
             rate_limited = rate_limited + excluded.rate_limited,
             denied = denied + excluded.denied",
        params![
            account,
            key_id,
            day,
            signed(o.valid),
            signed(o.rate_limited),
            signed(o.denied)
        ],
    )
    .map_err(backend)?;
    Ok(())
}

#[async_trait]
impl UsageStore for SqliteStore {
    async fn write_usage(&self, records: &[UsageRecord]) -> StoreResult<()> {
        let rows = records
            .iter()
            .map(|r| Ok((r.id.clone(), to_json(r)?)))
            .collect::<StoreResult<Vec<_>>>()?;
        self.with(move |c| {
            let tx = c.transaction().map_err(backend)?;
            for (id, json) in &rows {
                tx.execute(
                    "INSERT OR IGNORE INTO usage_records (id, record) VALUES (?1, ?2)",
                    params![id, json],
                )
                .map_err(backend)?;
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn pending_usage(&self, limit: usize) -> StoreResult<Vec<UsageRecord>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(move |c| {
            let mut stmt = c
                .prepare(
                    "SELECT record FROM usage_records WHERE applied_at IS NULL ORDER BY seq LIMIT ?1",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![limit], |r| r.get::<_, String>(0))
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            rows.iter().map(|json| from_json(json)).collect()
        })
        .await
    }

    async fn apply_usage(&self, record: &UsageRecord) -> StoreResult<Applied> {
        let record = record.clone();
        self.with(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            let now = Utc::now();
            tx.execute(
                "DELETE FROM usage_records WHERE applied_at < ?1",
                params![micros(
                    now - chrono::Duration::seconds(APPLIED_RECORD_RETENTION_SECS)
                )],
            )
            .map_err(backend)?;
            let consumed = tx
                .execute(
                    "UPDATE usage_records SET record = NULL, applied_at = ?2
                     WHERE id = ?1 AND applied_at IS NULL",
                    params![record.id, micros(now)],
                )
                .map_err(backend)?;
            if consumed == 0 {
                return Ok(Applied::Before);
            }
            let day = record.day.to_string();
            for k in &record.keys {
                let last: Option<Option<String>> = tx
                    .query_row(
                        "SELECT json_extract(record, '$.last_used_at') FROM keys
                         WHERE account = ?1 AND id = ?2",
                        params![record.account, k.key_id],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(backend)?;
                let Some(last) = last else {
                    continue; // the key is gone: its uses count for the account only
                };
                let last: Option<DateTime<Utc>> = last.and_then(|t| t.parse().ok());
                let newer = last.is_none_or(|last| k.last_used_at >= last);
                tx.execute(
                    "UPDATE keys SET record = json_set(record,
                         '$.request_count', json_extract(record, '$.request_count') + ?3)
                     WHERE account = ?1 AND id = ?2",
                    params![record.account, k.key_id, signed(k.outcomes.total())],
                )
                .map_err(backend)?;
                if newer {
                    tx.execute(
                        "UPDATE keys SET record = json_set(record,
                             '$.last_used_at', ?3, '$.last_used_ip', ?4)
                         WHERE account = ?1 AND id = ?2",
                        params![
                            record.account,
                            k.key_id,
                            to_json(&k.last_used_at)?.trim_matches('"'),
                            k.last_used_ip.map(|ip| ip.to_string()),
                        ],
                    )
                    .map_err(backend)?;
                }
                add_day(&tx, &record.account, &k.key_id, &day, k.outcomes)?;
            }
            add_day(&tx, &record.account, "", &day, record.outcomes())?;
            tx.commit().map_err(backend)?;
            Ok(Applied::Now)
        })
        .await
    }

    async fn usage_days(
        &self,
        account: &str,
        key_id: Option<&str>,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<DayUsage>> {
        let (account, key_id) = (account.to_owned(), key_id.unwrap_or_default().to_owned());
        self.with(move |c| {
            let mut stmt = c
                .prepare(
                    "SELECT day, valid, rate_limited, denied FROM usage_days
                     WHERE account = ?1 AND key_id = ?2 AND day >= ?3 AND day <= ?4 ORDER BY day",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(
                    params![account, key_id, from.to_string(), to.to_string()],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, i64>(3)?,
                        ))
                    },
                )
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            rows.into_iter()
                .map(|(day, valid, rate_limited, denied)| {
                    let date = day
                        .parse()
                        .map_err(|_| StoreError::Backend(format!("corrupt day '{day}'")))?;
                    let n = |v: i64| u64::try_from(v).unwrap_or_default();
                    Ok(DayUsage::new(
                        date,
                        Outcomes {
                            valid: n(valid),
                            rate_limited: n(rate_limited),
                            denied: n(denied),
                        },
                    ))
                })
                .collect()
        })
        .await
    }
}
