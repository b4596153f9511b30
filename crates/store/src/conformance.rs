//! Behaviours every Store adapter must have, written once against the port.
//!
//! Each check works in an account of its own, so checks can share one store (and one
//! DynamoDB table). An adapter runs them all with [`conformance_tests!`](crate::conformance_tests):
//!
//! ```ignore
//! keyward_store::conformance_tests!(async { SqliteStore::in_memory().unwrap() });
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed check panics

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{Duration, Utc};
use keyward_core::audit::{Account, AuditEntry};
use keyward_core::group::{CreateGroupRequest, Group};
use keyward_core::hash::{KeyHash, Pepper};
use keyward_core::id::new_id;
use keyward_core::idempotency::IdempotencyRecord;
use keyward_core::key::{ApiKey, CreateKeyRequest, KeyDraft, KeyRules, KeyStatus};
use keyward_core::preset::{Preset, Presets};
use keyward_core::rate::{Counter, Purpose, Window};
use keyward_core::token::{Prefix, Token};
use keyward_core::usage::{Applied, DayUsage, KeyUse, Outcomes, UsageRecord};
use serde_json::json;

use crate::{DynamoLocation, DynamoStore, KeyQuery, Store, StoreError};

/// The DynamoDB Local endpoint the test command started (`KEYWARD_TEST_DYNAMODB_ENDPOINT`).
pub fn dynamodb_local_endpoint() -> String {
    std::env::var("KEYWARD_TEST_DYNAMODB_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "KEYWARD_TEST_DYNAMODB_ENDPOINT is not set: run ./scripts/test, which starts DynamoDB Local"
        )
    })
}

/// A store on a fresh table of DynamoDB Local, named `<prefix>-<random>` and initialised.
pub async fn dynamodb_local(prefix: &str) -> DynamoStore {
    let table = format!("{prefix}-{}", new_id("t").unwrap());
    let endpoint = dynamodb_local_endpoint();
    let location =
        DynamoLocation::parse(&format!("dynamodb://{table}?endpoint={endpoint}")).unwrap();
    let store = local_store(&location);
    assert_eq!(
        store.init().await.unwrap(),
        crate::dynamodb::InitOutcome::Created
    );
    store
}

/// A store at a local endpoint (`?endpoint=` is required), with throwaway credentials: how tests
/// reach DynamoDB Local. Processes load the real AWS configuration in their `main` instead
/// (`keyward_aws::sdk`).
pub fn local_store(location: &DynamoLocation) -> DynamoStore {
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    let endpoint = location
        .endpoint
        .as_deref()
        .expect("a local store names its endpoint");
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "local",
            "local",
            None,
            None,
            "keyward-test",
        ))
        .http_client(http)
        .build();
    DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(config), &location.table)
}

/// What the check of stores written by an older keyward needs beyond the port: writing records
/// exactly the way keyward wrote them before names were folded (claimed by their raw spelling),
/// revoking them as it did before a revoke freed the name, and the upgrade each adapter gives
/// such a store (SQLite: the schema migrations of `open`; DynamoDB: `upgrade_names`, run by
/// `keyward store init`).
#[async_trait::async_trait]
pub trait LegacyNames: Store {
    async fn insert_legacy_key(
        &self,
        key: &ApiKey,
        hash: &KeyHash,
        audit: &AuditEntry,
    ) -> crate::StoreResult<()>;
    async fn insert_legacy_group(
        &self,
        group: &Group,
        audit: &AuditEntry,
    ) -> crate::StoreResult<()>;
    /// Revokes `key` (the revoked record, at `expected_version + 1`) the way keyward did
    /// before a revoke freed the name: the record changes, its name claim stays.
    async fn revoke_legacy_key(
        &self,
        revoked: &ApiKey,
        expected_version: u64,
        audit: &AuditEntry,
    ) -> crate::StoreResult<()>;
    async fn upgrade_legacy_names(&self) -> crate::StoreResult<()>;
}

/// Generates one `#[tokio::test]` per conformance check for the store `$make` builds.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@each $make;
            accounts_are_created_once,
            a_key_is_found_by_id_and_by_hash,
            names_are_unique_per_account,
            concurrent_creates_with_one_name_admit_exactly_one,
            updates_are_conditional_on_the_version,
            concurrent_edits_lose_no_update,
            a_rename_cannot_take_a_used_name,
            regeneration_moves_the_lookup_hash,
            a_previous_secret_finds_the_key_during_its_grace_only,
            delete_removes_the_key_its_hash_and_its_name,
            listing_filters_by_status_workspace_and_name,
            listing_pages_through_everything_once,
            pages_split_keys_that_share_a_name,
            a_bad_cursor_is_refused,
            every_mutation_writes_its_audit_entry,
            an_idempotency_key_admits_one_create,
            groups_are_named_uniquely_listed_and_deleted,
            listing_filters_by_group,
            presets_are_put_listed_replaced_and_deleted,
            usage_rolls_up_per_key_and_per_day_by_outcome,
            a_usage_record_is_applied_once_however_often_it_arrives,
            the_latest_use_wins_whatever_order_records_arrive_in,
            days_read_back_whatever_order_their_records_arrive_in,
            an_edit_never_loses_usage_recorded_meanwhile,
            leases_never_grant_more_than_the_limit,
            concurrent_leases_share_the_limit_exactly,
            changes_name_the_hashes_that_stopped_meaning_what_they_meant,
            look_alike_names_collide,
            concurrent_look_alike_creates_admit_exactly_one,
            renames_claim_and_release_folded_names,
            look_alike_group_names_collide,
            names_in_any_single_script_are_kept_as_written,
            names_written_before_folding_keep_working,
            revoking_a_key_frees_its_name,
            a_revoked_key_never_takes_a_name_back,
            keys_revoked_before_the_upgrade_free_their_names
        );
    };
    (@each $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let store = $make.await;
                $crate::conformance::$name(&store).await;
            }
        )*
    };
}

/// The key `hash` is the current secret of (a previous secret's match is a failure here).
async fn by_hash(store: &dyn Store, hash: &KeyHash) -> Option<ApiKey> {
    let found = store.find_key_by_hash(hash).await.unwrap()?;
    assert_eq!(
        found.grace_until, None,
        "the current secret, not a previous one"
    );
    Some(found.key)
}

/// A fresh account id, so checks never see each other's data.
fn account() -> String {
    new_id("acc").unwrap()
}

/// A key record for `account` built through the real validation rules, with its hash.
pub fn sample_key(account: &str, spec: serde_json::Value) -> (ApiKey, KeyHash) {
    let mut spec = spec;
    if spec.get("scopes").is_none() {
        spec["scopes"] = json!(["read"]);
    }
    let req: CreateKeyRequest = serde_json::from_value(spec).unwrap();
    let (draft, _) =
        KeyDraft::from_request(req, &KeyRules::default(), &Presets::builtin(), Utc::now()).unwrap();
    let token = Token::generate(&Prefix::test()).unwrap();
    let pepper = Pepper::from_bytes(vec![42; 32]).unwrap();
    let key = ApiKey::new(draft, account, &token, "conformance", Utc::now()).unwrap();
    (key, pepper.hash(&token))
}

/// The audit entry of `action` on `key`, as a service would write it.
pub fn audit(key: &ApiKey, action: &str) -> AuditEntry {
    AuditEntry::new(
        &key.account,
        "conformance",
        action,
        Some(&key.id),
        None,
        json!({"name": key.name}),
        Utc::now(),
    )
    .unwrap()
}

/// A [`sample_key`] of `account`, inserted with its audit entry.
pub async fn insert(
    store: &dyn Store,
    account: &str,
    spec: serde_json::Value,
) -> (ApiKey, KeyHash) {
    let (key, hash) = sample_key(account, spec);
    store
        .insert_key(&key, &hash, &audit(&key, "key.created"), None)
        .await
        .unwrap();
    (key, hash)
}

/// The next version of `key` with `edit` applied, as a service would write it.
fn edited(key: &ApiKey, edit: impl FnOnce(&mut ApiKey)) -> ApiKey {
    let mut next = key.clone();
    edit(&mut next);
    next.version = key.version + 1;
    next.updated_at = Utc::now();
    next
}

pub async fn accounts_are_created_once(store: &dyn Store) {
    let acc = Account {
        id: account(),
        created_at: Utc::now(),
    };
    assert_eq!(store.get_account(&acc.id).await.unwrap(), None);
    assert!(store.create_account(&acc).await.unwrap());
    assert!(!store.create_account(&acc).await.unwrap());
    assert_eq!(store.get_account(&acc.id).await.unwrap(), Some(acc));
}

