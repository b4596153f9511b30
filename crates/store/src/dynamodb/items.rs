//! The single-table layout: every item's keys, and the item shapes (via serde_dynamo).
//!
//! | item | pk | sk | GSI keys |
//! |---|---|---|---|
//! | account | `ACC#<account>` | `ACCOUNT` | |
//! | key record | `ACC#<account>` | `KEY#<id>` | gsi1: `ACC#<account>#KEYS` / `<name>` |
//! | hash lookup (a copy of the record; of a previous secret: with `grace_until`) | `HASH#<hmac hex>` | `KEY` | |
//! | name claim | `ACC#<account>` | `NAME#<folded name>` | |
//! | workspace membership | `ACC#<account>` | `WS#<ws>#<id>` | gsi2: `ACC#<account>#WS#<ws>` / `<name>` |
//! | audit entry | `ACC#<account>#AUDIT` | `<micros, 20 digits>#<id>` | |
//! | idempotency record (TTL) | `ACC#<account>` | `IDEM#<idempotency key>` | |
//! | sharing group | `ACC#<account>` | `GROUP#<id>` | |
//! | group name claim | `ACC#<account>` | `GNAME#<folded name>` | |
//! | preset | `ACC#<account>` | `PRESET#<name>` | |
//! | key change (TTL) | `CHANGES` | `<micros, 20 digits>#<random>` | |
//! | key usage figures: lifetime, and its two latest days (written with the key record, deleted with it) | `ACC#<account>#USAGE#<key id>` | `TOTAL` | |
//! | key usage per day, older days (TTL) | `ACC#<account>#USAGE#<key id>` | `DAY#<yyyy-mm-dd>` | |
//! | account usage per day, in shards (TTL) | `ACC#<account>#USAGE#` | `DAY#<yyyy-mm-dd>#<shard>` | |
//! | usage record (TTL: a week; an hour once applied) | `USAGE#RECORDS#<shard>` | `REC#<record id>` | |
//! | rate-limit lease (TTL) | `LEASE#<account>/<key id>/<purpose>` | `W#<minute>` | |
//!
//! A name is claimed by its folded form ([`keyward_core::name::name_key`]), so look-alike
//! spellings collide in the transaction that writes them; the record keeps the NFC name and, in
//! `name_key`, the folded name its claim is under. A record without `name_key` was written
//! before names were folded: its claim is under its raw name (see [`KeyItem::claim_sk`]). A
//! revoked key holds no claim (its revoke deleted it) but keeps its name in the record and in
//! gsi1, so several revoked keys, and one live key, may share a name.
//!
//! docs/dynamodb.md explains the access patterns and their costs.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use keyward_core::audit::{Account, AuditEntry};
use keyward_core::group::Group;
use keyward_core::hash::KeyHash;
use keyward_core::idempotency::IdempotencyRecord;
use keyward_core::key::{ApiKey, KeyStatus};
use keyward_core::name::name_key;
use keyward_core::preset::Preset;
use serde::{Deserialize, Serialize};

use crate::error::{StoreError, StoreResult};

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const GSI1: &str = "gsi1";
pub const GSI1_PK: &str = "gsi1pk";
pub const GSI1_SK: &str = "gsi1sk";
pub const GSI2: &str = "gsi2";
pub const GSI2_PK: &str = "gsi2pk";
pub const GSI2_SK: &str = "gsi2sk";
/// The TTL attribute (epoch seconds) of expiring helper items.
pub const TTL: &str = "ttl";
pub const VERSION: &str = "version";

pub type Item = HashMap<String, AttributeValue>;

pub fn account_pk(account: &str) -> String {
    format!("ACC#{account}")
}

pub fn account_sk() -> &'static str {
    "ACCOUNT"
}

pub fn key_sk(id: &str) -> String {
    format!("KEY#{id}")
}

pub fn keys_gsi_pk(account: &str) -> String {
    format!("ACC#{account}#KEYS")
}

pub fn hash_pk(hash: &KeyHash) -> String {
    format!("HASH#{}", hash.to_hex())
}

