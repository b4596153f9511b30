//! Usage: counters in the key record's JSON, and per-day counts in the `usage_days` table.

use async_trait::async_trait;
use chrono::NaiveDate;
use keyward_core::usage::{DayCount, UsageDelta};
use rusqlite::params;

use super::{SqliteStore, backend, to_json};
use crate::error::{StoreError, StoreResult};
use crate::port::UsageStore;

#[async_trait]
impl UsageStore for SqliteStore {
    async fn record_usage(&self, deltas: &[UsageDelta]) -> StoreResult<()> {
        let deltas = deltas.to_vec();
        self.with(move |c| {
            let tx = c.transaction().map_err(backend)?;
            for d in &deltas {
                let count = i64::try_from(d.count).unwrap_or(i64::MAX);
                let updated = tx
                    .execute(
                        "UPDATE keys SET record = json_set(record,
                             '$.request_count', json_extract(record, '$.request_count') + ?3,
                             '$.last_used_at', ?4,
                             '$.last_used_ip', ?5)
                         WHERE account = ?1 AND id = ?2",
                        params![
                            d.account,
                            d.key_id,
                            count,
                            to_json(&d.last_used_at)?.trim_matches('"'),
                            d.last_used_ip.map(|ip| ip.to_string()),
                        ],
                    )
                    .map_err(backend)?;
                if updated == 0 {
                    continue; // the key is gone; its uses go with it
                }
                let day = d.last_used_at.date_naive().to_string();
                for key_id in [d.key_id.as_str(), ""] {
                    tx.execute(
                        "INSERT INTO usage_days (account, key_id, day, count) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (account, key_id, day) DO UPDATE SET count = count + excluded.count",
                        params![d.account, key_id, day, count],
                    )
                    .map_err(backend)?;
                }
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn usage_days(
        &self,
        account: &str,
        key_id: Option<&str>,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<DayCount>> {
        let (account, key_id) = (account.to_owned(), key_id.unwrap_or_default().to_owned());
        self.with(move |c| {
            let mut stmt = c
                .prepare(
                    "SELECT day, count FROM usage_days
                     WHERE account = ?1 AND key_id = ?2 AND day >= ?3 AND day <= ?4 ORDER BY day",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(
                    params![account, key_id, from.to_string(), to.to_string()],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
                )
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            rows.into_iter()
                .map(|(day, count)| {
                    Ok(DayCount {
                        date: day
                            .parse()
                            .map_err(|_| StoreError::Backend(format!("corrupt day '{day}'")))?,
                        count: u64::try_from(count).unwrap_or_default(),
                    })
                })
                .collect()
        })
        .await
    }
}