pub async fn a_key_is_found_by_id_and_by_hash(store: &dyn Store) {
    let acc = account();
    let (key, hash) = insert(
        store,
        &acc,
        json!({"name": "found", "workspaces": ["ws_1"]}),
    )
    .await;
    assert_eq!(
        store.get_key(&acc, &key.id).await.unwrap(),
        Some(key.clone())
    );
    assert_eq!(by_hash(store, &hash).await, Some(key.clone()));
    let (_, unknown) = sample_key(&acc, json!({"name": "never stored"}));
    assert_eq!(by_hash(store, &unknown).await, None);
    assert_eq!(
        store.get_key(&account(), &key.id).await.unwrap(),
        None,
        "other account"
    );
    assert_eq!(store.get_key(&acc, "key_missing").await.unwrap(), None);
}

pub async fn names_are_unique_per_account(store: &dyn Store) {
    let acc = account();
    insert(store, &acc, json!({"name": "ci"})).await;
    let (dup, hash) = sample_key(&acc, json!({"name": "ci"}));
    let err = store
        .insert_key(&dup, &hash, &audit(&dup, "key.created"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NameTaken(ref n) if n == "ci"),
        "{err:?}"
    );
    assert_eq!(by_hash(store, &hash).await, None, "no orphan hash");
    insert(store, &account(), json!({"name": "ci"})).await;
}

pub async fn concurrent_creates_with_one_name_admit_exactly_one(store: &dyn Store) {
    let acc = account();
    let attempts: Vec<_> = (0..20)
        .map(|_| sample_key(&acc, json!({"name": "race"})))
        .collect();
    let results = futures_join_all(attempts.iter().map(|(key, hash)| async move {
        store
            .insert_key(key, hash, &audit(key, "key.created"), None)
            .await
    }))
    .await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    let taken = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::NameTaken(_))))
        .count();
    assert_eq!((won, taken), (1, 19), "{results:?}");
    let mut found = 0;
    for (_, hash) in &attempts {
        found += usize::from(by_hash(store, hash).await.is_some());
    }
    assert_eq!(found, 1, "exactly one hash resolves");
    let page = store
        .list_keys(&acc, &KeyQuery::all(Utc::now()))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
}