pub const HASH_SK: &str = "KEY";

pub fn name_sk(name: &str) -> String {
    format!("NAME#{name}")
}

pub fn member_sk(workspace: &str, id: &str) -> String {
    format!("WS#{workspace}#{id}")
}

pub fn workspace_gsi_pk(account: &str, workspace: &str) -> String {
    format!("ACC#{account}#WS#{workspace}")
}

/// The key id a membership item's sort key ends with.
pub fn member_key_id(sk: &str) -> Option<&str> {
    sk.rsplit_once('#').map(|(_, id)| id)
}

pub fn audit_pk(account: &str) -> String {
    format!("ACC#{account}#AUDIT")
}

/// Sorts by time, then id; zero-padded so string order is time order.
pub fn audit_sk(at_micros: i64, id: &str) -> String {
    format!("{at_micros:020}#{id}")
}

pub fn idempotency_sk(key: &str) -> String {
    format!("IDEM#{key}")
}

pub const GROUP_PREFIX: &str = "GROUP#";

pub fn group_sk(id: &str) -> String {
    format!("{GROUP_PREFIX}{id}")
}

pub fn group_name_sk(name: &str) -> String {
    format!("GNAME#{name}")
}

pub const PRESET_PREFIX: &str = "PRESET#";

pub fn preset_sk(name: &str) -> String {
    format!("{PRESET_PREFIX}{name}")
}

/// The per-day usage partition of a key, or of the whole account with `None`.
pub fn usage_pk(account: &str, key_id: Option<&str>) -> String {
    format!("ACC#{account}#USAGE#{}", key_id.unwrap_or_default())
}

pub fn usage_sk(date: chrono::NaiveDate) -> String {
    format!("DAY#{date}")
}

/// The sort key of a key's usage figures item, in its usage partition.
pub const USAGE_TOTAL_SK: &str = "TOTAL";

/// The primary key of `key_id`'s usage figures item.
pub fn figures_key(account: &str, key_id: &str) -> Item {
    key_of(usage_pk(account, Some(key_id)), USAGE_TOTAL_SK)
}

/// An account's day is kept in this many items, each written by the records whose id hashes
/// to it: no single item takes every roll-up, and one query still reads a range.
pub const ACCOUNT_DAY_SHARDS: u32 = 8;

/// The account's day shard a record rolls into.
pub fn account_day_sk(date: chrono::NaiveDate, record_id: &str) -> String {
    format!("DAY#{date}#{}", shard_of(record_id, ACCOUNT_DAY_SHARDS))
}

/// Usage records are spread over this many partitions (and so over the stream's shards).
pub const USAGE_RECORD_SHARDS: u32 = 16;
/// The partition key prefix of usage records: the stream's filter and the aggregator use it.
pub const USAGE_RECORD_PK_PREFIX: &str = "USAGE#RECORDS#";
/// The attribute holding a usage record, as JSON.
pub const USAGE_RECORD_ATTRIBUTE: &str = "record";
/// A record not applied within a week is dropped by TTL (the stream keeps it a day).
pub const USAGE_RECORD_RETENTION_DAYS: i64 = 7;

pub fn usage_record_pk(record_id: &str) -> String {
    format!(
        "{USAGE_RECORD_PK_PREFIX}{}",
        shard_of(record_id, USAGE_RECORD_SHARDS)
    )
}

pub const USAGE_RECORD_SK_PREFIX: &str = "REC#";

pub fn usage_record_sk(record_id: &str) -> String {
    format!("{USAGE_RECORD_SK_PREFIX}{record_id}")
}

/// A stable shard of `id` (FNV-1a), the same in every process.
fn shard_of(id: &str, shards: u32) -> u32 {
    let hash = id.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    hash % shards
}

/// The partition of a rate-limit counter, and the sort key of one of its minutes.
pub fn lease_pk(counter: &keyward_core::rate::Counter) -> String {
    format!("LEASE#{}", counter.name())
}

pub fn lease_sk(window: keyward_core::rate::Window) -> String {
    format!("W#{}", window.0)
}

