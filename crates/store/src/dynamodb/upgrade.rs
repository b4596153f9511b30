//! Bringing a table written by an older keyward up to date, run by `keyward store init`.
//!
//! Names used to be claimed by their raw spelling (`NAME#CI`); they are now claimed by their
//! folded form (`NAME#ci`, [`keyward_core::name::name_key`]) and the record notes it in
//! `name_key`. A record without `name_key` keeps working as it is: reads never look at claims,
//! and renames and deletes release the claim the record actually holds
//! ([`KeyItem::claim_sk`]). Until it is upgraded, though, a new name that only folds to its
//! name is not caught, unless the old name was already in folded form (lowercase ASCII names,
//! the common case, claim the same item either way).
//!
//! [`DynamoStore::upgrade_names`] closes that gap: it scans for key and group records without
//! `name_key` and moves each claim to the folded name, in one transaction per record (put the
//! folded claim if free, delete the raw one, note `name_key` if the record is unchanged). Where
//! another record already holds the folded name (look-alikes such as `CI` and `ci` written
//! before), the record keeps its raw claim and is counted as kept: both keep working, and the
//! first rename of either claims a folded name. It is idempotent, and safe beside live writers.
//!
//! Revoked keys used to keep their claims too; a revoke now releases it, so the name is free
//! for a new key. The same scan finds key records that are revoked and releases the claim each
//! still holds (read first, then deleted on condition that it still names the key, so a claim a
//! new key has taken since is never touched). Such a record is never folded: a revoked key
//! claims nothing. A delete of such a key before the upgrade releases its claim itself.

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use keyward_core::key::KeyStatus;
use keyward_core::name::{MAX_NAME_KEY_BYTES, name_key};

use super::items::*;
use super::{DynamoStore, build_error, bump, request_error, s};
use crate::error::StoreResult;

/// What [`DynamoStore::upgrade_names`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NameUpgrade {
    /// Key and group records now claimed under their folded names.
    pub folded: usize,
    /// Records left on their raw claim: another record holds their folded name.
    pub kept: usize,
    /// Claims released because the key that held them is revoked.
    pub released: usize,
}

/// What became of one record.
enum Folded {
    Yes,
    Kept,
    /// The record changed meanwhile (a rename notes `name_key` itself), or a revoked record
    /// holds no claim any more; nothing to do.
    Moved,
    /// A revoked key's claim, released.
    Released,
}