pub async fn updates_are_conditional_on_the_version(store: &dyn Store) {
    let acc = account();
    let (key, hash) = insert(store, &acc, json!({"name": "v"})).await;
    let v2 = edited(&key, |k| k.description = "second".into());
    store
        .update_key(&v2, 1, None, &audit(&v2, "key.updated"))
        .await
        .unwrap();
    let stale = edited(&key, |k| k.description = "stale".into());
    let err = store
        .update_key(&stale, 1, None, &audit(&stale, "key.updated"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::VersionConflict), "{err:?}");
    let now = store.get_key(&acc, &key.id).await.unwrap().unwrap();
    assert_eq!((now.version, now.description.as_str()), (2, "second"));
    assert_eq!(by_hash(store, &hash).await, Some(now));
    let (ghost, _) = sample_key(&acc, json!({"name": "ghost"}));
    let err = store
        .update_key(&ghost, 1, None, &audit(&ghost, "key.updated"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
}

pub async fn concurrent_edits_lose_no_update(store: &dyn Store) {
    let acc = account();
    let (key, _) = insert(store, &acc, json!({"name": "counter"})).await;
    let writers = 8;
    let id = Arc::new(key.id.clone());
    futures_join_all((0..writers).map(|w| {
        let (acc, id) = (acc.clone(), Arc::clone(&id));
        async move {
            loop {
                let current = store.get_key(&acc, &id).await.unwrap().unwrap();
                let next = edited(&current, |k| {
                    k.metadata.insert(format!("writer_{w}"), json!(true));
                });
                match store
                    .update_key(&next, current.version, None, &audit(&next, "key.updated"))
                    .await
                {
                    Ok(()) => break,
                    Err(StoreError::VersionConflict) => continue,
                    Err(e) => panic!("{e}"),
                }
            }
        }
    }))
    .await;
    let last = store.get_key(&acc, &key.id).await.unwrap().unwrap();
    assert_eq!(last.version, 1 + writers as u64);
    assert_eq!(last.metadata.len(), writers, "every writer's edit survived");
}

pub async fn a_rename_cannot_take_a_used_name(store: &dyn Store) {
    let acc = account();
    insert(store, &acc, json!({"name": "first"})).await;
    let (second, _) = insert(store, &acc, json!({"name": "second"})).await;
    let renamed = edited(&second, |k| k.name = "first".into());
    let err = store
        .update_key(&renamed, 1, None, &audit(&renamed, "key.updated"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NameTaken(_)), "{err:?}");
    let free = edited(&second, |k| k.name = "third".into());
    store
        .update_key(&free, 1, None, &audit(&free, "key.updated"))
        .await
        .unwrap();
    // The old name is free again.
    insert(store, &acc, json!({"name": "second"})).await;
}

pub async fn regeneration_moves_the_lookup_hash(store: &dyn Store) {
    let acc = account();
    let (key, old_hash) = insert(store, &acc, json!({"name": "rotating"})).await;
    let (_, new_hash) = sample_key(&acc, json!({"name": "unused"}));
    let next = edited(&key, |k| k.last4 = "NEW4".into());
    store
        .update_key(&next, 1, Some(&new_hash), &audit(&next, "key.regenerated"))
        .await
        .unwrap();
    assert_eq!(by_hash(store, &old_hash).await, None);
    let found = by_hash(store, &new_hash).await.unwrap();
    assert_eq!((found.id, found.last4.as_str()), (key.id, "NEW4"));
}

/// What `hash` finds: the key's id and, for a previous secret, its grace end.
async fn found(store: &dyn Store, hash: &KeyHash) -> Option<(String, Option<i64>)> {
    let m = store.find_key_by_hash(hash).await.unwrap()?;
    Some((m.key.id, m.grace_until.map(|t| t.timestamp_micros())))
}

pub async fn a_previous_secret_finds_the_key_during_its_grace_only(store: &dyn Store) {
    let acc = account();
    let (key, first) = insert(store, &acc, json!({"name": "graced"})).await;
    let until = Utc::now() + Duration::hours(1);
    let micros = Some(until.timestamp_micros());
    let previous = |k: &ApiKey| keyward_core::key::PreviousSecret {
        start: k.start.clone(),
        last4: k.last4.clone(),
        expires_at: until,
    };
    // Regenerated with a grace: both secrets find the key; the old one says until when.
    let (_, second) = sample_key(&acc, json!({"name": "unused"}));
    let v2 = edited(&key, |k| {
        k.last4 = "TWO2".into();
        k.previous_secret = Some(previous(&key));
    });
    store
        .update_key(&v2, 1, Some(&second), &audit(&v2, "key.regenerated"))
        .await
        .unwrap();
    assert_eq!(found(store, &second).await, Some((key.id.clone(), None)));
    assert_eq!(found(store, &first).await, Some((key.id.clone(), micros)));
    let stored = store.get_key(&acc, &key.id).await.unwrap().unwrap();
    assert_eq!(
        stored.previous_secret, v2.previous_secret,
        "the record shows it"
    );

    // An edit during the grace reaches the previous secret's copy too.
    let v3 = edited(&v2, |k| k.description = "edited in grace".into());
    store
        .update_key(&v3, 2, None, &audit(&v3, "key.updated"))
        .await
        .unwrap();
    let via_old = store.find_key_by_hash(&first).await.unwrap().unwrap();
    assert_eq!(via_old.key.description, "edited in grace");
    assert_eq!(via_old.grace_until.map(|t| t.timestamp_micros()), micros);

    // Regenerated again during the grace: the first secret ends, the second is in grace.
    let (_, third) = sample_key(&acc, json!({"name": "unused"}));
    let v4 = edited(&v3, |k| {
        k.last4 = "THR3".into();
        k.previous_secret = Some(previous(&v3));
    });
    store
        .update_key(&v4, 3, Some(&third), &audit(&v4, "key.regenerated"))
        .await
        .unwrap();
    assert_eq!(found(store, &first).await, None, "at most two secrets");
    assert_eq!(found(store, &second).await, Some((key.id.clone(), micros)));
    assert_eq!(found(store, &third).await, Some((key.id.clone(), None)));

    // The grace ended (the sweep clears it): only the current secret finds the key.
    let v5 = edited(&v4, |k| k.previous_secret = None);
    store
        .update_key(&v5, 4, None, &audit(&v5, "key.grace_ended"))
        .await
        .unwrap();
    assert_eq!(found(store, &second).await, None);
    assert_eq!(found(store, &third).await, Some((key.id.clone(), None)));
    let stored = store.get_key(&acc, &key.id).await.unwrap().unwrap();
    assert_eq!(stored.previous_secret, None);

    // A regeneration without a grace leaves no previous secret; a delete removes every hash.
    let (_, fourth) = sample_key(&acc, json!({"name": "unused"}));
    let v6 = edited(&v5, |k| {
        k.last4 = "FOU4".into();
        k.previous_secret = Some(previous(&v5));
    });
    store
        .update_key(&v6, 5, Some(&fourth), &audit(&v6, "key.regenerated"))
        .await
        .unwrap();
    store
        .delete_key(&acc, &key.id, None, &audit(&v6, "key.deleted"))
        .await
        .unwrap();
    assert_eq!(
        found(store, &third).await,
        None,
        "a deleted key's previous secret"
    );
    assert_eq!(found(store, &fourth).await, None);
}

pub async fn delete_removes_the_key_its_hash_and_its_name(store: &dyn Store) {
    let acc = account();
    let (key, hash) = insert(store, &acc, json!({"name": "doomed"})).await;
    let err = store
        .delete_key(&acc, &key.id, Some(7), &audit(&key, "key.deleted"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::VersionConflict), "{err:?}");
    store
        .delete_key(&acc, &key.id, Some(1), &audit(&key, "key.deleted"))
        .await
        .unwrap();
    assert_eq!(store.get_key(&acc, &key.id).await.unwrap(), None);
    assert_eq!(by_hash(store, &hash).await, None);
    let err = store
        .delete_key(&acc, &key.id, None, &audit(&key, "key.deleted"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    insert(store, &acc, json!({"name": "doomed"})).await;
}

pub async fn listing_filters_by_status_workspace_and_name(store: &dyn Store) {
    let acc = account();
    let soon = Utc::now() + Duration::seconds(60);
    insert(
        store,
        &acc,
        json!({"name": "alpha-ci", "workspaces": ["ws_a"]}),
    )
    .await;
    insert(
        store,
        &acc,
        json!({"name": "beta-CI", "workspaces": ["ws_a", "ws_b"]}),
    )
    .await;
    insert(
        store,
        &acc,
        json!({"name": "gamma", "workspaces": ["ws_b"], "expires_at": soon}),
    )
    .await;
    let (off, _) = insert(store, &acc, json!({"name": "delta"})).await;
    let off2 = edited(&off, |k| k.status = KeyStatus::Inactive);
    store
        .update_key(&off2, 1, None, &audit(&off2, "key.deactivated"))
        .await
        .unwrap();
    let (gone, _) = insert(store, &acc, json!({"name": "epsilon"})).await;
    let gone2 = edited(&gone, |k| k.status = KeyStatus::Revoked);
    store
        .update_key(&gone2, 1, None, &audit(&gone2, "key.revoked"))
        .await
        .unwrap();
    insert(
        store,
        &account(),
        json!({"name": "other-account", "workspaces": ["ws_a"]}),
    )
    .await;

    let names = |status: Option<KeyStatus>, ws: Option<&str>, q: Option<&str>, at| {
        let query = KeyQuery {
            status,
            workspace: ws.map(str::to_owned),
            group: None,
            name_contains: q.map(str::to_owned),
            cursor: None,
            limit: 50,
            now: at,
        };
        let acc = acc.clone();
        async move {
            let page = store.list_keys(&acc, &query).await.unwrap();
            page.items
                .into_iter()
                .map(|k| (k.name, k.status))
                .collect::<Vec<_>>()
        }
    };
    let now = Utc::now();
    use KeyStatus::*;
    assert_eq!(
        names(None, None, None, now).await,
        [
            ("alpha-ci".into(), Active),
            ("beta-CI".into(), Active),
            ("delta".into(), Inactive),
            ("epsilon".into(), Revoked),
            ("gamma".into(), Active)
        ]
    );
    assert_eq!(names(Some(Active), Some("ws_a"), None, now).await.len(), 2);
    assert_eq!(names(Some(Active), Some("ws_b"), None, now).await.len(), 2);
    assert_eq!(
        names(Some(Inactive), None, None, now).await,
        [("delta".into(), Inactive)]
    );
    assert_eq!(
        names(Some(Revoked), None, None, now).await,
        [("epsilon".into(), Revoked)]
    );
    assert_eq!(
        names(Some(Active), None, Some("ci"), now).await,
        [("alpha-ci".into(), Active), ("beta-CI".into(), Active)],
        "name search ignores case"
    );
    insert(store, &acc, json!({"name": "Straße"})).await;
    assert_eq!(
        names(None, None, Some("STRASSE"), now).await,
        [("Straße".into(), Active)],
        "name search folds as names collide (NFKC case folding)"
    );
    // An hour later, gamma has expired: it leaves `active` and is shown as expired.
    let later = now + Duration::hours(1);
    assert_eq!(
        names(Some(Expired), None, None, later).await,
        [("gamma".into(), Expired)]
    );
    assert_eq!(
        names(Some(Active), Some("ws_b"), None, later).await.len(),
        1
    );
    assert!(names(None, Some("ws_none"), None, now).await.is_empty());
}

pub async fn listing_pages_through_everything_once(store: &dyn Store) {
    let acc = account();
    let mut expected = BTreeSet::new();
    for i in 0..11 {
        let name = format!("key-{i:02}");
        insert(store, &acc, json!({"name": name})).await;
        expected.insert(name);
    }
    let mut seen = Vec::new();
    let mut query = KeyQuery {
        limit: 4,
        ..KeyQuery::all(Utc::now())
    };
    let mut pages = 0;
    loop {
        let page = store.list_keys(&acc, &query).await.unwrap();
        assert!(page.items.len() <= 4);
        pages += 1;
        seen.extend(page.items.into_iter().map(|k| k.name));
        match page.next_cursor {
            Some(c) => query.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 11, "no key twice");
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), expected);
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "ordered by name");
}

/// Revoked keys share names: a page boundary between two keys of one name skips neither,
/// in the account's listing and a workspace's.
pub async fn pages_split_keys_that_share_a_name(store: &dyn Store) {
    let acc = account();
    let mut ids = BTreeSet::new();
    for _ in 0..3 {
        let (key, _) = insert(
            store,
            &acc,
            json!({"name": "reused", "workspaces": ["ws_r"]}),
        )
        .await;
        let revoked = edited(&key, |k| k.status = KeyStatus::Revoked);
        store
            .update_key(&revoked, 1, None, &audit(&revoked, "key.revoked"))
            .await
            .unwrap();
        ids.insert(key.id);
    }
    let (live, _) = insert(
        store,
        &acc,
        json!({"name": "reused", "workspaces": ["ws_r"]}),
    )
    .await;
    ids.insert(live.id);
    insert(
        store,
        &acc,
        json!({"name": "zz-after", "workspaces": ["ws_r"]}),
    )
    .await;
    for workspace in [None, Some("ws_r".to_owned())] {
        let mut query = KeyQuery {
            limit: 1,
            workspace: workspace.clone(),
            ..KeyQuery::all(Utc::now())
        };
        let mut seen = Vec::new();
        loop {
            let page = store.list_keys(&acc, &query).await.unwrap();
            seen.extend(page.items.into_iter().map(|k| (k.name, k.id)));
            match page.next_cursor {
                Some(c) => query.cursor = Some(c),
                None => break,
            }
        }
        let reused: BTreeSet<String> = seen
            .iter()
            .filter(|(n, _)| n == "reused")
            .map(|(_, id)| id.clone())
            .collect();
        assert_eq!(
            reused, ids,
            "{workspace:?}: every key of the shared name, once"
        );
        assert_eq!(seen.len(), 5, "{workspace:?}: no key twice: {seen:?}");
    }
}

pub async fn a_bad_cursor_is_refused(store: &dyn Store) {
    let acc = account();
    insert(store, &acc, json!({"name": "only"})).await;
    for bad in ["not a cursor", "zz", "\u{0}"] {
        let query = KeyQuery {
            cursor: Some(bad.into()),
            ..KeyQuery::all(Utc::now())
        };
        let err = store.list_keys(&acc, &query).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidCursor), "{bad:?}: {err:?}");
        let err = store.list_audit(&acc, Some(bad), 10).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidCursor), "{bad:?}: {err:?}");
    }
}