/// Per-day usage is kept for about 13 months, then TTL removes it.
pub const USAGE_RETENTION_DAYS: i64 = 400;

/// The attributes of usage recording, never of edits (`last_used_ms` orders `last_used_at`,
/// which records may bring out of order). A key's figures item holds them (read as a
/// [`UsageTotalItem`]); a key record written by a keyward that rolled usage up into the record
/// itself holds them too, frozen since, and a read adds the two ([`UsageTotalItem::add_to`]).
pub const USAGE_ATTRIBUTES: [&str; 4] = [
    "request_count",
    "last_used_at",
    "last_used_ip",
    "last_used_ms",
];

/// A key's lifetime usage figures, in its figures item (which also holds its latest days'
/// counts: `super::totals`), so that a roll-up rewrites neither the key record (a kilobyte or
/// more, copied into the name index) nor anything a verifier reads.
#[derive(Debug, Serialize, Deserialize)]
pub struct UsageTotalItem {
    pub pk: String,
    pub sk: String,
    #[serde(default)]
    pub request_count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_ip: Option<std::net::IpAddr>,
}

impl UsageTotalItem {
    /// The figures of a key nobody has used yet.
    pub fn new(account: &str, key_id: &str) -> Self {
        Self {
            pk: usage_pk(account, Some(key_id)),
            sk: USAGE_TOTAL_SK.to_owned(),
            request_count: 0,
            last_used_at: None,
            last_used_ip: None,
        }
    }

    /// `key` with these figures added to the ones its record holds (none, unless an older
    /// keyward wrote them there): counts add up, the later use wins.
    pub fn add_to(self, mut key: ApiKey) -> ApiKey {
        key.request_count += self.request_count;
        if self.last_used_at > key.last_used_at {
            key.last_used_at = self.last_used_at;
            key.last_used_ip = self.last_used_ip;
        }
        key
    }
}

/// The attributes of a key record written only while set: an update that leaves them unset
/// removes them (a previous secret whose grace ended, a key opted out of rotation).
pub const OPTIONAL_KEY_ATTRIBUTES: [&str; 6] = [
    "previous_hash",
    "previous_secret",
    "expiry_warned_for",
    "secrets_manager_secret_id",
    "managed_by",
    "applied_version",
];

/// The partition of the change feed verifiers poll.
pub const CHANGES_PK: &str = "CHANGES";

/// Changes are kept a day; verifiers only ever look seconds back.
pub const CHANGE_RETENTION_HOURS: i64 = 24;

pub fn change_sk(at_micros: i64, nonce: &str) -> String {
    format!("{at_micros:020}#{nonce}")
}

/// A count an item holds in `name`: 0 when it holds none.
pub fn count_in(item: &Item, name: &str) -> StoreResult<u64> {
    match item.get(name) {
        None => Ok(0),
        Some(AttributeValue::N(v)) => v
            .parse()
            .map_err(|_| StoreError::Backend(format!("corrupt count in `{name}`"))),
        Some(_) => Err(StoreError::Backend(format!("corrupt count in `{name}`"))),
    }
}

/// The primary key of an item.
pub fn key_of(pk: String, sk: impl Into<String>) -> Item {
    HashMap::from([
        (PK.to_owned(), AttributeValue::S(pk)),
        (SK.to_owned(), AttributeValue::S(sk.into())),
    ])
}

/// The key record, where it lives under its account.
#[derive(Debug, Serialize, Deserialize)]
pub struct KeyItem {
    pub pk: String,
    pub sk: String,
    pub gsi1pk: String,
    pub gsi1sk: String,
    /// The current lookup hash, so a regeneration or delete can remove the old hash item.
    pub hash: String,
    /// The previous secret's lookup hash while its grace runs (its hash item is a copy too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_hash: Option<String>,
    /// The folded name this key's claim is under; absent on a record written before names were
    /// folded, whose claim is under its raw name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_key: Option<String>,
    #[serde(flatten)]
    pub key: ApiKey,
}

