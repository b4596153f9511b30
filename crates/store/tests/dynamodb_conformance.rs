//! The conformance suite on the DynamoDB adapter against DynamoDB Local (the AWS engine),
//! plus what only this adapter must prove: no orphan items after a race, one read per lookup.
//!
//! `./scripts/test` starts DynamoDB Local and sets `KEYWARD_TEST_DYNAMODB_ENDPOINT`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed check panics

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use keyward_core::audit::AuditEntry;
use keyward_core::key::ApiKey;
use keyward_core::usage::{Applied, KeyUse, Outcomes, UsageRecord};
use keyward_store::conformance::{audit, dynamodb_local, insert, local_store, sample_key};
use keyward_store::dynamodb::InitOutcome;
use keyward_store::{DynamoLocation, DynamoStore, KeyQuery, KeyStore, StoreError, UsageStore};
use serde_json::json;

/// A store on a fresh table of its own.
async fn store() -> DynamoStore {
    dynamodb_local("kw-test").await
}

keyward_store::conformance_tests!(store());

/// Every item of the table by kind of sort key (a test-only scan).
async fn census(store: &DynamoStore) -> BTreeMap<String, usize> {
    let out = store
        .client()
        .scan()
        .table_name(store.table())
        .send()
        .await
        .unwrap();
    let mut counts = BTreeMap::new();
    for item in out.items.unwrap_or_default() {
        let kind = match (item.get("pk"), item.get("sk")) {
            (Some(AttributeValue::S(pk)), _) if pk.starts_with("HASH#") => "hash",
            (Some(AttributeValue::S(pk)), _) if pk == "CHANGES" => "change",
            (_, Some(AttributeValue::S(sk))) if sk.starts_with("KEY#") => "key",
            (_, Some(AttributeValue::S(sk))) if sk.starts_with("NAME#") => "name",
            (_, Some(AttributeValue::S(sk))) if sk.starts_with("WS#") => "member",
            (_, Some(AttributeValue::S(sk))) if sk == "TOTAL" => "usage total",
            (Some(AttributeValue::S(pk)), _) if pk.ends_with("#AUDIT") => "audit",
            _ => "other",
        };
        *counts.entry(kind.to_owned()).or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_creates_leave_one_key_and_no_orphans() {
    let store = store().await;
    let attempts: Vec<_> = (0..20)
        .map(|_| sample_key("acc_race", json!({"name": "same", "workspaces": ["ws_1"]})))
        .collect();
    let mut tasks = Vec::new();
    for (key, hash) in attempts {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let audit = AuditEntry::new(
                "acc_race",
                "t",
                "key.created",
                Some(&key.id),
                None,
                json!({}),
                Utc::now(),
            )
            .unwrap();
            store.insert_key(&key, &hash, &audit, None).await
        }));
    }
    let mut won = 0;
    let mut taken = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => won += 1,
            Err(StoreError::NameTaken(_)) => taken += 1,
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    assert_eq!((won, taken), (1, 19));
    let counts = census(&store).await;
    let expect: BTreeMap<String, usize> = [
        ("audit", 1),
        ("hash", 1),
        ("key", 1),
        ("member", 1),
        ("name", 1),
        ("usage total", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(counts, expect, "exactly one of each item, no orphans");
}

#[tokio::test]
async fn a_lookup_by_hash_is_exactly_one_get_item() {
    let store = store().await;
    let (key, hash) = sample_key("acc_reads", json!({"name": "counted"}));
    let audit = AuditEntry::new(
        "acc_reads",
        "t",
        "key.created",
        Some(&key.id),
        None,
        json!({}),
        Utc::now(),
    )
    .unwrap();
    store.insert_key(&key, &hash, &audit, None).await.unwrap();
    let before = store.calls();
    assert_eq!(
        store.find_key_by_hash(&hash).await.unwrap().unwrap().key.id,
        key.id
    );
    let after = store.calls();
    assert_eq!(after.get_item - before.get_item, 1);
    assert_eq!(after.reads() - before.reads(), 1);
    assert_eq!(after.writes(), before.writes());
}

#[tokio::test]
async fn deleting_and_renaming_leave_no_stale_items() {
    let store = store().await;
    let (key, hash) = sample_key(
        "acc_tidy",
        json!({"name": "tidy", "workspaces": ["a", "b"]}),
    );
    let audit = |action: &str| {
        AuditEntry::new(
            "acc_tidy",
            "t",
            action,
            Some(&key.id),
            None,
            json!({}),
            Utc::now(),
        )
        .unwrap()
    };
    store
        .insert_key(&key, &hash, &audit("key.created"), None)
        .await
        .unwrap();
    let mut next = key.clone();
    next.name = "tidier".into();
    next.workspaces = vec!["b".into(), "c".into()];
    next.version = 2;
    store
        .update_key(&next, 1, None, &audit("key.updated"))
        .await
        .unwrap();
    let counts = census(&store).await;
    assert_eq!((counts["name"], counts["member"]), (1, 2), "{counts:?}");
    store
        .delete_key("acc_tidy", &key.id, Some(2), &audit("key.deleted"))
        .await
        .unwrap();
    let counts = census(&store).await;
    assert_eq!(
        counts.keys().collect::<Vec<_>>(),
        ["audit", "change"],
        "{counts:?}"
    );
    assert_eq!(
        counts["change"], 2,
        "the rename and the delete are in the change feed"
    );
}

/// One use of `key` at `at` from 10.0.0.`host`, in a record of its own.
fn record_of(key: &ApiKey, at: chrono::DateTime<Utc>, host: u8) -> UsageRecord {
    UsageRecord {
        id: keyward_core::id::new_id("usage").unwrap(),
        account: key.account.clone(),
        day: at.date_naive(),
        keys: vec![KeyUse {
            key_id: key.id.clone(),
            outcomes: Outcomes {
                valid: 1,
                rate_limited: 0,
                denied: 0,
            },
            last_used_at: at,
            last_used_ip: Some(std::net::IpAddr::from([10, 0, 0, host])),
        }],
    }
}

async fn apply(store: &DynamoStore, record: &UsageRecord) {
    store
        .write_usage(std::slice::from_ref(record))
        .await
        .unwrap();
    assert_eq!(store.apply_usage(record).await.unwrap(), Applied::Now);
}

/// A key item's attribute, as DynamoDB holds it.
async fn attribute(store: &DynamoStore, pk: &str, sk: &str, name: &str) -> Option<AttributeValue> {
    let out = store
        .client()
        .get_item()
        .table_name(store.table())
        .key("pk", AttributeValue::S(pk.into()))
        .key("sk", AttributeValue::S(sk.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    out.item.and_then(|mut i| i.remove(name))
}

#[tokio::test]
async fn a_roll_up_writes_a_small_item_never_the_key_record() {
    let store = store().await;
    let (key, _) = insert(&store, "acc_small", json!({"name": "used"})).await;
    let record_pk = "ACC#acc_small";
    let record_sk = format!("KEY#{}", key.id);
    let before = attribute(&store, record_pk, &record_sk, "request_count").await;
    let now = Utc::now();
    apply(&store, &record_of(&key, now, 1)).await;
    apply(
        &store,
        &record_of(&key, now - chrono::Duration::seconds(5), 2),
    )
    .await;
    assert_eq!(
        attribute(&store, record_pk, &record_sk, "request_count").await,
        before,
        "the key record is not rewritten by usage"
    );
    let stored = store.get_key("acc_small", &key.id).await.unwrap().unwrap();
    assert_eq!(stored.request_count, 2);
    assert_eq!(
        stored.last_used_ip,
        Some([10, 0, 0, 1].into()),
        "the later use wins"
    );
    let listed = store
        .list_keys("acc_small", &KeyQuery::all(Utc::now()))
        .await
        .unwrap();
    assert_eq!(listed.items, [stored], "a listing reads the same figures");
}

/// `valid` uses of `key` on `day`, at noon, in a record of their own.
fn uses_on(key: &ApiKey, day: chrono::NaiveDate, valid: u64) -> UsageRecord {
    let at = day.and_hms_opt(12, 0, 0).unwrap().and_utc();
    let mut record = record_of(key, at, 1);
    record.keys[0].outcomes.valid = valid;
    record
}

/// The sort keys of a key's usage partition: its figures item and its own day items.
async fn usage_items(store: &DynamoStore, key: &ApiKey) -> Vec<String> {
    let out = store
        .client()
        .query()
        .table_name(store.table())
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            AttributeValue::S(format!("ACC#{}#USAGE#{}", key.account, key.id)),
        )
        .send()
        .await
        .unwrap();
    out.items
        .unwrap_or_default()
        .iter()
        .map(|i| match i.get("sk") {
            Some(AttributeValue::S(sk)) => sk.clone(),
            other => panic!("{other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn a_key_holds_its_two_latest_days_and_older_ones_go_to_items_of_their_own() {
    let store = store().await;
    let key = insert(&store, "acc_days", json!({"name": "daily"})).await.0;
    let today = Utc::now().date_naive();
    let day = |back: i64| today - chrono::Duration::days(back);
    // Three days in order, then a late record of a day before them, then more of the held days.
    for (back, valid) in [
        (3, 1),
        (2, 10),
        (1, 100),
        (4, 1_000),
        (2, 10_000),
        (1, 100_000),
    ] {
        apply(&store, &uses_on(&key, day(back), valid)).await;
    }
    assert_eq!(
        usage_items(&store, &key).await,
        [
            format!("DAY#{}", day(4)),
            format!("DAY#{}", day(3)),
            "TOTAL".to_owned()
        ],
        "the oldest held day moved out, the late one went to its own item, two days are held"
    );
    let days = store
        .usage_days("acc_days", Some(&key.id), day(10), today)
        .await
        .unwrap();
    let valid: Vec<_> = days.iter().map(|d| (d.date, d.valid)).collect();
    assert_eq!(
        valid,
        [
            (day(4), 1_000),
            (day(3), 1),
            (day(2), 10_010),
            (day(1), 100_100)
        ]
    );
    let narrower = store
        .usage_days("acc_days", Some(&key.id), day(2), day(2))
        .await
        .unwrap();
    assert_eq!(
        narrower
            .iter()
            .map(|d| (d.date, d.valid))
            .collect::<Vec<_>>(),
        [(day(2), 10_010)]
    );
    let stored = store.get_key("acc_days", &key.id).await.unwrap().unwrap();
    assert_eq!(stored.request_count, 111_111);
    let account = store
        .usage_days("acc_days", None, day(10), today)
        .await
        .unwrap();
    assert_eq!(account.iter().map(|d| d.valid).sum::<u64>(), 111_111);
}

#[tokio::test]
async fn a_full_record_on_a_third_day_moves_every_key_out_at_once_and_skips_a_gone_key() {
    let store = store().await;
    let mut keys = Vec::new();
    for i in 0..keyward_core::usage::MAX_KEYS_PER_RECORD {
        keys.push(
            insert(&store, "acc_third", json!({"name": format!("k{i}")}))
                .await
                .0,
        );
    }
    let today = Utc::now().date_naive();
    let record_on = |back: i64, valid: u64| {
        let day = today - chrono::Duration::days(back);
        let mut record = uses_on(&keys[0], day, valid);
        record.keys = keys
            .iter()
            .map(|k| {
                let mut u = record.keys[0].clone();
                u.key_id = k.id.clone();
                u
            })
            .collect();
        record
    };
    apply(&store, &record_on(2, 1)).await;
    apply(&store, &record_on(1, 10)).await;
    let gone = &keys[7];
    store
        .delete_key("acc_third", &gone.id, None, &audit(gone, "key.deleted"))
        .await
        .unwrap();
    let before = store.calls();
    apply(&store, &record_on(0, 100)).await;
    let after = store.calls();
    assert_eq!(
        (
            after.batch_get_item - before.batch_get_item,
            after.get_item - before.get_item
        ),
        (1, 0),
        "the keys that failed are read again together, once"
    );
    for k in keys.iter().filter(|k| k.id != gone.id) {
        let days = store
            .usage_days(
                "acc_third",
                Some(&k.id),
                today - chrono::Duration::days(5),
                today,
            )
            .await
            .unwrap();
        assert_eq!(
            days.iter().map(|d| d.valid).collect::<Vec<_>>(),
            [1, 10, 100]
        );
        assert_eq!(
            usage_items(&store, k).await,
            [
                format!("DAY#{}", today - chrono::Duration::days(2)),
                "TOTAL".to_owned()
            ]
        );
    }
    assert!(
        usage_items(&store, gone).await.is_empty(),
        "a gone key's figures went with it, and do not come back"
    );
    let account = store
        .usage_days("acc_third", None, today - chrono::Duration::days(5), today)
        .await
        .unwrap();
    assert_eq!(account.iter().map(|d| d.valid).sum::<u64>(), 111 * 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_roll_ups_across_days_lose_and_double_nothing() {
    let store = store().await;
    let key = insert(&store, "acc_race_days", json!({"name": "busy"}))
        .await
        .0;
    let today = Utc::now().date_naive();
    let records: Vec<UsageRecord> = (0..32u32)
        .map(|i| {
            uses_on(
                &key,
                today - chrono::Duration::days(i64::from(i % 4)),
                u64::from(1 + i),
            )
        })
        .collect();
    store.write_usage(&records).await.unwrap();
    let mut tasks = Vec::new();
    for chunk in records.chunks(4) {
        let (store, chunk) = (store.clone(), chunk.to_vec());
        tasks.push(tokio::spawn(async move {
            for r in &chunk {
                assert_eq!(store.apply_usage(r).await.unwrap(), Applied::Now);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let days = store
        .usage_days(
            "acc_race_days",
            Some(&key.id),
            today - chrono::Duration::days(5),
            today,
        )
        .await
        .unwrap();
    for back in 0..4u32 {
        let date = today - chrono::Duration::days(i64::from(back));
        let want: u64 = (0..32u32)
            .filter(|i| i % 4 == back)
            .map(|i| u64::from(1 + i))
            .sum();
        let got = days.iter().find(|d| d.date == date).map(|d| d.valid);
        assert_eq!(got, Some(want), "{date}");
    }
    let stored = store
        .get_key("acc_race_days", &key.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.request_count, (1..=32).sum::<u64>());
}

#[tokio::test]
async fn a_key_whose_figures_are_in_its_record_adopts_an_item_on_first_use() {
    let store = store().await;
    let (key, _) = insert(&store, "acc_old", json!({"name": "old"})).await;
    // As an older keyward left it: the figures in the record, no item of their own.
    let earlier = Utc::now() - chrono::Duration::hours(1);
    let usage_pk = format!("ACC#acc_old#USAGE#{}", key.id);
    store
        .client()
        .delete_item()
        .table_name(store.table())
        .key("pk", AttributeValue::S(usage_pk.clone()))
        .key("sk", AttributeValue::S("TOTAL".into()))
        .send()
        .await
        .unwrap();
    store
        .client()
        .update_item()
        .table_name(store.table())
        .key("pk", AttributeValue::S("ACC#acc_old".into()))
        .key("sk", AttributeValue::S(format!("KEY#{}", key.id)))
        .update_expression(
            "SET request_count = :n, last_used_at = :at, last_used_ip = :ip, last_used_ms = :ms",
        )
        .expression_attribute_values(":n", AttributeValue::N("40".into()))
        .expression_attribute_values(":at", serde_dynamo::to_attribute_value(earlier).unwrap())
        .expression_attribute_values(":ip", AttributeValue::S("10.9.9.9".into()))
        .expression_attribute_values(
            ":ms",
            AttributeValue::N(earlier.timestamp_millis().to_string()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        store
            .get_key("acc_old", &key.id)
            .await
            .unwrap()
            .unwrap()
            .request_count,
        40
    );

    let now = Utc::now();
    apply(&store, &record_of(&key, now, 1)).await;
    apply(&store, &record_of(&key, now, 2)).await;
    let stored = store.get_key("acc_old", &key.id).await.unwrap().unwrap();
    assert_eq!(
        stored.request_count, 42,
        "the record's figures and the new item's add up"
    );
    assert_eq!(
        stored.last_used_at.map(|t| t.timestamp_millis()),
        Some(now.timestamp_millis())
    );
    assert_eq!(
        attribute(&store, &usage_pk, "TOTAL", "request_count").await,
        Some(AttributeValue::N("2".into())),
        "the uses since went to the item it adopted"
    );

    // Deleted, its figures go with it, and a late record counts for the account only.
    store
        .delete_key("acc_old", &key.id, None, &audit(&key, "key.deleted"))
        .await
        .unwrap();
    apply(&store, &record_of(&key, now, 3)).await;
    let counts = census(&store).await;
    assert!(!counts.contains_key("usage total"), "{counts:?}");
    let day = now.date_naive();
    let account_days = store.usage_days("acc_old", None, day, day).await.unwrap();
    assert_eq!(account_days.iter().map(|d| d.total).sum::<u64>(), 3);
}

#[tokio::test]
async fn init_is_idempotent_and_refuses_a_foreign_table() {
    let store = store().await;
    assert_eq!(store.init().await.unwrap(), InitOutcome::AlreadyExisted);
    let ttl = store
        .client()
        .describe_time_to_live()
        .table_name(store.table())
        .send()
        .await
        .unwrap();
    let desc = ttl.time_to_live_description().unwrap();
    assert_eq!(desc.attribute_name(), Some("ttl"));
    let table = store
        .client()
        .describe_table()
        .table_name(store.table())
        .send()
        .await
        .unwrap();
    let t = table.table().unwrap();
    assert_eq!(
        t.stream_specification().map(|s| s.stream_enabled()),
        Some(true)
    );
    assert_eq!(
        t.billing_mode_summary()
            .and_then(|b| b.billing_mode())
            .map(|m| m.as_str()),
        Some("PAY_PER_REQUEST")
    );

    // A table with some other schema is not silently used.
    use aws_sdk_dynamodb::types::*;
    let foreign = format!("foreign-{}", keyward_core::id::new_id("t").unwrap());
    store
        .client()
        .create_table()
        .table_name(&foreign)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let other = DynamoStore::new(store.client().clone(), &foreign);
    let err = other.init().await.unwrap_err();
    assert!(err.to_string().contains("not a keyward table"), "{err}");
}

#[tokio::test]
async fn an_unreachable_endpoint_is_unavailable_not_a_panic() {
    let location = DynamoLocation::parse("dynamodb://nowhere?endpoint=http://127.0.0.1:9").unwrap();
    let store = local_store(&location);
    let (_, hash) = sample_key("acc", json!({"name": "x"}));
    let err = store.find_key_by_hash(&hash).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Unavailable(_)),
        "a store that cannot be reached may answer later: {err:?}"
    );
}

/// The sort keys of every name claim (keys' and groups') in the table.
async fn claims(store: &DynamoStore) -> Vec<String> {
    let out = store
        .client()
        .scan()
        .table_name(store.table())
        .send()
        .await
        .unwrap();
    let mut sks: Vec<String> = out
        .items
        .unwrap_or_default()
        .into_iter()
        .filter_map(|i| match i.get("sk") {
            Some(AttributeValue::S(sk)) if sk.starts_with("NAME#") || sk.starts_with("GNAME#") => {
                Some(sk.clone())
            }
            _ => None,
        })
        .collect();
    sks.sort();
    sks
}

/// What only the item layout shows of a table written before names were folded: which claim
/// items exist. Renames and deletes release the raw claim an old record holds (no orphan), and
/// `upgrade_names` moves raw claims to folded ones, keeping a look-alike's raw claim.
#[tokio::test]
async fn old_raw_claims_are_moved_or_released_never_orphaned() {
    use keyward_core::group::{CreateGroupRequest, Group};
    use keyward_store::conformance::LegacyNames;
    use keyward_store::dynamodb::NameUpgrade;
    use keyward_store::prelude::*;

    let store = store().await;
    let acc = "acc_old";
    let entry =
        |id: &str| AuditEntry::new(acc, "t", "x", Some(id), None, json!({}), Utc::now()).unwrap();
    let legacy = |name: &str| {
        let (mut key, hash) = sample_key(acc, json!({"name": "placeholder"}));
        key.name = name.to_owned();
        (key, hash)
    };
    let (upper, h1) = legacy("CI");
    let (lower, h2) = legacy("ci");
    let (gone, h3) = legacy("Gone");
    let (moved, h4) = legacy("Moved");
    for (key, hash) in [(&upper, &h1), (&lower, &h2), (&gone, &h3), (&moved, &h4)] {
        store
            .insert_legacy_key(key, hash, &entry(&key.id))
            .await
            .unwrap();
    }
    let ops: Group = CreateGroupRequest {
        name: Some("Ops".into()),
        description: None,
    }
    .into_group(acc, "t", Utc::now())
    .unwrap()
    .unwrap();
    store
        .insert_legacy_group(&ops, &entry(&ops.id))
        .await
        .unwrap();
    assert_eq!(
        claims(&store).await,
        ["GNAME#Ops", "NAME#CI", "NAME#Gone", "NAME#Moved", "NAME#ci"]
    );

    // Before any upgrade: an old name already in folded form is its folded claim.
    let (dup, hash) = sample_key(acc, json!({"name": "CI"}));
    assert!(matches!(
        store.insert_key(&dup, &hash, &entry(&dup.id), None).await,
        Err(StoreError::NameTaken(_))
    ));
    // A delete and a rename of old records release their raw claims.
    store
        .delete_key(acc, &gone.id, None, &entry(&gone.id))
        .await
        .unwrap();
    let mut next = moved.clone();
    next.name = "Moved-Again".into();
    next.version = 2;
    store
        .update_key(&next, 1, None, &entry(&moved.id))
        .await
        .unwrap();
    assert_eq!(
        claims(&store).await,
        ["GNAME#Ops", "NAME#CI", "NAME#ci", "NAME#moved-again"]
    );

    // The upgrade folds what it can, keeps the look-alike's raw claim, and is idempotent.
    assert_eq!(
        store.upgrade_names().await.unwrap(),
        NameUpgrade {
            folded: 2,
            kept: 1,
            released: 0
        }
    );
    assert_eq!(
        claims(&store).await,
        ["GNAME#ops", "NAME#CI", "NAME#ci", "NAME#moved-again"]
    );
    assert_eq!(
        store.upgrade_names().await.unwrap(),
        NameUpgrade {
            folded: 0,
            kept: 1,
            released: 0
        }
    );
    // The kept record goes on working, and its first rename claims a folded name.
    assert_eq!(
        store.get_key(acc, &upper.id).await.unwrap(),
        Some(upper.clone())
    );
    let mut next = upper.clone();
    next.name = "ci-upper".into();
    next.version = 2;
    store
        .update_key(&next, 1, None, &entry(&upper.id))
        .await
        .unwrap();
    store
        .delete_group(acc, &ops.id, &entry(&ops.id))
        .await
        .unwrap();
    assert_eq!(
        claims(&store).await,
        ["NAME#ci", "NAME#ci-upper", "NAME#moved-again"]
    );
    assert_eq!(
        store.upgrade_names().await.unwrap(),
        NameUpgrade::default(),
        "nothing left to fold"
    );
}

/// What only the item layout shows of revocation: a revoke deletes the key's claim item in its
/// transaction; claims that keys revoked by an older keyward still hold are released by
/// `upgrade_names` (idempotently), never a claim a new key has taken since.
#[tokio::test]
async fn revokes_release_claims_and_the_upgrade_releases_old_ones() {
    use keyward_core::key::KeyStatus;
    use keyward_store::conformance::LegacyNames;
    use keyward_store::dynamodb::NameUpgrade;

    let store = store().await;
    let acc = "acc_revoked";
    let entry =
        |id: &str| AuditEntry::new(acc, "t", "x", Some(id), None, json!({}), Utc::now()).unwrap();
    let named = |name: &str| {
        let (mut key, hash) = sample_key(acc, json!({"name": "placeholder"}));
        key.name = name.to_owned();
        (key, hash)
    };
    let revoked = |key: &keyward_core::key::ApiKey| {
        let mut next = key.clone();
        next.status = KeyStatus::Revoked;
        next.version += 1;
        next
    };
    // Revoked now: the claim goes in the revoke's transaction.
    let (now, h) = named("Now");
    store
        .insert_key(&now, &h, &entry(&now.id), None)
        .await
        .unwrap();
    assert_eq!(claims(&store).await, ["NAME#now"]);
    store
        .update_key(&revoked(&now), 1, None, &entry(&now.id))
        .await
        .unwrap();
    assert!(claims(&store).await.is_empty());
    // Revoked the old way: before names were folded (raw claim), and after (folded claim).
    let (raw, h) = named("Raw");
    store
        .insert_legacy_key(&raw, &h, &entry(&raw.id))
        .await
        .unwrap();
    store
        .revoke_legacy_key(&revoked(&raw), 1, &entry(&raw.id))
        .await
        .unwrap();
    let (folded, h) = named("Folded");
    store
        .insert_key(&folded, &h, &entry(&folded.id), None)
        .await
        .unwrap();
    store
        .revoke_legacy_key(&revoked(&folded), 1, &entry(&folded.id))
        .await
        .unwrap();
    let (live, h) = named("Live");
    store
        .insert_key(&live, &h, &entry(&live.id), None)
        .await
        .unwrap();
    assert_eq!(
        claims(&store).await,
        ["NAME#Raw", "NAME#folded", "NAME#live"]
    );
    let upgrade = store.upgrade_names().await.unwrap();
    assert_eq!(
        upgrade,
        NameUpgrade {
            folded: 0,
            kept: 0,
            released: 2
        }
    );
    assert_eq!(claims(&store).await, ["NAME#live"]);
    assert_eq!(store.upgrade_names().await.unwrap(), NameUpgrade::default());
    // The revoked records are untouched: no claim comes back, and their names stay.
    assert_eq!(
        store.get_key(acc, &raw.id).await.unwrap().unwrap().name,
        "Raw"
    );
    // A new key takes the freed name; deleting the revoked one leaves its claim.
    let (again, h) = named("now");
    store
        .insert_key(&again, &h, &entry(&again.id), None)
        .await
        .unwrap();
    store
        .delete_key(acc, &now.id, None, &entry(&now.id))
        .await
        .unwrap();
    assert_eq!(claims(&store).await, ["NAME#live", "NAME#now"]);
    assert_eq!(store.upgrade_names().await.unwrap(), NameUpgrade::default());
}
