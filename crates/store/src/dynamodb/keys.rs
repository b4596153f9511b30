//! Key records with their hash copy, name claim and workspace memberships, written together in
//! one transaction; idempotency records; listing through the name and workspace indexes.

use std::collections::{BTreeSet, HashMap};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use chrono::Utc;
use keyward_core::audit::AuditEntry;
use keyward_core::hash::KeyHash;
use keyward_core::idempotency::IdempotencyRecord;
use keyward_core::key::{ApiKey, KeyMatch};

use super::items::*;
use super::{DynamoStore, build_error, bump, request_error, s};
use crate::cursor;
use crate::error::{StoreError, StoreResult};
use crate::port::{KeyQuery, KeyStore, Page, page_limit};

impl DynamoStore {
    /// The claim a revoked record's name was under, if that claim still names this key (a key
    /// revoked by a keyward that kept claims, not yet released by `store init`).
    pub(super) async fn claim_still_held(&self, record: &KeyItem) -> StoreResult<Option<String>> {
        let sk = record.claim_sk();
        let claim = self
            .get_item(key_of(record.pk.clone(), sk.clone()))
            .await?
            .map(from_item::<NameItem>)
            .transpose()?;
        Ok(claim.filter(|c| c.key_id == record.key.id).map(|_| sk))
    }

    /// The key record item, read consistently.
    async fn get_key_item(&self, account: &str, id: &str) -> StoreResult<Option<KeyItem>> {
        let item = self
            .get_item(key_of(account_pk(account), key_sk(id)))
            .await?;
        item.map(from_item).transpose()
    }

    /// Key records by id, in the order given, read consistently (missing ones are skipped).
    async fn batch_get_keys(&self, account: &str, ids: &[String]) -> StoreResult<Vec<ApiKey>> {
        let wanted = ids
            .iter()
            .map(|id| key_of(account_pk(account), key_sk(id)))
            .collect();
        let mut found: HashMap<String, ApiKey> = HashMap::new();
        for item in self.batch_get(wanted, "keys").await? {
            let k: KeyItem = from_item(item)?;
            found.insert(k.key.id.clone(), k.key);
        }
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }

    /// `keys` with their lifetime usage figures (one batch read of their [`UsageTotalItem`]s).
    async fn with_usage_totals(
        &self,
        account: &str,
        keys: Vec<ApiKey>,
    ) -> StoreResult<Vec<ApiKey>> {
        if keys.is_empty() {
            return Ok(keys);
        }
        let wanted = keys.iter().map(|k| figures_key(account, &k.id)).collect();
        let mut totals: HashMap<String, UsageTotalItem> = HashMap::new();
        for item in self.batch_get(wanted, "usage figures").await? {
            let t: UsageTotalItem = from_item(item)?;
            totals.insert(t.pk.clone(), t);
        }
        Ok(keys
            .into_iter()
            .map(|k| match totals.remove(&usage_pk(account, Some(&k.id))) {
                Some(t) => t.add_to(k),
                None => k,
            })
            .collect())
    }

    /// One page of candidate keys from an index, in name order after `after`.
    /// Where the listing's index holds the key `id` named `name`: an `ExclusiveStartKey`.
    fn index_position(&self, account: &str, query: &KeyQuery, name: &str, id: &str) -> Item {
        let mut position = match &query.workspace {
            Some(ws) => key_of(account_pk(account), member_sk(ws, id)),
            None => key_of(account_pk(account), key_sk(id)),
        };
        let (pk_attr, sk_attr, pk) = match &query.workspace {
            Some(ws) => (GSI2_PK, GSI2_SK, workspace_gsi_pk(account, ws)),
            None => (GSI1_PK, GSI1_SK, keys_gsi_pk(account)),
        };
        position.insert(pk_attr.to_owned(), s(pk));
        position.insert(sk_attr.to_owned(), s(name));
        position
    }