pub async fn every_mutation_writes_its_audit_entry(store: &dyn Store) {
    let acc = account();
    let (key, _) = insert(store, &acc, json!({"name": "audited"})).await;
    let v2 = edited(&key, |k| k.status = KeyStatus::Revoked);
    store
        .update_key(&v2, 1, None, &audit(&v2, "key.revoked"))
        .await
        .unwrap();
    store
        .delete_key(&acc, &key.id, None, &audit(&v2, "key.deleted"))
        .await
        .unwrap();
    // A failed write leaves no audit entry behind.
    let _ = store
        .delete_key(&acc, &key.id, None, &audit(&v2, "key.deleted"))
        .await;
    let page = store.list_audit(&acc, None, 2).await.unwrap();
    let actions: Vec<_> = page.items.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["key.deleted", "key.revoked"], "newest first");
    let rest = store
        .list_audit(&acc, page.next_cursor.as_deref(), 2)
        .await
        .unwrap();
    let actions: Vec<_> = rest.items.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["key.created"]);
    assert_eq!(rest.next_cursor, None);
    assert!(
        store
            .list_audit(&account(), None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

pub async fn an_idempotency_key_admits_one_create(store: &dyn Store) {
    let acc = account();
    let (first, hash) = sample_key(&acc, json!({"name": "idem-1"}));
    let record = IdempotencyRecord::new(&acc, "retry-me", b"{}", &first.id, Utc::now());
    assert_eq!(store.get_idempotency(&acc, "retry-me").await.unwrap(), None);
    store
        .insert_key(&first, &hash, &audit(&first, "key.created"), Some(&record))
        .await
        .unwrap();
    assert_eq!(
        store.get_idempotency(&acc, "retry-me").await.unwrap(),
        Some(record.clone())
    );
    // The same idempotency key cannot make a second key, and leaves nothing behind.
    let (second, hash2) = sample_key(&acc, json!({"name": "idem-2"}));
    let again = IdempotencyRecord::new(&acc, "retry-me", b"{}", &second.id, Utc::now());
    let err = store
        .insert_key(
            &second,
            &hash2,
            &audit(&second, "key.created"),
            Some(&again),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::IdempotencyKeyUsed), "{err:?}");
    assert_eq!(by_hash(store, &hash2).await, None);
    assert_eq!(store.get_key(&acc, &second.id).await.unwrap(), None);
    // Records are per account, and an expired one may be replaced.
    assert_eq!(
        store.get_idempotency(&account(), "retry-me").await.unwrap(),
        None
    );
    let (third, hash3) = sample_key(&acc, json!({"name": "idem-3"}));
    let mut old = IdempotencyRecord::new(
        &acc,
        "stale",
        b"{}",
        "key_gone",
        Utc::now() - Duration::hours(30),
    );
    old.expires_at = Utc::now() - Duration::hours(6);
    let (gone, gone_hash) = sample_key(&acc, json!({"name": "idem-gone"}));
    store
        .insert_key(&gone, &gone_hash, &audit(&gone, "key.created"), Some(&old))
        .await
        .unwrap();
    let fresh = IdempotencyRecord::new(&acc, "stale", b"{}", &third.id, Utc::now());
    store
        .insert_key(&third, &hash3, &audit(&third, "key.created"), Some(&fresh))
        .await
        .unwrap();
    assert_eq!(
        store
            .get_idempotency(&acc, "stale")
            .await
            .unwrap()
            .unwrap()
            .key_id,
        third.id
    );
}

fn group(acc: &str, name: &str) -> Group {
    CreateGroupRequest {
        name: Some(name.into()),
        description: None,
    }
    .into_group(acc, "conformance", Utc::now())
    .unwrap()
    .unwrap()
}

fn group_audit(g: &Group, action: &str) -> AuditEntry {
    AuditEntry::new(
        &g.account,
        "conformance",
        action,
        Some(&g.id),
        None,
        json!({}),
        Utc::now(),
    )
    .unwrap()
}

pub async fn groups_are_named_uniquely_listed_and_deleted(store: &dyn Store) {
    let acc = account();
    let mut made = Vec::new();
    for name in ["platform", "data", "ops"] {
        let g = group(&acc, name);
        store
            .insert_group(&g, &group_audit(&g, "group.created"))
            .await
            .unwrap();
        made.push(g);
    }
    let dup = group(&acc, "data");
    let err = store
        .insert_group(&dup, &group_audit(&dup, "group.created"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NameTaken(_)), "{err:?}");
    assert_eq!(
        store.get_group(&acc, &made[0].id).await.unwrap(),
        Some(made[0].clone())
    );
    assert_eq!(
        store.get_group(&account(), &made[0].id).await.unwrap(),
        None
    );

    let first = store.list_groups(&acc, None, 2).await.unwrap();
    let rest = store
        .list_groups(&acc, first.next_cursor.as_deref(), 2)
        .await
        .unwrap();
    assert_eq!(rest.next_cursor, None);
    let mut ids: Vec<_> = first
        .items
        .iter()
        .chain(&rest.items)
        .map(|g| g.id.clone())
        .collect();
    let mut expected: Vec<_> = made.iter().map(|g| g.id.clone()).collect();
    assert_eq!(ids.len(), 3);
    let listed = ids.clone();
    ids.sort();
    assert_eq!(listed, ids, "ordered by id");
    expected.sort();
    assert_eq!(ids, expected);

    store
        .delete_group(&acc, &made[1].id, &group_audit(&made[1], "group.deleted"))
        .await
        .unwrap();
    assert_eq!(store.get_group(&acc, &made[1].id).await.unwrap(), None);
    let err = store
        .delete_group(&acc, &made[1].id, &group_audit(&made[1], "group.deleted"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    let reuse = group(&acc, "data");
    store
        .insert_group(&reuse, &group_audit(&reuse, "group.created"))
        .await
        .unwrap();
}

pub async fn listing_filters_by_group(store: &dyn Store) {
    let acc = account();
    insert(store, &acc, json!({"name": "in-a", "groups": ["grp_a"]})).await;
    insert(
        store,
        &acc,
        json!({"name": "in-both", "groups": ["grp_a", "grp_b"]}),
    )
    .await;
    insert(store, &acc, json!({"name": "in-none"})).await;
    let query = KeyQuery {
        group: Some("grp_a".into()),
        ..KeyQuery::all(Utc::now())
    };
    let names: Vec<_> = store
        .list_keys(&acc, &query)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|k| k.name)
        .collect();
    assert_eq!(names, ["in-a", "in-both"]);
}

pub async fn presets_are_put_listed_replaced_and_deleted(store: &dyn Store) {
    let acc = account();
    let preset_audit = |name: &str| {
        AuditEntry::new(
            &acc,
            "conformance",
            "preset.put",
            Some(name),
            None,
            json!({}),
            Utc::now(),
        )
        .unwrap()
    };
    let ci = Preset::new("ci", "CI jobs", &["agent:executor"]).unwrap();
    let ro = Preset::new("auditor", "Reads everything", &["read"]).unwrap();
    store
        .put_preset(&acc, &ci, &preset_audit("ci"))
        .await
        .unwrap();
    store
        .put_preset(&acc, &ro, &preset_audit("auditor"))
        .await
        .unwrap();
    assert_eq!(
        store.list_presets(&acc).await.unwrap(),
        [ro.clone(), ci.clone()],
        "by name"
    );
    let ci2 = Preset::new("ci", "CI jobs, now writing", &["agent:editor"]).unwrap();
    store
        .put_preset(&acc, &ci2, &preset_audit("ci"))
        .await
        .unwrap();
    assert_eq!(store.list_presets(&acc).await.unwrap(), [ro.clone(), ci2]);
    store
        .delete_preset(&acc, "ci", &preset_audit("ci"))
        .await
        .unwrap();
    assert_eq!(store.list_presets(&acc).await.unwrap(), [ro]);
    let err = store
        .delete_preset(&acc, "ci", &preset_audit("ci"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    assert!(store.list_presets(&account()).await.unwrap().is_empty());
}

fn uses(key: &ApiKey, valid: u64, at: chrono::DateTime<Utc>, ip: &str) -> KeyUse {
    KeyUse {
        key_id: key.id.clone(),
        outcomes: Outcomes {
            valid,
            rate_limited: 1,
            denied: 2,
        },
        last_used_at: at,
        last_used_ip: Some(ip.parse().unwrap()),
    }
}

fn record(acc: &str, at: chrono::DateTime<Utc>, keys: Vec<KeyUse>) -> UsageRecord {
    UsageRecord {
        id: keyward_core::id::new_id("usage").unwrap(),
        account: acc.to_owned(),
        day: at.date_naive(),
        keys,
    }
}

/// Writes `records` and applies each (as the aggregator does), expecting each applied now.
async fn roll_up(store: &dyn Store, records: &[UsageRecord]) {
    store.write_usage(records).await.unwrap();
    for r in records {
        assert_eq!(store.apply_usage(r).await.unwrap(), Applied::Now);
    }
}

fn figures(days: &[DayUsage]) -> Vec<(chrono::NaiveDate, u64, u64, u64, u64)> {
    days.iter()
        .map(|d| (d.date, d.valid, d.rate_limited, d.denied, d.total))
        .collect()
}

pub async fn usage_rolls_up_per_key_and_per_day_by_outcome(store: &dyn Store) {
    let acc = account();
    let (a, _) = insert(store, &acc, json!({"name": "busy"})).await;
    let (b, _) = insert(store, &acc, json!({"name": "quiet"})).await;
    let (gone, _) = insert(store, &acc, json!({"name": "gone"})).await;
    store
        .delete_key(&acc, &gone.id, None, &audit(&gone, "key.deleted"))
        .await
        .unwrap();
    let today = Utc::now();
    let yesterday = today - Duration::days(1);
    roll_up(
        store,
        &[
            record(
                &acc,
                yesterday,
                vec![
                    uses(&a, 5, yesterday, "10.0.0.1"),
                    uses(&b, 2, yesterday, "10.0.0.2"),
                ],
            ),
            record(&acc, today, vec![uses(&gone, 9, today, "10.0.0.9")]),
            record(&acc, today, vec![uses(&a, 3, today, "2001:db8::1")]),
        ],
    )
    .await;
    let busy = store.get_key(&acc, &a.id).await.unwrap().unwrap();
    assert_eq!(busy.request_count, 8 + 2 * 3, "every outcome is a request");
    assert_eq!(busy.last_used_ip, Some("2001:db8::1".parse().unwrap()));
    assert_eq!(
        busy.last_used_at.map(|t| t.timestamp_micros()),
        Some(today.timestamp_micros())
    );
    assert_eq!(busy.version, a.version, "usage does not change the version");
    assert!(
        store.get_key(&acc, &gone.id).await.unwrap().is_none(),
        "a deleted key stays deleted"
    );

    let (y, t) = (yesterday.date_naive(), today.date_naive());
    let from = y - Duration::days(3);
    let days = store.usage_days(&acc, Some(&a.id), from, t).await.unwrap();
    assert_eq!(figures(&days), [(y, 5, 1, 2, 8), (t, 3, 1, 2, 6)]);
    let account_days = store.usage_days(&acc, None, from, t).await.unwrap();
    assert_eq!(
        figures(&account_days),
        [(y, 7, 2, 4, 13), (t, 12, 2, 4, 18)],
        "the account counts every use, a deleted key's too"
    );
    let only_today = store.usage_days(&acc, Some(&a.id), t, t).await.unwrap();
    assert_eq!(only_today.len(), 1);
    assert!(
        store
            .usage_days(&account(), None, from, t)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn a_usage_record_is_applied_once_however_often_it_arrives(store: &dyn Store) {
    let acc = account();
    let (key, _) = insert(store, &acc, json!({"name": "redelivered"})).await;
    let now = Utc::now();
    let r = record(&acc, now, vec![uses(&key, 4, now, "10.0.0.4")]);
    store.write_usage(std::slice::from_ref(&r)).await.unwrap();
    let pending = store.pending_usage(10_000).await.unwrap();
    assert!(
        pending.contains(&r),
        "a written record waits for the aggregator"
    );
    assert_eq!(store.apply_usage(&r).await.unwrap(), Applied::Now);
    assert_eq!(store.apply_usage(&r).await.unwrap(), Applied::Before);
    // A flush retried after its write landed and was applied: the rewrite adds nothing.
    store.write_usage(std::slice::from_ref(&r)).await.unwrap();
    assert_eq!(store.apply_usage(&r).await.unwrap(), Applied::Before);
    // A record never written cannot be applied.
    let stray = record(&acc, now, vec![uses(&key, 100, now, "10.0.0.4")]);
    assert_eq!(store.apply_usage(&stray).await.unwrap(), Applied::Before);
    let stored = store.get_key(&acc, &key.id).await.unwrap().unwrap();
    assert_eq!(stored.request_count, 7, "counted once");
    let days = store
        .usage_days(&acc, Some(&key.id), r.day, r.day)
        .await
        .unwrap();
    assert_eq!(figures(&days), [(r.day, 4, 1, 2, 7)]);
    assert!(
        !store
            .pending_usage(10_000)
            .await
            .unwrap()
            .iter()
            .any(|p| p.id == r.id),
        "an applied record is no longer pending"
    );
}

pub async fn days_read_back_whatever_order_their_records_arrive_in(store: &dyn Store) {
    let acc = account();
    let (key, _) = insert(store, &acc, json!({"name": "daily"})).await;
    let now = Utc::now();
    let day = |back: i64| now - Duration::days(back);
    // Days in order, a day older than all of them, then more of the latest ones: a store that
    // keeps recent days apart (DynamoDB holds two on the key's figures item) must still add up.
    let mut records = Vec::new();
    for (back, valid) in [
        (3, 1),
        (2, 10),
        (1, 100),
        (4, 1_000),
        (2, 10_000),
        (0, 100_000),
        (1, 7),
    ] {
        records.push(record(
            &acc,
            day(back),
            vec![uses(&key, valid, day(back), "10.0.0.1")],
        ));
    }
    roll_up(store, &records).await;
    let (from, to) = (day(9).date_naive(), now.date_naive());
    let days = store
        .usage_days(&acc, Some(&key.id), from, to)
        .await
        .unwrap();
    let valid: Vec<_> = days.iter().map(|d| (d.date, d.valid, d.total)).collect();
    assert_eq!(
        valid,
        [
            (day(4).date_naive(), 1_000, 1_003),
            (day(3).date_naive(), 1, 4),
            (day(2).date_naive(), 10_010, 10_016),
            (day(1).date_naive(), 107, 113),
            (day(0).date_naive(), 100_000, 100_003),
        ]
    );
    let one = day(2).date_naive();
    let narrow = store
        .usage_days(&acc, Some(&key.id), one, one)
        .await
        .unwrap();
    assert_eq!(figures(&narrow), [(one, 10_010, 2, 4, 10_016)]);
    let account_days = store.usage_days(&acc, None, from, to).await.unwrap();
    assert_eq!(
        figures(&account_days),
        figures(&days),
        "one key: the account's days are its days"
    );
    let stored = store.get_key(&acc, &key.id).await.unwrap().unwrap();
    assert_eq!(stored.request_count, 111_118 + 7 * 3);
    assert_eq!(
        stored.last_used_at.map(|t| t.timestamp_micros()),
        Some(day(0).timestamp_micros())
    );
}

pub async fn the_latest_use_wins_whatever_order_records_arrive_in(store: &dyn Store) {
    let acc = account();
    let (key, _) = insert(store, &acc, json!({"name": "out-of-order"})).await;
    let later = Utc::now();
    let earlier = later - Duration::seconds(5);
    roll_up(
        store,
        &[
            record(&acc, later, vec![uses(&key, 1, later, "10.0.0.2")]),
            record(&acc, earlier, vec![uses(&key, 1, earlier, "10.0.0.1")]),
        ],
    )
    .await;
    let stored = store.get_key(&acc, &key.id).await.unwrap().unwrap();
    assert_eq!(stored.request_count, 8, "both records counted");
    assert_eq!(stored.last_used_ip, Some("10.0.0.2".parse().unwrap()));
    assert_eq!(
        stored.last_used_at.map(|t| t.timestamp_micros()),
        Some(later.timestamp_micros())
    );
}

pub async fn an_edit_never_loses_usage_recorded_meanwhile(store: &dyn Store) {
    let acc = account();
    let (key, _) = insert(store, &acc, json!({"name": "edited-while-used"})).await;
    let read = store.get_key(&acc, &key.id).await.unwrap().unwrap();
    let now = Utc::now();
    roll_up(
        store,
        &[record(&acc, now, vec![uses(&key, 4, now, "10.1.1.1")])],
    )
    .await;
    let next = edited(&read, |k| k.description = "edited".into());
    store
        .update_key(&next, read.version, None, &audit(&next, "key.updated"))
        .await
        .unwrap();
    let now = store.get_key(&acc, &key.id).await.unwrap().unwrap();
    assert_eq!((now.description.as_str(), now.request_count), ("edited", 7));
    assert!(now.last_used_at.is_some());
}

fn counter(acc: &str, key_id: &str, purpose: Purpose) -> Counter {
    Counter {
        account: acc.to_owned(),
        key_id: key_id.to_owned(),
        purpose,
    }
}

pub async fn leases_never_grant_more_than_the_limit(store: &dyn Store) {
    let acc = account();
    let c = counter(&acc, "key_leased", Purpose::Verify);
    let w = Window::of(Utc::now());
    assert_eq!(store.leased(&c, w).await.unwrap(), 0);
    let g = store.lease(&c, w, 10, 4).await.unwrap();
    assert_eq!((g.granted, g.total), (4, 4));
    let g = store.lease(&c, w, 10, 4).await.unwrap();
    assert_eq!((g.granted, g.total), (4, 8));
    let g = store.lease(&c, w, 10, 4).await.unwrap();
    assert_eq!((g.granted, g.total), (2, 10), "what is left");
    let g = store.lease(&c, w, 10, 4).await.unwrap();
    assert_eq!((g.granted, g.total), (0, 10), "spent");
    assert_eq!(store.leased(&c, w).await.unwrap(), 10);
    // Another minute, another purpose and another key each have their own budget.
    let next = Window(w.0 + 1);
    assert_eq!(store.lease(&c, next, 10, 4).await.unwrap().granted, 4);
    let manage = counter(&acc, "key_leased", Purpose::Manage);
    assert_eq!(store.lease(&manage, w, 10, 10).await.unwrap().granted, 10);
    let other = counter(&acc, "key_other", Purpose::Verify);
    assert_eq!(store.lease(&other, w, 1, 4).await.unwrap().granted, 1);
}

pub async fn concurrent_leases_share_the_limit_exactly(store: &dyn Store) {
    let acc = account();
    let c = counter(&acc, "key_contended", Purpose::Verify);
    let w = Window::of(Utc::now());
    let takers = (0..8).map(|_| async {
        let mut mine = 0;
        loop {
            let g = store.lease(&c, w, 100, 3).await.unwrap();
            if g.granted == 0 {
                return mine;
            }
            mine += g.granted;
        }
    });
    let granted: u32 = futures_join_all(takers).await.into_iter().sum();
    assert_eq!(
        granted, 100,
        "every use granted once, none beyond the limit"
    );
    assert_eq!(store.leased(&c, w).await.unwrap(), 100);
}

pub async fn changes_name_the_hashes_that_stopped_meaning_what_they_meant(store: &dyn Store) {
    let acc = account();
    let since = Utc::now() - Duration::milliseconds(1);
    let (edited_key, edited_hash) = insert(store, &acc, json!({"name": "edited"})).await;
    let (gone, gone_hash) = insert(store, &acc, json!({"name": "gone"})).await;
    let (rotated, old_hash) = insert(store, &acc, json!({"name": "rotated"})).await;
    let seen = |changes: Vec<keyward_core::usage::KeyChange>| {
        changes.into_iter().map(|c| c.hash).collect::<Vec<_>>()
    };
    let before = seen(store.changes_since(since).await.unwrap());
    assert!(
        !before.contains(&edited_hash),
        "creating a key changes nothing cached"
    );

    let next = edited(&edited_key, |k| k.status = KeyStatus::Revoked);
    store
        .update_key(&next, 1, None, &audit(&next, "key.revoked"))
        .await
        .unwrap();
    store
        .delete_key(&acc, &gone.id, None, &audit(&gone, "key.deleted"))
        .await
        .unwrap();
    let (_, new_hash) = sample_key(&acc, json!({"name": "unused"}));
    let next = edited(&rotated, |_| {});
    store
        .update_key(&next, 1, Some(&new_hash), &audit(&next, "key.regenerated"))
        .await
        .unwrap();

    let changes = store.changes_since(since).await.unwrap();
    assert!(
        changes.windows(2).all(|w| w[0].at <= w[1].at),
        "oldest first"
    );
    let hashes = seen(changes);
    for h in [edited_hash, gone_hash, old_hash] {
        assert!(
            hashes.contains(&h),
            "a change names the hash valid before it"
        );
    }
    assert!(
        hashes.contains(&new_hash),
        "and the hash a regeneration installs: verifiers may hold it as unknown"
    );
    let later = seen(
        store
            .changes_since(Utc::now() + Duration::seconds(5))
            .await
            .unwrap(),
    );
    assert!(!later.contains(&edited_hash));
}

/// The names of every key of `acc`, in listing order.
async fn key_names(store: &dyn Store, acc: &str) -> Vec<String> {
    store
        .list_keys(acc, &KeyQuery::all(Utc::now()))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|k| k.name)
        .collect()
}

async fn try_insert(store: &dyn Store, key: &ApiKey, hash: &KeyHash) -> crate::StoreResult<()> {
    store
        .insert_key(key, hash, &audit(key, "key.created"), None)
        .await
}

fn taken(result: crate::StoreResult<()>, what: &str) {
    assert!(
        matches!(result, Err(StoreError::NameTaken(_))),
        "{what}: {result:?}"
    );
}

/// A key named `name` as it stands, past the name rule (as an older keyward or a bug might have
/// written it): the store folds whatever it is given.
fn raw_named(acc: &str, name: &str) -> (ApiKey, KeyHash) {
    let (mut key, hash) = sample_key(acc, json!({"name": "placeholder"}));
    key.name = name.to_owned();
    (key, hash)
}

pub async fn look_alike_names_collide(store: &dyn Store) {
    let acc = account();
    insert(store, &acc, json!({"name": "ci-bot"})).await;
    insert(store, &acc, json!({"name": "caf\u{e9}"})).await;
    insert(store, &acc, json!({"name": "Stra\u{df}e"})).await;
    for look_alike in [
        "CI-Bot",
        "CI-BOT",
        "\u{ff23}\u{ff29}-\u{ff42}\u{ff4f}\u{ff54}",
        "cafe\u{301}",
        "CAF\u{c9}",
        "STRASSE",
        "strasse",
    ] {
        let (key, hash) = raw_named(&acc, look_alike);
        taken(try_insert(store, &key, &hash).await, look_alike);
        assert_eq!(by_hash(store, &hash).await, None, "no orphan");
    }
    // Different names stay different, and names are per account.
    for other in ["ci_bot", "ci-bot-2", "cafe"] {
        insert(store, &acc, json!({ "name": other })).await;
    }
    insert(store, &account(), json!({"name": "CI-BOT"})).await;
    let page = store
        .list_keys(&acc, &KeyQuery::all(Utc::now()))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 6);
    assert!(
        page.items.iter().any(|k| k.name == "caf\u{e9}"),
        "NFC as written"
    );
}

pub async fn concurrent_look_alike_creates_admit_exactly_one(store: &dyn Store) {
    let acc = account();
    let spellings = [
        "race",
        "RACE",
        "Race",
        "rACE",
        "\u{ff52}\u{ff41}\u{ff43}\u{ff45}",
        "\u{ff32}ace",
    ];
    let attempts: Vec<_> = (0..12)
        .map(|i| raw_named(&acc, spellings[i % spellings.len()]))
        .collect();
    let results = futures_join_all(
        attempts
            .iter()
            .map(|(key, hash)| async move { try_insert(store, key, hash).await }),
    )
    .await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    let lost = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::NameTaken(_))))
        .count();
    assert_eq!((won, lost), (1, 11), "{results:?}");
}

pub async fn renames_claim_and_release_folded_names(store: &dyn Store) {
    let acc = account();
    let (first, _) = insert(store, &acc, json!({"name": "First"})).await;
    let (second, _) = insert(store, &acc, json!({"name": "second"})).await;
    // Renaming into another key's name in another spelling is refused.
    let clash = edited(&second, |k| k.name = "FIRST".into());
    taken(
        store
            .update_key(&clash, 1, None, &audit(&clash, "key.updated"))
            .await,
        "rename into a look-alike",
    );
    // A key may change how its own name is spelled; the claim stays its own.
    let respelled = edited(&first, |k| k.name = "FIRST".into());
    store
        .update_key(&respelled, 1, None, &audit(&respelled, "key.updated"))
        .await
        .unwrap();
    let (dup, hash) = raw_named(&acc, "first");
    taken(
        try_insert(store, &dup, &hash).await,
        "respelled name still claimed",
    );
    // A rename releases the folded claim it held: any spelling of it is free again.
    let moved = edited(&respelled, |k| k.name = "third".into());
    store
        .update_key(&moved, 2, None, &audit(&moved, "key.updated"))
        .await
        .unwrap();
    insert(store, &acc, json!({"name": "fIrSt"})).await;
    // A delete releases it too.
    store
        .delete_key(&acc, &second.id, None, &audit(&second, "key.deleted"))
        .await
        .unwrap();
    insert(store, &acc, json!({"name": "SECOND"})).await;
    let (third, hash) = raw_named(&acc, "THIRD");
    taken(
        try_insert(store, &third, &hash).await,
        "the renamed key holds third",
    );
}

pub async fn look_alike_group_names_collide(store: &dyn Store) {
    let acc = account();
    let platform = group(&acc, "Platform");
    store
        .insert_group(&platform, &group_audit(&platform, "group.created"))
        .await
        .unwrap();
    for look_alike in [
        "platform",
        "PLATFORM",
        "\u{ff50}\u{ff4c}\u{ff41}\u{ff54}\u{ff46}\u{ff4f}\u{ff52}\u{ff4d}",
    ] {
        let g = group(&acc, look_alike);
        let err = store
            .insert_group(&g, &group_audit(&g, "group.created"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::NameTaken(_)),
            "{look_alike}: {err:?}"
        );
    }
    store
        .delete_group(&acc, &platform.id, &group_audit(&platform, "group.deleted"))
        .await
        .unwrap();
    let again = group(&acc, "PLATFORM");
    store
        .insert_group(&again, &group_audit(&again, "group.created"))
        .await
        .unwrap();
    assert_eq!(
        store
            .get_group(&acc, &again.id)
            .await
            .unwrap()
            .unwrap()
            .name,
        "PLATFORM"
    );
}

pub async fn names_in_any_single_script_are_kept_as_written(store: &dyn Store) {
    let acc = account();
    let names = [
        "Сервис оплаты",
        "本番環境のキー",
        "서비스 키",
        "Ελληνικά",
        "ci nightly",
    ];
    let mut ids = Vec::new();
    for name in names {
        let (key, _) = insert(store, &acc, json!({ "name": name })).await;
        ids.push(key.id);
    }
    for (id, name) in ids.iter().zip(names) {
        assert_eq!(store.get_key(&acc, id).await.unwrap().unwrap().name, name);
    }
    let listed: Vec<_> = store
        .list_keys(&acc, &KeyQuery::all(Utc::now()))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|k| k.name)
        .collect();
    let mut sorted: Vec<_> = names.iter().map(|n| n.to_string()).collect();
    sorted.sort();
    assert_eq!(listed, sorted);
    let (upper, hash) = raw_named(&acc, "СЕРВИС ОПЛАТЫ");
    taken(
        try_insert(store, &upper, &hash).await,
        "Cyrillic case variant",
    );
}

