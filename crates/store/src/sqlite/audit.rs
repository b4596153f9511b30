//! The audit log in the `audit` table: written in each mutation's transaction, read newest
//! first.

use async_trait::async_trait;
use keyward_core::audit::AuditEntry;
use rusqlite::{Transaction, params};

use super::{SqliteStore, all, backend, micros, page, to_json};
use crate::cursor;
use crate::error::{StoreError, StoreResult};
use crate::port::{AuditLog, Page, page_limit};

/// Writes `entry` in the caller's transaction: every mutation calls this, so no change lands
/// without its record.
pub(super) fn insert_audit(tx: &Transaction<'_>, entry: &AuditEntry) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO audit (account, at, id, record) VALUES (?1, ?2, ?3, ?4)",
        params![entry.account, micros(entry.at), entry.id, to_json(entry)?],
    )
    .map_err(backend)?;
    Ok(())
}

impl SqliteStore {
    /// Deletes the row `sql` names by account (`?1`) and id (`?2`) and writes `audit`, in one
    /// transaction; `NotFound` when there is no such row, and then nothing is written.
    pub(super) async fn delete_audited(
        &self,
        sql: &'static str,
        account: &str,
        id: &str,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let (account, id, audit) = (account.to_owned(), id.to_owned(), audit.clone());
        self.with(move |c| {
            let tx = c.transaction().map_err(backend)?;
            if tx.execute(sql, params![account, id]).map_err(backend)? == 0 {
                return Err(StoreError::NotFound);
            }
            insert_audit(&tx, &audit)?;
            tx.commit().map_err(backend)
        })
        .await
    }
}

#[async_trait]
impl AuditLog for SqliteStore {
    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        let entry = entry.clone();
        self.with(move |c| {
            let tx = c.transaction().map_err(backend)?;
            insert_audit(&tx, &entry)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn list_audit(
        &self,
        account: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<AuditEntry>> {
        let (at, id) = match cursor.map(cursor::decode_audit).transpose()? {
            Some((at, id)) => (Some(at), Some(id)),
            None => (None, None),
        };
        let account = account.to_owned();
        let limit = page_limit(limit);
        self.with(move |c| {
            let entries = all(
                c,
                "SELECT record FROM audit WHERE account = ?1
                   AND (?2 IS NULL OR at < ?2 OR (at = ?2 AND id < ?3))
                 ORDER BY at DESC, id DESC LIMIT ?4",
                params![account, at, id, (limit + 1) as i64],
            )?;
            Ok(page(entries, limit, |e: &AuditEntry| {
                cursor::encode_audit(micros(e.at), &e.id)
            }))
        })
        .await
    }
}
