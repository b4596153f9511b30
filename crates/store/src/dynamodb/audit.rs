//! The audit log: one item per entry under the account's audit partition, sorted by time, read
//! newest first. Entries are written as part of each mutation's transaction.

use async_trait::async_trait;
use keyward_core::audit::AuditEntry;

use super::items::*;
use super::{DynamoStore, bump, request_error, s};
use crate::cursor;
use crate::error::StoreResult;
use crate::port::{AuditLog, Page, page_limit};

#[async_trait]
impl AuditLog for DynamoStore {
    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        bump(&self.calls.put_item);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&AuditItem::new(entry))?))
            .send()
            .await
            .map_err(|e| request_error("writing an audit entry", e))?;
        Ok(())
    }

    async fn list_audit(
        &self,
        account: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<AuditEntry>> {
        let before = cursor.map(cursor::decode_audit).transpose()?;
        let limit = page_limit(limit);
        let mut q = self
            .client
            .query()
            .table_name(&self.table)
            .expression_attribute_values(":pk", s(audit_pk(account)))
            .scan_index_forward(false)
            .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX));
        q = match &before {
            Some((at, id)) => q
                .key_condition_expression("pk = :pk AND sk < :before")
                .expression_attribute_values(":before", s(audit_sk(*at, id))),
            None => q.key_condition_expression("pk = :pk"),
        };
        bump(&self.calls.query);
        let out = q
            .send()
            .await
            .map_err(|e| request_error("listing audit entries", e))?;
        let mut entries: Vec<AuditEntry> = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|i| from_item::<AuditItem>(i).map(|a| a.entry))
            .collect::<StoreResult<_>>()?;
        let more = entries.len() > limit;
        entries.truncate(limit);
        let next_cursor = if more {
            entries
                .last()
                .map(|e| cursor::encode_audit(e.at.timestamp_micros(), &e.id))
        } else {
            None
        };
        Ok(Page {
            items: entries,
            next_cursor,
        })
    }
}