impl DynamoStore {
    /// Moves every name claim written before names were folded to the folded name, and
    /// releases every claim a revoked key still holds (see the module documentation). A scan
    /// of the table, once per `keyward store init`.
    pub async fn upgrade_names(&self) -> StoreResult<NameUpgrade> {
        let mut outcome = NameUpgrade::default();
        let mut start = None;
        loop {
            bump(&self.calls.scan);
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression(
                    "(begins_with(#sk, :key) AND (attribute_not_exists(#nk) OR #st = :revoked))
                     OR (begins_with(#sk, :group) AND attribute_not_exists(#nk))",
                )
                .expression_attribute_names("#sk", SK)
                .expression_attribute_names("#nk", "name_key")
                .expression_attribute_names("#st", "status")
                .expression_attribute_values(":key", s("KEY#"))
                .expression_attribute_values(":group", s(GROUP_PREFIX))
                .expression_attribute_values(":revoked", s(KeyStatus::Revoked.as_str()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| request_error("scanning for names to fold", e))?;
            for item in out.items.unwrap_or_default() {
                let is_key =
                    matches!(item.get(SK), Some(AttributeValue::S(sk)) if sk.starts_with("KEY#"));
                let result = if is_key {
                    let record: KeyItem = from_item(item)?;
                    if record.live_claim_sk().is_none() {
                        self.release_revoked_claim(&record).await?
                    } else {
                        self.fold_key_claim(record).await?
                    }
                } else {
                    self.fold_group_claim(from_item(item)?).await?
                };
                match result {
                    Folded::Yes => outcome.folded += 1,
                    Folded::Kept => outcome.kept += 1,
                    Folded::Released => outcome.released += 1,
                    Folded::Moved => {}
                }
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(outcome)
    }

    /// Releases the claim a revoked record still holds, if it still names this key.
    async fn release_revoked_claim(&self, record: &KeyItem) -> StoreResult<Folded> {
        let Some(sk) = self.claim_still_held(record).await? else {
            return Ok(Folded::Moved);
        };
        let release = self.release_claim(&record.key.account, sk, &record.key.id)?;
        match self.transact(vec![release]).await? {
            None => Ok(Folded::Released),
            // Another key took the name meanwhile: the claim was not this key's to release.
            Some(_) => Ok(Folded::Moved),
        }
    }

    async fn fold_key_claim(&self, record: KeyItem) -> StoreResult<Folded> {
        let folded = name_key(&record.key.name);
        let claim = NameItem::new(&record.key);
        let note = self.note_name_key(&record.pk, &record.sk, &folded, Some(record.key.version))?;
        self.fold_claim(
            &record.pk,
            record.claim_sk(),
            &folded,
            to_item(&claim)?,
            note,
        )
        .await
    }

    async fn fold_group_claim(&self, record: GroupItem) -> StoreResult<Folded> {
        let folded = name_key(&record.group.name);
        let claim = GroupNameItem::new(&record.group);
        let note = self.note_name_key(&record.pk, &record.sk, &folded, None)?;
        self.fold_claim(
            &record.pk,
            record.claim_sk(),
            &folded,
            to_item(&claim)?,
            note,
        )
        .await
    }

    /// Puts `claim` (the folded claim) and deletes `held` (the raw one) unless they are one
    /// item, with `note`, in one transaction.
    async fn fold_claim(
        &self,
        pk: &str,
        held: String,
        folded: &str,
        claim: Item,
        note: TransactWriteItem,
    ) -> StoreResult<Folded> {
        if folded.len() > MAX_NAME_KEY_BYTES {
            // An old name too long to claim once folded (today's rule refuses it): it keeps
            // its raw claim.
            return Ok(Folded::Kept);
        }
        let moves = claim.get(SK) != Some(&s(held.clone()));
        let mut items = Vec::new();
        if moves {
            items.push(self.put(claim, Some("attribute_not_exists(pk)"))?);
            items.push(self.delete(key_of(pk.to_owned(), held), None)?);
        }
        items.push(note);
        match self.transact(items).await? {
            None => Ok(Folded::Yes),
            Some(0) if moves => Ok(Folded::Kept),
            Some(_) => Ok(Folded::Moved),
        }
    }

    /// Sets `name_key` on the record at `pk`/`sk` if it has none yet and (for a key) is still
    /// at `version`. The version does not move: nothing a reader sees has changed.
    fn note_name_key(
        &self,
        pk: &str,
        sk: &str,
        folded: &str,
        version: Option<u64>,
    ) -> StoreResult<TransactWriteItem> {
        let mut b = Update::builder()
            .table_name(&self.table)
            .key(PK, s(pk))
            .key(SK, s(sk))
            .update_expression("SET #nk = :nk")
            .expression_attribute_names("#nk", "name_key")
            .expression_attribute_values(":nk", s(folded));
        b = match version {
            Some(v) => b
                .condition_expression("#v = :v AND attribute_not_exists(#nk)")
                .expression_attribute_names("#v", VERSION)
                .expression_attribute_values(":v", AttributeValue::N(v.to_string())),
            None => b.condition_expression("attribute_exists(pk) AND attribute_not_exists(#nk)"),
        };
        let update = b
            .build()
            .map_err(|e| build_error("building an update", e))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

/// Writing records exactly as keyward did before names were folded, for the conformance check
/// that such a table keeps working.
#[cfg(feature = "conformance")]
mod legacy {
    use async_trait::async_trait;
    use keyward_core::audit::AuditEntry;
    use keyward_core::group::Group;
    use keyward_core::hash::KeyHash;
    use keyward_core::key::ApiKey;

    use super::*;
    use crate::conformance::LegacyNames;
    use crate::error::StoreError;

    #[async_trait]
    impl LegacyNames for DynamoStore {
        async fn insert_legacy_key(
            &self,
            key: &ApiKey,
            hash: &KeyHash,
            audit: &AuditEntry,
        ) -> StoreResult<()> {
            const NOT_EXISTS: Option<&str> = Some("attribute_not_exists(pk)");
            let mut record = KeyItem::new(key, hash);
            record.name_key = None;
            let claim = NameItem {
                pk: account_pk(&key.account),
                sk: name_sk(&key.name),
                key_id: key.id.clone(),
            };
            let mut items = vec![
                self.put(to_item(&record)?, NOT_EXISTS)?,
                self.put(to_item(&HashItem::new(key, hash))?, NOT_EXISTS)?,
                self.put(to_item(&claim)?, NOT_EXISTS)?,
            ];
            for ws in &key.workspaces {
                items.push(self.put(to_item(&MemberItem::new(key, ws))?, None)?);
            }
            items.push(self.put(to_item(&AuditItem::new(audit))?, None)?);
            match self.transact(items).await? {
                None => Ok(()),
                Some(2) => Err(StoreError::NameTaken(key.name.clone())),
                Some(_) => Err(StoreError::AlreadyExists),
            }
        }

        async fn insert_legacy_group(&self, group: &Group, audit: &AuditEntry) -> StoreResult<()> {
            const NOT_EXISTS: Option<&str> = Some("attribute_not_exists(pk)");
            let mut record = GroupItem::new(group);
            record.name_key = None;
            let claim = GroupNameItem {
                pk: account_pk(&group.account),
                sk: group_name_sk(&group.name),
                group_id: group.id.clone(),
            };
            let items = vec![
                self.put(to_item(&record)?, NOT_EXISTS)?,
                self.put(to_item(&claim)?, NOT_EXISTS)?,
                self.put(to_item(&AuditItem::new(audit))?, None)?,
            ];
            match self.transact(items).await? {
                None => Ok(()),
                Some(1) => Err(StoreError::NameTaken(group.name.clone())),
                Some(_) => Err(StoreError::AlreadyExists),
            }
        }

        async fn revoke_legacy_key(
            &self,
            revoked: &ApiKey,
            expected_version: u64,
            audit: &AuditEntry,
        ) -> StoreResult<()> {
            let current: KeyItem = match self
                .get_item(key_of(account_pk(&revoked.account), key_sk(&revoked.id)))
                .await?
            {
                Some(item) => from_item(item)?,
                None => return Err(StoreError::NotFound),
            };
            let hash = keyward_core::hash::KeyHash::from_hex(&current.hash)
                .ok_or_else(|| StoreError::Backend("corrupt hash".into()))?;
            let mut record = KeyItem::new(revoked, &hash);
            record.name_key = current.name_key;
            let items = vec![
                self.update_replacing(to_item(&record)?, &USAGE_ATTRIBUTES, &[], expected_version)?,
                self.put(to_item(&HashItem::new(revoked, &hash))?, None)?,
                self.put(to_item(&AuditItem::new(audit))?, None)?,
            ];
            match self.transact(items).await? {
                None => Ok(()),
                Some(_) => Err(StoreError::VersionConflict),
            }
        }

        async fn upgrade_legacy_names(&self) -> StoreResult<()> {
            self.upgrade_names().await.map(|_| ())
        }
    }
}