    async fn query_page(
        &self,
        account: &str,
        query: &KeyQuery,
        after: Option<&str>,
        start: Option<Item>,
        limit: i32,
    ) -> StoreResult<(Vec<ApiKey>, Option<Item>)> {
        let (index, pk_attr, sk_attr, pk) = match &query.workspace {
            Some(ws) => (GSI2, GSI2_PK, GSI2_SK, workspace_gsi_pk(account, ws)),
            None => (GSI1, GSI1_PK, GSI1_SK, keys_gsi_pk(account)),
        };
        let mut q = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .expression_attribute_names("#pk", pk_attr)
            .expression_attribute_values(":pk", s(pk))
            .set_exclusive_start_key(start)
            .limit(limit);
        q = match after {
            Some(name) => q
                .key_condition_expression("#pk = :pk AND #sk > :after")
                .expression_attribute_names("#sk", sk_attr)
                .expression_attribute_values(":after", s(name)),
            None => q.key_condition_expression("#pk = :pk"),
        };
        bump(&self.calls.query);
        let out = q
            .send()
            .await
            .map_err(|e| request_error("listing keys", e))?;
        let items = out.items.unwrap_or_default();
        let keys = if query.workspace.is_some() {
            let ids: Vec<String> = items
                .iter()
                .filter_map(|i| match i.get(SK) {
                    Some(AttributeValue::S(sk)) => member_key_id(sk).map(str::to_owned),
                    _ => None,
                })
                .collect();
            self.batch_get_keys(account, &ids).await?
        } else {
            items
                .into_iter()
                .map(|i| from_item::<KeyItem>(i).map(|k| k.key))
                .collect::<StoreResult<_>>()?
        };
        Ok((keys, out.last_evaluated_key))
    }
}

#[async_trait]
impl KeyStore for DynamoStore {
    async fn insert_key(
        &self,
        key: &ApiKey,
        hash: &KeyHash,
        audit: &AuditEntry,
        idempotency: Option<&IdempotencyRecord>,
    ) -> StoreResult<()> {
        const NOT_EXISTS: Option<&str> = Some("attribute_not_exists(pk)");
        // The idempotency record goes first, so a replay is reported before anything else.
        let mut items = Vec::new();
        if let Some(record) = idempotency {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(to_item(&IdempotencyItem::new(record))?))
                .condition_expression("attribute_not_exists(pk) OR #ttl <= :now")
                .expression_attribute_names("#ttl", TTL)
                .expression_attribute_values(
                    ":now",
                    AttributeValue::N(Utc::now().timestamp().to_string()),
                )
                .build()
                .map_err(|e| build_error("building a put", e))?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        let first = items.len();
        items.push(self.put(to_item(&KeyItem::new(key, hash))?, NOT_EXISTS)?);
        items.push(self.put(to_item(&HashItem::new(key, hash))?, NOT_EXISTS)?);
        items.push(self.put(to_item(&NameItem::new(key))?, NOT_EXISTS)?);
        for ws in &key.workspaces {
            items.push(self.put(to_item(&MemberItem::new(key, ws))?, None)?);
        }
        items.push(self.put(to_item(&UsageTotalItem::new(&key.account, &key.id))?, None)?);
        items.push(self.put(to_item(&AuditItem::new(audit))?, None)?);
        match self.transact(items).await?.map(|i| i.checked_sub(first)) {
            None => Ok(()),
            Some(None) => Err(StoreError::IdempotencyKeyUsed),
            Some(Some(0)) => Err(StoreError::AlreadyExists),
            Some(Some(2)) => Err(StoreError::NameTaken(key.name.clone())),
            Some(_) => Err(StoreError::Backend(
                "the lookup hash is already in use".into(),
            )),
        }
    }

    async fn get_idempotency(
        &self,
        account: &str,
        key: &str,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        let item = self
            .get_item(key_of(account_pk(account), idempotency_sk(key)))
            .await?;
        Ok(item
            .map(from_item::<IdempotencyItem>)
            .transpose()?
            .map(|i| i.record))
    }

    async fn get_key(&self, account: &str, id: &str) -> StoreResult<Option<ApiKey>> {
        // The record and its usage figures, in one request.
        let wanted = vec![
            key_of(account_pk(account), key_sk(id)),
            figures_key(account, id),
        ];
        let (mut record, mut totals) = (None, None);
        for item in self.batch_get(wanted, "a key").await? {
            match item.get(SK) {
                Some(AttributeValue::S(sk)) if sk == USAGE_TOTAL_SK => {
                    totals = Some(from_item::<UsageTotalItem>(item)?);
                }
                _ => record = Some(from_item::<KeyItem>(item)?),
            }
        }
        Ok(record.map(|r| match totals {
            Some(t) => t.add_to(r.key),
            None => r.key,
        }))
    }

    async fn find_key_by_hash(&self, hash: &KeyHash) -> StoreResult<Option<KeyMatch>> {
        let item = self.get_item(key_of(hash_pk(hash), HASH_SK)).await?;
        Ok(item
            .map(from_item::<HashItem>)
            .transpose()?
            .map(|i| KeyMatch {
                key: i.key,
                grace_until: i.grace_until,
            }))
    }