/// A store written before names were folded: keys and groups claimed by their raw spelling,
/// look-alikes among them. They load, list, verify, edit, rename and delete as before; after
/// the adapter's upgrade, new look-alikes of them collide; renames and deletes release the
/// claim each record actually holds.
pub async fn names_written_before_folding_keep_working<S: LegacyNames>(store: &S) {
    let acc = account();
    let legacy = |name: &str| {
        let (key, hash) = raw_named(&acc, name);
        let entry = audit(&key, "key.created");
        async move {
            store.insert_legacy_key(&key, &hash, &entry).await.unwrap();
            (key, hash)
        }
    };
    // "Build-Bot" and "build-bot" could both be written then; "cafe\u{301}" kept its NFD.
    let (upper, upper_hash) = legacy("Build-Bot").await;
    let (lower, _) = legacy("build-bot").await;
    let (nfd, _) = legacy("cafe\u{301}").await;
    let (tidy, _) = legacy("Tidy").await;
    let ops = Group {
        name: "Ops".into(),
        ..group(&acc, "placeholder")
    };
    store
        .insert_legacy_group(&ops, &group_audit(&ops, "group.created"))
        .await
        .unwrap();

    // Everything reads as before.
    assert_eq!(
        store.get_key(&acc, &upper.id).await.unwrap(),
        Some(upper.clone())
    );
    assert_eq!(by_hash(store, &upper_hash).await, Some(upper.clone()));
    assert_eq!(
        key_names(store, &acc).await,
        ["Build-Bot", "Tidy", "build-bot", "cafe\u{301}"]
    );
    assert_eq!(
        store.get_group(&acc, &ops.id).await.unwrap(),
        Some(ops.clone())
    );

    // An old record is deleted (before any upgrade) and frees its name.
    store
        .delete_key(&acc, &tidy.id, Some(1), &audit(&tidy, "key.deleted"))
        .await
        .unwrap();
    insert(store, &acc, json!({"name": "tidy"})).await;

    store.upgrade_legacy_names().await.unwrap();
    store.upgrade_legacy_names().await.unwrap();

    // After the upgrade, new look-alikes of the old names collide.
    for (look_alike, of) in [
        ("CAF\u{c9}", "the NFD name"),
        ("caf\u{e9}", "the NFD name"),
        ("build-BOT", "the pair"),
    ] {
        let (key, hash) = raw_named(&acc, look_alike);
        taken(try_insert(store, &key, &hash).await, of);
    }
    let g = group(&acc, "OPS");
    let err = store
        .insert_group(&g, &group_audit(&g, "group.created"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NameTaken(_)), "{err:?}");
    assert_eq!(
        key_names(store, &acc).await,
        ["Build-Bot", "build-bot", "cafe\u{301}", "tidy"],
        "still as written"
    );

    // An edit that keeps the name leaves the claim alone, even the kept look-alike's.
    let described = edited(&upper, |k| k.description = "still here".into());
    store
        .update_key(&described, 1, None, &audit(&described, "key.updated"))
        .await
        .unwrap();
    // Renames release the claim each record holds, folded or raw, and claim the new folded name.
    let renamed = edited(&lower, |k| k.name = "bot-two".into());
    store
        .update_key(&renamed, 1, None, &audit(&renamed, "key.updated"))
        .await
        .unwrap();
    let renamed = edited(&described, |k| k.name = "Bot-One".into());
    store
        .update_key(&renamed, 2, None, &audit(&renamed, "key.updated"))
        .await
        .unwrap();
    insert(store, &acc, json!({"name": "BUILD-BOT"})).await;
    let (dup, hash) = raw_named(&acc, "bot-one");
    taken(
        try_insert(store, &dup, &hash).await,
        "the renamed old key's new name",
    );
    let respelled = edited(&nfd, |k| k.name = "Caf\u{e9}".into());
    store
        .update_key(&respelled, 1, None, &audit(&respelled, "key.updated"))
        .await
        .unwrap();
    store
        .delete_key(&acc, &nfd.id, None, &audit(&nfd, "key.deleted"))
        .await
        .unwrap();
    insert(store, &acc, json!({"name": "caf\u{e9}"})).await;
    store
        .delete_group(&acc, &ops.id, &group_audit(&ops, "group.deleted"))
        .await
        .unwrap();
    let g = group(&acc, "ops");
    store
        .insert_group(&g, &group_audit(&g, "group.created"))
        .await
        .unwrap();
}

