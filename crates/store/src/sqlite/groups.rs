//! Sharing groups in the `groups` table; the schema keeps folded names unique per account.

use async_trait::async_trait;
use keyward_core::audit::AuditEntry;
use keyward_core::group::Group;
use keyward_core::name::name_key;
use rusqlite::{ErrorCode, params};

use super::audit::insert_audit;
use super::{SqliteStore, all, backend, one, page, to_json};
use crate::cursor;
use crate::error::{StoreError, StoreResult};
use crate::port::{GroupStore, Page, page_limit};

#[async_trait]
impl GroupStore for SqliteStore {
    async fn insert_group(&self, group: &Group, audit: &AuditEntry) -> StoreResult<()> {
        let (group, audit) = (group.clone(), audit.clone());
        self.with(move |c| {
            let tx = c.transaction().map_err(backend)?;
            tx.execute(
                "INSERT INTO groups (account, id, name, record, name_key) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    group.account,
                    group.id,
                    group.name,
                    to_json(&group)?,
                    name_key(&group.name)
                ],
            )
            .map_err(|e| match &e {
                rusqlite::Error::SqliteFailure(err, _)
                    if err.code == ErrorCode::ConstraintViolation =>
                {
                    StoreError::NameTaken(group.name.clone())
                }
                _ => backend(e),
            })?;
            insert_audit(&tx, &audit)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn get_group(&self, account: &str, id: &str) -> StoreResult<Option<Group>> {
        let (account, id) = (account.to_owned(), id.to_owned());
        self.with(move |c| {
            one(
                c,
                "SELECT record FROM groups WHERE account = ?1 AND id = ?2",
                params![account, id],
            )
        })
        .await
    }

    async fn list_groups(
        &self,
        account: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<Group>> {
        let after = cursor.map(cursor::decode_one).transpose()?;
        let account = account.to_owned();
        let limit = page_limit(limit);
        self.with(move |c| {
            let groups = all(
                c,
                "SELECT record FROM groups WHERE account = ?1 AND (?2 IS NULL OR id > ?2)
                 ORDER BY id LIMIT ?3",
                params![account, after, (limit + 1) as i64],
            )?;
            Ok(page(groups, limit, |g: &Group| cursor::encode_one(&g.id)))
        })
        .await
    }

    async fn delete_group(&self, account: &str, id: &str, audit: &AuditEntry) -> StoreResult<()> {
        self.delete_audited(
            "DELETE FROM groups WHERE account = ?1 AND id = ?2",
            account,
            id,
            audit,
        )
        .await
    }
}