    async fn update_key(
        &self,
        key: &ApiKey,
        expected_version: u64,
        new_hash: Option<&KeyHash>,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let current = self
            .get_key_item(&key.account, &key.id)
            .await?
            .ok_or(StoreError::NotFound)?;
        if current.key.version != expected_version {
            return Err(StoreError::VersionConflict);
        }
        let old_hash = KeyHash::from_hex(&current.hash)
            .ok_or_else(|| StoreError::Backend("corrupt hash on a key item".into()))?;
        let hash = new_hash.copied().unwrap_or(old_hash);
        let renamed = current.key.name != key.name;
        // A rename moves the claim to the folded new name (when that differs from the claim
        // held); otherwise the record keeps the claim it has, even one under a raw name. A
        // revoke releases the claim (a revoked key holds none), so the name is free at once.
        let held = current.live_claim_sk();
        let stored_previous = current
            .previous_hash
            .as_deref()
            .map(|h| {
                KeyHash::from_hex(h).ok_or_else(|| {
                    StoreError::Backend("corrupt previous hash on a key item".into())
                })
            })
            .transpose()?;
        // The previous secret after this change: the hash the key had, on a regeneration with
        // a grace; the one it has, while its grace goes on; none otherwise.
        let previous = match (&key.previous_secret, new_hash) {
            (None, _) => None,
            (Some(p), Some(_)) => Some((old_hash, p.expires_at)),
            (Some(p), None) => stored_previous.map(|h| (h, p.expires_at)),
        };
        let mut record = KeyItem::new(key, &hash);
        record.previous_hash = previous.map(|(h, _)| h.to_hex());
        if !renamed {
            record.name_key.clone_from(&current.name_key);
        }
        let wanted = record.live_claim_sk();
        // Whether to release `held`: yes, unless the release found another key holding it
        // (only a table damaged by hand; the change must still land, a revoke above all).
        let mut release = true;
        loop {
            let mut items = vec![self.update_replacing(
                to_item(&record)?,
                &USAGE_ATTRIBUTES,
                &OPTIONAL_KEY_ATTRIBUTES,
                expected_version,
            )?];
            let (mut released_at, mut new_name_at) = (None, None);
            if new_hash.is_some() {
                if previous.is_none_or(|(h, _)| h != old_hash) {
                    items.push(self.delete(key_of(hash_pk(&old_hash), HASH_SK), None)?);
                }
                items.push(self.put(
                    to_item(&HashItem::new(key, &hash))?,
                    Some("attribute_not_exists(pk)"),
                )?);
            } else {
                items.push(self.put(to_item(&HashItem::new(key, &hash))?, None)?);
            }
            // The previous secret's copy follows the record; one that ended goes.
            if let Some(stored) = stored_previous.filter(|s| previous.is_none_or(|(h, _)| h != *s))
            {
                items.push(self.delete(key_of(hash_pk(&stored), HASH_SK), None)?);
                items.push(self.change(&stored)?);
            }
            if let Some((h, until)) = previous {
                items.push(self.put(to_item(&HashItem::previous(key, &h, until))?, None)?);
                if stored_previous == Some(h) {
                    items.push(self.change(&h)?);
                }
            }
            if wanted != held {
                if let Some(held) = held.clone().filter(|_| release) {
                    released_at = Some(items.len());
                    items.push(self.release_claim(&key.account, held, &key.id)?);
                }
                if let Some(wanted) = wanted.clone() {
                    let claim = NameItem {
                        pk: account_pk(&key.account),
                        sk: wanted,
                        key_id: key.id.clone(),
                    };
                    new_name_at = Some(items.len());
                    items.push(self.put(to_item(&claim)?, Some("attribute_not_exists(pk)"))?);
                }
            }
            let before: BTreeSet<&String> = current.key.workspaces.iter().collect();
            let after: BTreeSet<&String> = key.workspaces.iter().collect();
            for ws in before.difference(&after) {
                items.push(self.delete(
                    key_of(account_pk(&key.account), member_sk(ws, &key.id)),
                    None,
                )?);
            }
            for ws in &after {
                if renamed || !before.contains(ws) {
                    items.push(self.put(to_item(&MemberItem::new(key, ws))?, None)?);
                }
            }
            items.push(self.change(&old_hash)?);
            if new_hash.is_some() {
                // Verifiers may hold the new secret as unknown (a Secrets Manager rotation's
                // pending secret is known before it is installed).
                items.push(self.change(&hash)?);
            }
            items.push(self.put(to_item(&AuditItem::new(audit))?, None)?);
            return match self.transact(items).await? {
                None => Ok(()),
                Some(0) => Err(StoreError::VersionConflict),
                Some(i) if Some(i) == released_at => {
                    release = false;
                    continue;
                }
                Some(i) if Some(i) == new_name_at => Err(StoreError::NameTaken(key.name.clone())),
                Some(_) => Err(StoreError::Backend(
                    "the new lookup hash is already in use".into(),
                )),
            };
        }
    }