/// `key` revoked, as the service writes it (one version on).
fn revoked(key: &ApiKey) -> ApiKey {
    edited(key, |k| k.status = KeyStatus::Revoked)
}

async fn revoke(store: &dyn Store, key: &ApiKey) -> ApiKey {
    let next = revoked(key);
    store
        .update_key(&next, key.version, None, &audit(&next, "key.revoked"))
        .await
        .unwrap();
    next
}

/// Every key of `acc` in any status, as (name, id), in listing order.
async fn all_keys(store: &dyn Store, acc: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let query = KeyQuery {
            cursor,
            limit: 200,
            ..KeyQuery::all(Utc::now())
        };
        let page = store.list_keys(acc, &query).await.unwrap();
        out.extend(page.items.into_iter().map(|k| (k.name, k.id)));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return out,
        }
    }
}

/// A revoked key keeps its name for history but frees it: a new key (in any spelling that folds
/// to it) or a rename of another key may take it at once; several revoked keys may share it;
/// deleting the revoked one leaves the new owner's claim alone.
pub async fn revoking_a_key_frees_its_name(store: &dyn Store) {
    let acc = account();
    let (old, old_hash) = insert(
        store,
        &acc,
        json!({"name": "Deploy", "workspaces": ["ws_1"]}),
    )
    .await;
    let (dup, hash) = raw_named(&acc, "deploy");
    taken(try_insert(store, &dup, &hash).await, "a live key's name");
    let old = revoke(store, &old).await;

    // A look-alike spelling of the revoked name is free at once.
    let (new, _) = insert(store, &acc, json!({"name": "deploy"})).await;
    for spelling in ["Deploy", "DEPLOY"] {
        let (dup, hash) = raw_named(&acc, spelling);
        taken(try_insert(store, &dup, &hash).await, "the new key holds it");
    }
    // The revoked record keeps its name: it loads, is found by its hash, lists and is audited.
    let stored = store.get_key(&acc, &old.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.name.as_str(), stored.status),
        ("Deploy", KeyStatus::Revoked)
    );
    assert_eq!(by_hash(store, &old_hash).await.unwrap().name, "Deploy");
    let revoked_only = KeyQuery {
        status: Some(KeyStatus::Revoked),
        ..KeyQuery::all(Utc::now())
    };
    let listed = store.list_keys(&acc, &revoked_only).await.unwrap().items;
    assert_eq!(listed, std::slice::from_ref(&old));
    let in_ws = KeyQuery {
        workspace: Some("ws_1".into()),
        ..KeyQuery::all(Utc::now())
    };
    assert_eq!(
        store.list_keys(&acc, &in_ws).await.unwrap().items,
        std::slice::from_ref(&old)
    );
    let trail = store.list_audit(&acc, None, 10).await.unwrap().items;
    assert!(
        trail
            .iter()
            .any(|e| e.action == "key.revoked" && e.target.as_deref() == Some(old.id.as_str())),
        "{trail:?}"
    );

    // Deleting the revoked key leaves the new key's claim intact.
    store
        .delete_key(
            &acc,
            &old.id,
            Some(old.version),
            &audit(&old, "key.deleted"),
        )
        .await
        .unwrap();
    let (dup, hash) = raw_named(&acc, "DePloy");
    taken(
        try_insert(store, &dup, &hash).await,
        "the new key still holds it after the old one is deleted",
    );

    // Two revoked keys may share a name, beside a live one.
    let new = revoke(store, &new).await;
    let (third, _) = insert(store, &acc, json!({"name": "deploy"})).await;
    revoke(store, &third).await;
    let (fourth, _) = insert(store, &acc, json!({"name": "Deploy"})).await;
    let mut ids = vec![new.id.clone(), third.id.clone(), fourth.id.clone()];
    ids.sort();
    let mut listed: Vec<String> = all_keys(store, &acc)
        .await
        .into_iter()
        .map(|(name, id)| {
            assert_eq!(name.to_lowercase(), "deploy");
            id
        })
        .collect();
    listed.sort();
    assert_eq!(listed, ids, "all three list");

    // A rename of another key may take a revoked key's name.
    let fourth = revoke(store, &fourth).await;
    let (other, _) = insert(store, &acc, json!({"name": "other"})).await;
    let renamed = edited(&other, |k| k.name = "DEPLOY".into());
    store
        .update_key(&renamed, 1, None, &audit(&renamed, "key.updated"))
        .await
        .unwrap();
    let (dup, hash) = raw_named(&acc, "deploy");
    taken(
        try_insert(store, &dup, &hash).await,
        "the renamed key holds it",
    );
    // And deleting every revoked one leaves that claim alone too.
    for key in [&new, &fourth] {
        store
            .delete_key(&acc, &key.id, None, &audit(key, "key.deleted"))
            .await
            .unwrap();
    }
    let (dup, hash) = raw_named(&acc, "Deploy");
    taken(
        try_insert(store, &dup, &hash).await,
        "the renamed key holds it",
    );
    insert(store, &acc, json!({"name": "other"})).await;
}

