//! The aggregator's edge on the real DynamoDB Streams fixtures, on SQLite and DynamoDB Local:
//! N verifications through the engine and the aggregator give exactly N for the key and day,
//! split by outcome, and the same for the account; a batch delivered twice still counts N; a
//! poisoned record fails alone; the table's other changes are skipped. Records are delivered as
//! the store writes them, and once in the form records had before it (the core's own JSON).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed check panics

use std::sync::Arc;

use aws_lambda_events::dynamodb::Event;
use chrono::Utc;
use keyward_aws::stream;
use keyward_core::decision::{Code, Needs};
use keyward_core::hash::Pepper;
use keyward_core::key::CreateKeyRequest;
use keyward_core::usage::UsageRecord;
use keyward_service::aggregation::Aggregator;
use keyward_service::app::Actor;
use keyward_service::issuance::CreateOutcome;
use keyward_service::usage::DayRange;
use keyward_service::verification::{Explain, Presented, Target};
use keyward_service::{App, Settings};
use keyward_store::conformance::dynamodb_local;
use keyward_store::dynamodb::items::{USAGE_RECORD_ATTRIBUTE, usage_record_pk, usage_record_sk};
use keyward_store::dynamodb::usage_record;
use keyward_store::{SqliteStore, Store};
use serde_json::{Value, json};

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../../tests/fixtures/events/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// How a record's item holds it: as the store writes it now, or as records written before the
/// compact form hold it (the core's own JSON).
#[derive(Clone, Copy)]
enum Form {
    Compact,
    Before,
}

impl Form {
    fn json(self, record: &UsageRecord) -> String {
        match self {
            Self::Compact => usage_record::encode(record).unwrap(),
            Self::Before => serde_json::to_string(record).unwrap(),
        }
    }
}

/// A stream record as DynamoDB writes it for the insert of `record`'s item: the first record of
/// the real fixture, with the keys and new image of a usage record.
fn insert_of(record: &UsageRecord, sequence: u64) -> Value {
    insert_in(Form::Compact, record, sequence)
}

fn insert_in(form: Form, record: &UsageRecord, sequence: u64) -> Value {
    let mut r = fixture("example-dynamodb-event.json")["Records"][0].clone();
    let keys = json!({
        "pk": {"S": usage_record_pk(&record.id)},
        "sk": {"S": usage_record_sk(&record.id)},
    });
    let mut image = keys.clone();
    image[USAGE_RECORD_ATTRIBUTE] = json!({"S": form.json(record)});
    image["ttl"] = json!({"N": "1999999999"});
    r["dynamodb"]["Keys"] = keys;
    r["dynamodb"]["NewImage"] = image;
    r["dynamodb"]["SequenceNumber"] = json!(sequence.to_string());
    r
}

fn batch(records: Vec<Value>) -> Event {
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

fn failures(response: &aws_lambda_events::streams::DynamoDbEventResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone().unwrap())
        .collect()
}

#[tokio::test]
async fn the_real_fixtures_decode_and_hold_no_usage_records() {
    let aggregator = Aggregator::new(Arc::new(SqliteStore::in_memory().unwrap()));
    let single = "example-dynamodb-event-record-with-optional-fields.json";
    for name in [
        "example-dynamodb-event.json",
        "example-dynamodb-event-null-items.json",
        single,
    ] {
        let json = if name == single {
            json!({"Records": [fixture(name)]}) // the fixture is one record
        } else {
            fixture(name)
        };
        let event: Event = serde_json::from_value(json).unwrap();
        assert!(!event.records.is_empty(), "{name}");
        assert!(stream::delivered(&event).is_empty(), "{name}: not ours");
        let response = stream::handle(&aggregator, event).await;
        assert!(failures(&response).is_empty(), "{name}");
    }
}

/// Verifies `n` times with `needs`; answers how many got each code.
async fn verify(app: &App, secret: &str, needs: Needs, n: usize) -> Vec<Code> {
    let presented = Presented {
        token: Some(secret.into()),
        source_ip: "10.9.8.7".parse().ok(),
        target: Target::Stated {
            needs,
            workspace: None,
        },
        ..Presented::default()
    };
    let mut codes = Vec::new();
    for _ in 0..n {
        codes.push(
            app.verifier()
                .decide(&presented, Explain::No)
                .await
                .unwrap()
                .code,
        );
    }
    codes
}

