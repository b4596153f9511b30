//! Sharing groups: the group item and its name claim (under the folded name), written together.

use async_trait::async_trait;
use keyward_core::audit::AuditEntry;
use keyward_core::group::Group;

use super::DynamoStore;
use super::items::*;
use crate::cursor;
use crate::error::{StoreError, StoreResult};
use crate::port::{GroupStore, Page, page_limit};

#[async_trait]
impl GroupStore for DynamoStore {
    async fn insert_group(&self, group: &Group, audit: &AuditEntry) -> StoreResult<()> {
        const NOT_EXISTS: Option<&str> = Some("attribute_not_exists(pk)");
        let items = vec![
            self.put(to_item(&GroupItem::new(group))?, NOT_EXISTS)?,
            self.put(to_item(&GroupNameItem::new(group))?, NOT_EXISTS)?,
            self.put(to_item(&AuditItem::new(audit))?, None)?,
        ];
        match self.transact(items).await? {
            None => Ok(()),
            Some(1) => Err(StoreError::NameTaken(group.name.clone())),
            Some(_) => Err(StoreError::AlreadyExists),
        }
    }

    async fn get_group(&self, account: &str, id: &str) -> StoreResult<Option<Group>> {
        let item = self
            .get_item(key_of(account_pk(account), group_sk(id)))
            .await?;
        Ok(item
            .map(from_item::<GroupItem>)
            .transpose()?
            .map(|g| g.group))
    }

    async fn list_groups(
        &self,
        account: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<Group>> {
        let after = cursor.map(cursor::decode_one).transpose()?;
        let limit = page_limit(limit);
        let (items, more) = self
            .query_prefix(
                account_pk(account),
                GROUP_PREFIX,
                after.map(|id| group_sk(&id)),
                Some(limit),
            )
            .await?;
        let groups: Vec<Group> = items
            .into_iter()
            .map(|i| from_item::<GroupItem>(i).map(|g| g.group))
            .collect::<StoreResult<_>>()?;
        let next_cursor = if more {
            groups.last().map(|g| cursor::encode_one(&g.id))
        } else {
            None
        };
        Ok(Page {
            items: groups,
            next_cursor,
        })
    }

    async fn delete_group(&self, account: &str, id: &str, audit: &AuditEntry) -> StoreResult<()> {
        let group: GroupItem = self
            .get_item(key_of(account_pk(account), group_sk(id)))
            .await?
            .map(from_item)
            .transpose()?
            .ok_or(StoreError::NotFound)?;
        let items = vec![
            self.delete_if(key_of(account_pk(account), group_sk(id)), None, true)?,
            self.delete(key_of(account_pk(account), group.claim_sk()), None)?,
            self.put(to_item(&AuditItem::new(audit))?, None)?,
        ];
        match self.transact(items).await? {
            None => Ok(()),
            Some(_) => Err(StoreError::NotFound),
        }
    }
}