/// A revoked key claims nothing: edits that only tidy up (leaving a group) take no name back,
/// and a name freed by a revoke and taken by another key stays that key's.
pub async fn a_revoked_key_never_takes_a_name_back(store: &dyn Store) {
    let acc = account();
    let (key, _) = insert(
        store,
        &acc,
        json!({"name": "tidy", "groups": ["grp_a", "grp_b"]}),
    )
    .await;
    let key = revoke(store, &key).await;
    let (taker, _) = insert(store, &acc, json!({"name": "Tidy"})).await;
    let left = edited(&key, |k| k.groups = vec!["grp_b".into()]);
    store
        .update_key(&left, key.version, None, &audit(&left, "key.updated"))
        .await
        .unwrap();
    assert_eq!(
        store.get_key(&acc, &key.id).await.unwrap(),
        Some(left.clone())
    );
    // The taker still holds the name: renaming it away frees it for a new key.
    let (dup, hash) = raw_named(&acc, "TIDY");
    taken(try_insert(store, &dup, &hash).await, "the taker holds it");
    let moved = edited(&taker, |k| k.name = "elsewhere".into());
    store
        .update_key(&moved, 1, None, &audit(&moved, "key.updated"))
        .await
        .unwrap();
    insert(store, &acc, json!({"name": "TIDY"})).await;
}