async fn exactly_n_through_the_engine_and_the_aggregator(store: Arc<dyn Store>, form: Form) {
    let app = App::new(
        store.clone(),
        Pepper::generate().unwrap(),
        Settings::default(),
    );
    let account = app.settings().account.clone();
    let actor = Actor::system(&account);
    let req: CreateKeyRequest = serde_json::from_value(json!({
        "name": "metered", "scopes": ["agent:viewer"], "rate_limit_per_minute": 10
    }))
    .unwrap();
    let CreateOutcome::Created(created) = app.create_key(&actor, req, None).await.unwrap() else {
        panic!("created")
    };
    let (id, secret) = (created.key.id.clone(), created.secret.expose().to_owned());
    let read = Needs::Permission(keyward_core::permission::Action::Read, "agents/a".into());
    let write = Needs::Permission(keyward_core::permission::Action::Write, "agents/a".into());
    let mut codes = verify(&app, &secret, read, 14).await;
    codes.extend(verify(&app, &secret, write, 5).await);
    let count = |c: Code| codes.iter().filter(|x| **x == c).count() as u64;
    // The minute may turn during the run: then more than 10 are valid, never more than 20.
    let (valid, limited, denied) = (
        count(Code::Valid),
        count(Code::RateLimited),
        count(Code::PermissionDenied),
    );
    assert_eq!((valid + limited, denied), (14, 5), "{codes:?}");
    assert!((10..=14).contains(&valid), "{codes:?}");

    app.engine().flush_usage().await.unwrap();
    let ours: Vec<UsageRecord> = store
        .pending_usage(100_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.account == account && r.keys.iter().any(|k| k.key_id == id))
        .collect();
    assert!(!ours.is_empty());
    let event = |ours: &[UsageRecord]| {
        batch(
            ours.iter()
                .enumerate()
                .map(|(i, r)| insert_in(form, r, 100 + i as u64))
                .collect(),
        )
    };
    let aggregator = Aggregator::new(store.clone());
    let response = stream::handle(&aggregator, event(&ours)).await;
    assert!(failures(&response).is_empty());
    // The same batch again (a retry after a timeout): nothing counts twice.
    let response = stream::handle(&aggregator, event(&ours)).await;
    assert!(failures(&response).is_empty());

    let today = Utc::now().date_naive();
    let range = DayRange::parse(None, None, today).unwrap();
    let usage = app.key_usage(&actor, &id, range).await.unwrap();
    assert_eq!(usage.request_count, 19, "every verification of the key");
    assert_eq!(
        usage.last_used_ip,
        Some("10.9.8.7".parse().unwrap()),
        "the latest caller"
    );
    let day = |days: &[keyward_core::usage::DayUsage]| {
        let d = days.iter().find(|d| d.date == today).unwrap();
        (d.valid, d.rate_limited, d.denied, d.total)
    };
    assert_eq!(day(&usage.days), (valid, limited, denied, 19));
    let account_usage = app.account_usage(&actor, range).await.unwrap();
    assert_eq!(
        day(&account_usage.days),
        (valid, limited, denied, 19),
        "the account's day matches the key's (its only key)"
    );
}

#[tokio::test]
async fn sqlite_counts_exactly_once() {
    exactly_n_through_the_engine_and_the_aggregator(
        Arc::new(SqliteStore::in_memory().unwrap()),
        Form::Compact,
    )
    .await;
}

#[tokio::test]
async fn dynamodb_counts_exactly_once() {
    exactly_n_through_the_engine_and_the_aggregator(
        Arc::new(dynamodb_local("kw-stream").await),
        Form::Compact,
    )
    .await;
}

/// A record written by an engine from before the compact form, delivered after the upgrade.
#[tokio::test]
async fn dynamodb_counts_a_record_in_the_form_from_before_exactly_once() {
    exactly_n_through_the_engine_and_the_aggregator(
        Arc::new(dynamodb_local("kw-stream-before").await),
        Form::Before,
    )
    .await;
}

#[tokio::test]
async fn a_poisoned_record_fails_alone() {
    let store: Arc<dyn Store> = Arc::new(dynamodb_local("kw-poison").await);
    let record = |account: &str| UsageRecord {
        id: keyward_core::id::new_id("usage").unwrap(),
        account: account.to_owned(),
        day: Utc::now().date_naive(),
        keys: Vec::new(),
    };
    let (good, later) = (record("acc_poison"), record("acc_poison"));
    store
        .write_usage(&[good.clone(), later.clone()])
        .await
        .unwrap();
    let mut poisoned = insert_of(&good, 2);
    poisoned["dynamodb"]["NewImage"][USAGE_RECORD_ATTRIBUTE] = json!({"S": "{not json"});
    let mut unreadable = insert_of(&good, 3);
    unreadable["dynamodb"]["NewImage"][USAGE_RECORD_ATTRIBUTE] = json!({"N": "7"});
    let mut not_a_record = fixture("example-dynamodb-event.json")["Records"][1].clone();
    not_a_record["dynamodb"]["SequenceNumber"] = json!("5");
    let mut removal = insert_of(&later, 6);
    removal["eventName"] = json!("REMOVE");
    let event = batch(vec![
        insert_of(&good, 1),
        poisoned,
        unreadable,
        insert_of(&later, 4),
        not_a_record,
        removal,
    ]);
    let response = stream::handle(&Aggregator::new(store.clone()), event).await;
    assert_eq!(failures(&response), ["2", "3"], "only the poisoned records");
    let pending = store.pending_usage(100_000).await.unwrap();
    assert!(
        !pending.iter().any(|r| r.id == good.id || r.id == later.id),
        "both good records were applied"
    );
}

#[tokio::test]
async fn a_broken_event_is_refused_whole() {
    for broken in [
        json!({"Records": "nope"}),
        json!({"Records": [{"eventName": 7}]}),
        json!([]),
    ] {
        assert!(
            serde_json::from_value::<Event>(broken.clone()).is_err(),
            "{broken}"
        );
    }
}
