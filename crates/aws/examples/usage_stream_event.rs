//! A test aid for `./scripts/test`, which runs the aggregator under `cargo lambda watch`:
//!
//! - `usage_stream_event write LOCATION KEY_ID VALID`: writes a usage record of `VALID` valid
//!   uses of the key into the table (as an engine's flush does) and prints the DynamoDB Streams
//!   event that delivers its insert, built on the real fixture.
//! - `usage_stream_event expect LOCATION KEY_ID VALID`: exits 0 when the key's usage today is
//!   exactly `VALID` valid uses and no record is left waiting.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test aid: a failed check panics

use chrono::Utc;
use keyward_core::usage::{KeyUse, Outcomes, UsageRecord};
use keyward_store::conformance::local_store;
use keyward_store::dynamodb::items::{USAGE_RECORD_ATTRIBUTE, usage_record_pk, usage_record_sk};
use keyward_store::dynamodb::usage_record;
use keyward_store::{DynamoLocation, UsageStore};
use serde_json::json;

const FIXTURE: &str = include_str!("../../../tests/fixtures/events/example-dynamodb-event.json");

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, command, location, key_id, valid] = args.as_slice() else {
        panic!("usage: usage_stream_event write|expect LOCATION KEY_ID VALID");
    };
    let store = local_store(&DynamoLocation::parse(location).unwrap());
    let valid: u64 = valid.parse().unwrap();
    let account = "default";
    match command.as_str() {
        "write" => {
            let record = UsageRecord {
                id: keyward_core::id::new_id("usage").unwrap(),
                account: account.to_owned(),
                day: Utc::now().date_naive(),
                keys: vec![KeyUse {
                    key_id: key_id.clone(),
                    outcomes: Outcomes {
                        valid,
                        ..Outcomes::default()
                    },
                    last_used_at: Utc::now(),
                    last_used_ip: "192.0.2.1".parse().ok(),
                }],
            };
            store
                .write_usage(std::slice::from_ref(&record))
                .await
                .unwrap();
            let mut event: serde_json::Value = serde_json::from_str(FIXTURE).unwrap();
            let mut r = event["Records"][0].clone();
            let keys = json!({
                "pk": {"S": usage_record_pk(&record.id)},
                "sk": {"S": usage_record_sk(&record.id)},
            });
            let mut image = keys.clone();
            image[USAGE_RECORD_ATTRIBUTE] = json!({"S": usage_record::encode(&record).unwrap()});
            r["dynamodb"]["Keys"] = keys;
            r["dynamodb"]["NewImage"] = image;
            event["Records"] = json!([r]);
            println!("{event}");
        }
        "expect" => {
            let today = Utc::now().date_naive();
            let days = store
                .usage_days(account, Some(key_id), today, today)
                .await
                .unwrap();
            let got = days.first().map_or(0, |d| d.valid);
            let waiting = store.pending_usage(1).await.unwrap().len();
            println!("valid today: {got}; records waiting: {waiting}");
            assert_eq!((got, waiting), (valid, 0));
        }
        other => panic!("unknown command {other}"),
    }
}