    async fn delete_key(
        &self,
        account: &str,
        id: &str,
        expected_version: Option<u64>,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let current = self
            .get_key_item(account, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        if expected_version.is_some_and(|v| v != current.key.version) {
            return Err(StoreError::VersionConflict);
        }
        let hash = KeyHash::from_hex(&current.hash)
            .ok_or_else(|| StoreError::Backend("corrupt hash on a key item".into()))?;
        let previous = current.previous_hash.as_deref().and_then(KeyHash::from_hex);
        // A live key's claim goes with it. A revoked key's claim went with its revoke, and its
        // name may now be another key's; only a key revoked by an older keyward (before `store
        // init` released it) still holds it, which one read of the claim tells.
        let mut claim = match current.live_claim_sk() {
            Some(sk) => Some(sk),
            None => self.claim_still_held(&current).await?,
        };
        loop {
            let mut items = vec![
                self.delete(
                    key_of(account_pk(account), key_sk(id)),
                    Some(current.key.version),
                )?,
                self.delete(key_of(hash_pk(&hash), HASH_SK), None)?,
            ];
            if let Some(previous) = previous.as_ref() {
                items.push(self.delete(key_of(hash_pk(previous), HASH_SK), None)?);
                items.push(self.change(previous)?);
            }
            let released_at = claim.as_ref().map(|_| items.len());
            if let Some(sk) = claim.clone() {
                items.push(self.release_claim(account, sk, id)?);
            }
            for ws in &current.key.workspaces {
                items.push(self.delete(key_of(account_pk(account), member_sk(ws, id)), None)?);
            }
            items.push(self.delete(figures_key(account, id), None)?);
            items.push(self.change(&hash)?);
            items.push(self.put(to_item(&AuditItem::new(audit))?, None)?);
            return match self.transact(items).await? {
                None => Ok(()),
                // The claim is another key's by now: delete the rest, leave it.
                Some(i) if Some(i) == released_at => {
                    claim = None;
                    continue;
                }
                Some(_) => Err(StoreError::VersionConflict),
            };
        }
    }

    async fn list_keys(&self, account: &str, query: &KeyQuery) -> StoreResult<Page<ApiKey>> {
        // A cursor names the last key returned: the query resumes right after that key's index
        // item (names repeat among revoked keys; the index orders equal names by the item's
        // own key). A cursor written before ids were in it resumes after the name.
        let (after, mut start) = match &query.cursor {
            Some(c) => match cursor::decode_key(c)? {
                (name, Some(id)) => (None, Some(self.index_position(account, query, &name, &id))),
                (name, None) => (Some(name), None),
            },
            None => (None, None),
        };
        let limit = page_limit(query.limit);
        // Read in name order until one more admitted key than the page holds is seen (so the
        // cursor is only given when there is more) or the index is exhausted.
        let mut admitted: Vec<ApiKey> = Vec::with_capacity(limit + 1);
        loop {
            let want = i32::try_from(limit + 1 - admitted.len())
                .unwrap_or(i32::MAX)
                .max(1);
            let (keys, next) = self
                .query_page(account, query, after.as_deref(), start, want)
                .await?;
            admitted.extend(
                keys.into_iter()
                    .map(|k| k.as_of(query.now))
                    .filter(|k| query.admits(k)),
            );
            if admitted.len() > limit || next.is_none() {
                break;
            }
            start = next;
        }
        let more = admitted.len() > limit;
        admitted.truncate(limit);
        let next_cursor = if more {
            admitted.last().map(|k| cursor::encode_key(&k.name, &k.id))
        } else {
            None
        };
        Ok(Page {
            items: self.with_usage_totals(account, admitted).await?,
            next_cursor,
        })
    }
}