/// Keys revoked by a keyward that kept their claims (written and revoked the old way, before
/// and after names were folded) free their names once the adapter's upgrade has run; a revoked
/// one deleted before the upgrade frees its name with the delete; the upgrade never frees a
/// name a live key holds, and is idempotent.
pub async fn keys_revoked_before_the_upgrade_free_their_names<S: LegacyNames>(store: &S) {
    let acc = account();
    let legacy = |name: &str| {
        let (key, hash) = raw_named(&acc, name);
        let entry = audit(&key, "key.created");
        async move {
            store.insert_legacy_key(&key, &hash, &entry).await.unwrap();
            key
        }
    };
    let revoke_old_way = |key: ApiKey| async move {
        let next = revoked(&key);
        store
            .revoke_legacy_key(&next, key.version, &audit(&next, "key.revoked"))
            .await
            .unwrap();
        next
    };
    // Written before names were folded, then revoked: in folded form, and not.
    let old = revoke_old_way(legacy("old-bot").await).await;
    let old_upper = revoke_old_way(legacy("Old-Upper").await).await;
    // Written with a folded claim, then revoked by a keyward that kept it.
    let (mid, _) = insert(store, &acc, json!({"name": "Mid-Bot"})).await;
    let mid = revoke_old_way(mid).await;
    // Revoked the old way and deleted before the upgrade: the delete frees the name.
    let gone = revoke_old_way(legacy("gone-bot").await).await;
    store
        .delete_key(&acc, &gone.id, None, &audit(&gone, "key.deleted"))
        .await
        .unwrap();
    insert(store, &acc, json!({"name": "gone-bot"})).await;
    // A live key's name is never freed by the upgrade.
    legacy("live-bot").await;

    store.upgrade_legacy_names().await.unwrap();
    store.upgrade_legacy_names().await.unwrap();

    for name in ["OLD-BOT", "old-upper", "mid-bot"] {
        insert(store, &acc, json!({ "name": name })).await;
    }
    for name in ["old-bot", "Old-Upper", "Mid-Bot", "GONE-BOT", "Live-Bot"] {
        let (dup, hash) = raw_named(&acc, name);
        taken(try_insert(store, &dup, &hash).await, name);
    }
    for (key, name) in [
        (&old, "old-bot"),
        (&old_upper, "Old-Upper"),
        (&mid, "Mid-Bot"),
    ] {
        let stored = store.get_key(&acc, &key.id).await.unwrap().unwrap();
        assert_eq!(
            (stored.name.as_str(), stored.status),
            (name, KeyStatus::Revoked)
        );
    }
    // Deleting the old revoked keys now leaves the new owners' claims alone.
    for key in [&old, &old_upper, &mid] {
        store
            .delete_key(&acc, &key.id, None, &audit(key, "key.deleted"))
            .await
            .unwrap();
    }
    for name in ["old-bot", "OLD-UPPER", "mid-BOT"] {
        let (dup, hash) = raw_named(&acc, name);
        taken(try_insert(store, &dup, &hash).await, name);
    }
}

/// Runs futures concurrently on the current task (no extra dependency for one helper).
async fn futures_join_all<F: std::future::Future>(
    futs: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futs {
        set.push(Box::pin(f));
    }
    let mut out: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}