impl KeyItem {
    /// The record of a key whose claim is under its folded name.
    pub fn new(key: &ApiKey, hash: &KeyHash) -> Self {
        Self {
            pk: account_pk(&key.account),
            sk: key_sk(&key.id),
            gsi1pk: keys_gsi_pk(&key.account),
            gsi1sk: key.name.clone(),
            hash: hash.to_hex(),
            previous_hash: None,
            name_key: Some(name_key(&key.name)),
            key: key.clone(),
        }
    }

    /// The sort key of the name claim this record holds while it is not revoked: its folded
    /// name, or, for a record written before names were folded, its raw name.
    pub fn claim_sk(&self) -> String {
        name_sk(self.name_key.as_deref().unwrap_or(&self.key.name))
    }

    /// The claim this record holds: [`claim_sk`](Self::claim_sk) unless the key is revoked (a
    /// revoke releases it). A key revoked by a keyward that kept the claim may still hold it
    /// until `keyward store init` releases it ([`DynamoStore::upgrade_names`]); deletes check.
    ///
    /// [`DynamoStore::upgrade_names`]: crate::DynamoStore::upgrade_names
    pub fn live_claim_sk(&self) -> Option<String> {
        (self.key.status != KeyStatus::Revoked).then(|| self.claim_sk())
    }
}

/// The copy of the record under its hash: verification's single `GetItem`. Under a previous
/// secret's hash it also says until when that secret verifies.
#[derive(Debug, Serialize, Deserialize)]
pub struct HashItem {
    pub pk: String,
    pub sk: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_until: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(flatten)]
    pub key: ApiKey,
}

impl HashItem {
    /// The copy under the key's current hash.
    pub fn new(key: &ApiKey, hash: &KeyHash) -> Self {
        Self {
            pk: hash_pk(hash),
            sk: HASH_SK.to_owned(),
            grace_until: None,
            key: key.clone(),
        }
    }

    /// The copy under the key's previous hash, which finds it until `until`.
    pub fn previous(key: &ApiKey, hash: &KeyHash, until: chrono::DateTime<chrono::Utc>) -> Self {
        Self {
            grace_until: Some(until),
            ..Self::new(key, hash)
        }
    }
}

/// The claim on a name within an account; its existence is what makes names unique. Only keys
/// that are not revoked hold one: a revoke deletes it.
#[derive(Debug, Serialize, Deserialize)]
pub struct NameItem {
    pub pk: String,
    pub sk: String,
    pub key_id: String,
}

/// The attribute of a [`NameItem`] naming the key that holds it: conditions on it make sure a
/// release never deletes a claim another key holds.
pub const CLAIM_KEY_ID: &str = "key_id";

impl NameItem {
    /// The claim on `key`'s folded name.
    pub fn new(key: &ApiKey) -> Self {
        Self {
            pk: account_pk(&key.account),
            sk: name_sk(&name_key(&key.name)),
            key_id: key.id.clone(),
        }
    }
}

/// A key's association with one workspace, indexed by workspace and name.
#[derive(Debug, Serialize, Deserialize)]
pub struct MemberItem {
    pub pk: String,
    pub sk: String,
    pub gsi2pk: String,
    pub gsi2sk: String,
}

