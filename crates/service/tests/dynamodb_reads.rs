//! What a verification costs on DynamoDB, counted at the adapter: one `GetItem` for a
//! well-formed token, none for a malformed one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed check panics

use std::sync::Arc;

use keyward_core::decision::Code;
use keyward_core::hash::Pepper;
use keyward_core::key::CreateKeyRequest;
use keyward_core::permission::ScopeInput;
use keyward_core::token::{Prefix, Token};
use keyward_service::app::Actor;
use keyward_service::issuance::CreateOutcome;
use keyward_service::verification::{Explain, Presented};
use keyward_service::{App, Settings};
use keyward_store::conformance::dynamodb_local;

/// A verification of `token` that checks the key alone.
fn key_only(token: &str) -> Presented<'_> {
    Presented {
        token: Some(token.into()),
        ..Presented::default()
    }
}

#[tokio::test]
async fn a_verification_costs_exactly_one_read() {
    let store = dynamodb_local("kw-reads").await;
    let app = App::new(
        Arc::new(store.clone()),
        Pepper::generate().unwrap(),
        Settings::default(),
    );
    let request = CreateKeyRequest {
        name: Some("counted".into()),
        scopes: Some(vec![ScopeInput::from("read")]),
        ..CreateKeyRequest::default()
    };
    let created = app
        .create_key(&Actor::system("default"), request, None)
        .await
        .unwrap();
    let CreateOutcome::Created(created) = created else {
        panic!("a create without Idempotency-Key creates")
    };
    let secret = created.secret.expose().to_owned();

    let before = store.calls();
    let verdict = app
        .verifier()
        .decide(&key_only(&secret), Explain::No)
        .await
        .unwrap();
    assert_eq!(verdict.code, Code::Valid);
    let after = store.calls();
    assert_eq!(
        (
            after.reads() - before.reads(),
            after.get_item - before.get_item
        ),
        (1, 1)
    );
    assert_eq!(
        (
            after.writes() - before.writes(),
            after.update_item - before.update_item
        ),
        (1, 1),
        "the first valid verification of a key in a minute leases a block of its rate limit: \
         one conditional UpdateItem"
    );
    let before = store.calls();
    let again = app
        .verifier()
        .decide(&key_only(&secret), Explain::No)
        .await
        .unwrap();
    assert_eq!(again.code, Code::Valid);
    assert_eq!(
        store.calls(),
        before,
        "the next verification is served by the cache and the lease: no read, no write"
    );
    let after = store.calls();

    let unknown = Token::generate(&Prefix::live()).unwrap();
    let verdict = app
        .verifier()
        .decide(&key_only(unknown.expose()), Explain::No)
        .await
        .unwrap();
    assert_eq!(verdict.code, Code::NotFound);
    assert_eq!(
        store.calls().reads() - after.reads(),
        1,
        "an unknown token is one read"
    );

    let before = store.calls();
    let mut typo = secret.clone();
    typo.replace_range(10..11, if &secret[10..11] == "a" { "b" } else { "a" });
    let verdict = app
        .verifier()
        .decide(&key_only(&typo), Explain::No)
        .await
        .unwrap();
    assert_eq!(verdict.code, Code::NotFound);
    assert_eq!(
        store.calls(),
        before,
        "a bad checksum never reaches the store"
    );
}