impl MemberItem {
    pub fn new(key: &ApiKey, workspace: &str) -> Self {
        Self {
            pk: account_pk(&key.account),
            sk: member_sk(workspace, &key.id),
            gsi2pk: workspace_gsi_pk(&key.account, workspace),
            gsi2sk: key.name.clone(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AuditItem {
    pub pk: String,
    pub sk: String,
    #[serde(flatten)]
    pub entry: AuditEntry,
}

impl AuditItem {
    pub fn new(entry: &AuditEntry) -> Self {
        Self {
            pk: audit_pk(&entry.account),
            sk: audit_sk(entry.at.timestamp_micros(), &entry.id),
            entry: entry.clone(),
        }
    }
}

/// An idempotency record; `ttl` lets DynamoDB remove it after its window.
#[derive(Debug, Serialize, Deserialize)]
pub struct IdempotencyItem {
    pub pk: String,
    pub sk: String,
    pub ttl: i64,
    #[serde(flatten)]
    pub record: IdempotencyRecord,
}

impl IdempotencyItem {
    pub fn new(record: &IdempotencyRecord) -> Self {
        Self {
            pk: account_pk(&record.account),
            sk: idempotency_sk(&record.key),
            ttl: record.expires_at.timestamp(),
            record: record.clone(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct GroupItem {
    pub pk: String,
    pub sk: String,
    /// As on [`KeyItem`]: the folded name the claim is under, absent on older records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_key: Option<String>,
    #[serde(flatten)]
    pub group: Group,
}

impl GroupItem {
    pub fn new(group: &Group) -> Self {
        Self {
            pk: account_pk(&group.account),
            sk: group_sk(&group.id),
            name_key: Some(name_key(&group.name)),
            group: group.clone(),
        }
    }

    /// The sort key of the name claim this group holds (see [`KeyItem::claim_sk`]).
    pub fn claim_sk(&self) -> String {
        group_name_sk(self.name_key.as_deref().unwrap_or(&self.group.name))
    }
}

/// The claim on a group name within an account.
#[derive(Debug, Serialize, Deserialize)]
pub struct GroupNameItem {
    pub pk: String,
    pub sk: String,
    pub group_id: String,
}

impl GroupNameItem {
    /// The claim on `group`'s folded name.
    pub fn new(group: &Group) -> Self {
        Self {
            pk: account_pk(&group.account),
            sk: group_name_sk(&name_key(&group.name)),
            group_id: group.id.clone(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PresetItem {
    pub pk: String,
    pub sk: String,
    #[serde(flatten)]
    pub preset: Preset,
}

/// A change verifiers follow: the hash valid before a key was changed or deleted.
#[derive(Debug, Serialize, Deserialize)]
pub struct ChangeItem {
    pub pk: String,
    pub sk: String,
    pub hash: String,
    pub at: chrono::DateTime<chrono::Utc>,
    pub ttl: i64,
}

impl ChangeItem {
    pub fn new(hash: &KeyHash, at: chrono::DateTime<chrono::Utc>, nonce: &str) -> Self {
        Self {
            pk: CHANGES_PK.to_owned(),
            sk: change_sk(at.timestamp_micros(), nonce),
            hash: hash.to_hex(),
            at,
            ttl: (at + chrono::Duration::hours(CHANGE_RETENTION_HOURS)).timestamp(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AccountItem {
    pub pk: String,
    pub sk: String,
    #[serde(flatten)]
    pub account: Account,
}

pub fn to_item<T: Serialize>(value: &T) -> StoreResult<Item> {
    serde_dynamo::to_item(value).map_err(|e| StoreError::Backend(format!("encoding an item: {e}")))
}

pub fn from_item<T: serde::de::DeserializeOwned>(item: Item) -> StoreResult<T> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Backend(format!("corrupt item: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::sample_key;

    #[test]
    fn a_key_item_round_trips_through_attribute_values() {
        let (key, hash) = sample_key(
            "acc_1",
            serde_json::json!({
                "name": "round trip",
                "workspaces": ["ws_1"],
                "allowed_cidrs": ["10.0.0.0/8", "::/0"],
                "metadata": {"n": 1.5, "big": 18446744073709551615u64, "neg": -3, "nested": {"a": [true, null, "s"]}},
                "expires_at": "2999-01-01T00:00:00Z",
            }),
        );
        let item = to_item(&KeyItem::new(&key, &hash)).unwrap();
        assert!(matches!(item.get(VERSION), Some(AttributeValue::N(_))));
        let back: KeyItem = from_item(item).unwrap();
        assert_eq!(back.key, key);
        assert_eq!(back.hash, hash.to_hex());
        let back: HashItem = from_item(to_item(&HashItem::new(&key, &hash)).unwrap()).unwrap();
        assert_eq!(back.key, key);
    }

    #[test]
    fn sort_keys_order_and_parse() {
        assert!(audit_sk(9, "a") < audit_sk(10, "a"));
        assert_eq!(member_key_id(&member_sk("ws_1", "key_x")), Some("key_x"));
    }
}
