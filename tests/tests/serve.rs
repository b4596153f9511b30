//! `keyward serve` as an operator meets it: a fresh data directory, the root key printed once,
//! keys created, verified, revoked and deleted over HTTP, a restart, and no secret left behind.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed check panics

use std::os::unix::fs::PermissionsExt;

use keyward_core::token::{Prefix, Token};
use keyward_e2e::{Backend, Server, contains_bytes, read_tree};
use serde_json::json;

/// Every attribute of every item of the backend's table, as text (a test-only scan), or
/// nothing for SQLite, whose whole data directory is read instead.
fn table_dump(backend: &Backend) -> String {
    let Backend::DynamoDb { location, .. } = backend else {
        return String::new();
    };
    let location = keyward_store::DynamoLocation::parse(location).unwrap();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = keyward_store::conformance::local_store(&location);
        let out = store
            .client()
            .scan()
            .table_name(store.table())
            .send()
            .await
            .unwrap();
        let items = out.items.unwrap_or_default();
        assert!(!items.is_empty(), "the table holds the keys");
        format!("{items:?}")
    })
}

keyward_e2e::on_both_stores!(
    keys_live_through_create_verify_revoke_delete_and_restart,
    invalid_create_bodies_are_refused_by_field_and_change_nothing,
    listing_filters_and_pages,
    concurrent_creates_with_one_name_admit_exactly_one,
);

/// The same token with one random character changed (its checksum no longer matches).
fn one_char_changed(token: &str) -> String {
    let mut bytes = token.as_bytes().to_vec();
    let i = "kw_live_".len() + 3;
    bytes[i] = if bytes[i] == b'Q' { b'R' } else { b'Q' };
    String::from_utf8(bytes).unwrap()
}

fn keys_live_through_create_verify_revoke_delete_and_restart(backend: &Backend) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let log = tmp.path().join("serve.log");
    let args = backend.serve_args();

    // First start: bootstrap prints a root key in the documented format.
    let server = Server::start(&data, &log, &args);
    let root = server.root_key().expect("first start prints the root key");
    Token::parse_for(&root, &Prefix::live()).expect("root key has the documented format");
    let client = server.client();
    let admin = client.with_key(&root);

    let (kept_id, kept) = admin.create_key(&json!({"name": "kept", "scopes": ["agent:editor"]}));
    let (revoked_id, revoked) = admin.create_key(&json!({"name": "to-revoke", "scopes": ["read"]}));
    let (deleted_id, deleted) = admin.create_key(&json!({"name": "to-delete", "scopes": ["read"]}));
    for secret in [&kept, &revoked, &deleted] {
        assert!(secret.starts_with("kw_live_") && secret.len() == "kw_live_".len() + 38);
        let t = Token::parse_for(secret, &Prefix::live()).expect("valid checksum");
        assert_eq!(t.expose(), secret.as_str());
    }

    let ok = client.verify(&kept, json!({"action": "write", "resource": "agents/ag_1"}));
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(
        (ok.json()["valid"].as_bool(), ok.json()["code"].as_str()),
        (Some(true), Some("VALID"))
    );
    assert_eq!(ok.json()["key_id"], kept_id.as_str());

    let changed = client.verify(&one_char_changed(&kept), json!({}));
    assert_eq!(
        (changed.status, changed.json()["code"].as_str()),
        (401, Some("NOT_FOUND"))
    );
    let unknown = Token::generate(&Prefix::live()).unwrap();
    let r = client.verify(unknown.expose(), json!({}));
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (401, Some("NOT_FOUND"))
    );
    let r = client.post("/v1/verify", &json!({}));
    assert_eq!(r.status, 401, "a missing key is unknown");

    // Restart: keys survive, and no new root key is printed.
    let first = server.stop();
    let server = Server::start(&data, &log, &args);
    assert_eq!(
        server.root_key(),
        None,
        "restart printed a root key: {:?}",
        server.stdout
    );
    assert!(!server.stdout.iter().any(|l| l.contains("kw_live_")));
    let client = server.client();
    let admin = client.with_key(&root);
    assert_eq!(
        client.verify(&kept, json!({})).status,
        200,
        "a key survives a restart"
    );
    assert_eq!(client.verify(&revoked, json!({})).status, 200);

    let r = admin.post(&format!("/v1/keys/{revoked_id}/revoke"), &json!({}));
    assert_eq!(
        (r.status, r.json()["status"].as_str()),
        (200, Some("revoked")),
        "{}",
        r.text
    );
    let r = client.verify(&revoked, json!({}));
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (401, Some("REVOKED"))
    );

    assert_eq!(admin.delete(&format!("/v1/keys/{deleted_id}")).status, 204);
    let r = client.verify(&deleted, json!({}));
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (401, Some("NOT_FOUND"))
    );
    assert_eq!(admin.get(&format!("/v1/keys/{deleted_id}")).status, 404);

    // No response after creation holds a secret.
    let mut later_responses = vec![
        admin.get("/v1/keys?status=all").text,
        admin.get(&format!("/v1/keys/{kept_id}")).text,
        admin.get(&format!("/v1/keys/{revoked_id}")).text,
        client.verify(&kept, json!({})).text,
    ];
    later_responses.push(
        admin
            .post(&format!("/v1/keys/{revoked_id}/revoke"), &json!({}))
            .text,
    );
    let second = server.stop();

    let dump = table_dump(backend);
    let secrets = [&root, &kept, &revoked, &deleted];
    for secret in secrets {
        // The random part alone must not appear either (it is what makes the secret).
        let random = &secret["kw_live_".len().."kw_live_".len() + 32];
        for text in &later_responses {
            assert!(
                !text.contains(random),
                "a response after creation holds a secret: {text}"
            );
        }
        for (path, bytes) in read_tree(&data) {
            assert!(
                !contains_bytes(&bytes, random.as_bytes()),
                "{} holds a secret",
                path.display()
            );
        }
        assert!(!dump.contains(random), "the table holds a secret");
        assert!(!first.log.contains(random), "the log holds a secret");
        assert!(!second.log.contains(random), "the log holds a secret");
    }
    assert!(
        first.log.contains("key created"),
        "the log is the server's debug log"
    );
}

fn invalid_create_bodies_are_refused_by_field_and_change_nothing(backend: &Backend) {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(
        &tmp.path().join("d"),
        &tmp.path().join("log"),
        &backend.serve_args(),
    );
    let admin = server.client().with_key(&server.root_key().unwrap());
    let before = admin.get("/v1/keys?status=all").json()["items"]
        .as_array()
        .unwrap()
        .len();

    let past = "2001-01-01T00:00:00Z";
    let cases = [
        (json!({"scopes": ["read"]}), "name"),
        (json!({"name": "x"}), "scopes"),
        (json!({"name": "x", "scopes": []}), "scopes"),
        (
            json!({"name": "x", "scopes": ["read"], "expires_at": past}),
            "expires_at",
        ),
        (
            json!({"name": "x", "scopes": ["read"], "rate_limit_per_minute": 0}),
            "rate_limit_per_minute",
        ),
        (
            json!({"name": "x", "scopes": ["read"], "rate_limit_per_minute": 601}),
            "rate_limit_per_minute",
        ),
        (
            json!({"name": "x", "scopes": ["read"], "allowed_cidrs": ["10.0.0.0/33"]}),
            "allowed_cidrs[0]",
        ),
        (
            json!({"name": "x", "scopes": ["namespace:viewer"]}),
            "scopes[0]",
        ),
        (json!({"name": 7, "scopes": ["read"]}), "name"),
        (json!({"name": "x", "scopes": "read"}), "scopes"),
        (
            json!({"name": "x", "scopes": ["read"], "rate_limit_per_minute": "60"}),
            "rate_limit_per_minute",
        ),
        (
            json!({"name": "x", "scopes": ["read"], "surprise": true}),
            "surprise",
        ),
    ];
    for (body, field) in cases {
        let r = admin.post("/v1/keys", &body);
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        assert_eq!(r.problem_fields(), [field], "{body}");
        let p = r.json();
        assert_eq!(p["status"], 400);
        assert!(p["type"].is_string() && p["title"].is_string() && p["detail"].is_string());
    }
    let r = admin.post(
        "/v1/keys",
        &json!({"name": "x", "scopes": ["namespace:viewer"]}),
    );
    assert!(r.text.contains("valid roles: admin"), "{}", r.text);

    for malformed in [
        "{",
        "{\"name\": \"x\",}",
        "",
        "null",
        "[]",
        "{\"name\": \"x\"} {}",
    ] {
        let r = admin.post_raw("/v1/keys", malformed);
        assert_eq!(r.status, 400, "{malformed:?}: {}", r.text);
        assert_eq!(r.content_type, "application/problem+json");
    }
    let after = admin.get("/v1/keys?status=all").json()["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after, "a refused request created nothing");
}

#[test]
fn the_data_directory_is_private() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = Server::start(&data, &tmp.path().join("log"), &[]);
    server.stop();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("pepper")), 0o600);
}

fn names(reply: &keyward_e2e::Reply) -> Vec<String> {
    reply.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap().to_owned())
        .collect()
}

fn listing_filters_and_pages(backend: &Backend) {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(
        &tmp.path().join("d"),
        &tmp.path().join("log"),
        &backend.serve_args(),
    );
    let admin = server.client().with_key(&server.root_key().unwrap());
    for (name, ws) in [
        ("api-a", "blue"),
        ("api-b", "green"),
        ("API-c", "blue"),
        ("batch", "blue"),
        ("cron", "green"),
    ] {
        admin.create_key(&json!({"name": name, "scopes": ["read"], "workspaces": [ws]}));
    }
    let (gone, _) =
        admin.create_key(&json!({"name": "api-gone", "scopes": ["read"], "workspaces": ["blue"]}));
    assert_eq!(
        admin
            .post(&format!("/v1/keys/{gone}/revoke"), &json!({}))
            .status,
        200
    );

    assert_eq!(
        names(&admin.get("/v1/keys")),
        ["API-c", "api-a", "api-b", "batch", "cron", "root"]
    );
    assert_eq!(
        names(&admin.get("/v1/keys?workspace=blue")),
        ["API-c", "api-a", "batch"]
    );
    assert_eq!(
        names(&admin.get("/v1/keys?workspace=blue&status=revoked")),
        ["api-gone"]
    );
    assert_eq!(
        names(&admin.get("/v1/keys?q=api")),
        ["API-c", "api-a", "api-b"]
    );
    assert_eq!(
        names(&admin.get("/v1/keys?q=api&status=all")),
        ["API-c", "api-a", "api-b", "api-gone"]
    );
    assert!(names(&admin.get("/v1/keys?workspace=none")).is_empty());

    // Paging two at a time visits every key once, in order, and ends without a cursor.
    let mut seen = Vec::new();
    let mut path = "/v1/keys?status=all&limit=2".to_owned();
    loop {
        let page = admin.get(&path);
        assert_eq!(page.status, 200, "{}", page.text);
        let got = names(&page);
        assert!(got.len() <= 2);
        seen.extend(got);
        match page.json()["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/keys?status=all&limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(
        seen,
        [
            "API-c", "api-a", "api-b", "api-gone", "batch", "cron", "root"
        ]
    );
    let r = admin.get("/v1/keys?cursor=not-a-cursor");
    assert_eq!(
        (r.status, r.problem_fields()),
        (400, vec!["cursor".to_owned()])
    );
}

fn concurrent_creates_with_one_name_admit_exactly_one(backend: &Backend) {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(
        &tmp.path().join("d"),
        &tmp.path().join("log"),
        &backend.serve_args(),
    );
    let admin = server.client().with_key(&server.root_key().unwrap());
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..20)
            .map(|_| {
                let admin = admin.clone();
                scope.spawn(move || {
                    admin
                        .post(
                            "/v1/keys",
                            &json!({"name": "contended", "scopes": ["read"]}),
                        )
                        .status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        19,
        "{statuses:?}"
    );
    assert_eq!(names(&admin.get("/v1/keys?q=contended")), ["contended"]);
}

/// A DynamoDB table written before names were folded (claims under raw spellings, look-alikes
/// among them): `keyward store init` upgrades it and says what it did, and `keyward serve`
/// keeps serving the old keys while refusing new look-alikes.
#[test]
fn an_old_dynamodb_table_is_upgraded_by_store_init_and_keeps_working() {
    use keyward_core::audit::AuditEntry;
    use keyward_core::group::CreateGroupRequest;
    use keyward_store::conformance::{LegacyNames, local_store, sample_key};

    let backend = Backend::dynamodb();
    let Backend::DynamoDb { location, .. } = &backend else {
        unreachable!()
    };
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(
        &tmp.path().join("d"),
        &tmp.path().join("log"),
        &backend.serve_args(),
    );
    let admin = server.client().with_key(&server.root_key().unwrap());
    let store = local_store(&keyward_store::DynamoLocation::parse(location).unwrap());
    let mut ids = Vec::new();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let audit = |id: &str| {
            AuditEntry::new("default", "old", "x", Some(id), None, json!({}), now()).unwrap()
        };
        for name in ["Deploy-Bot", "deploy-bot"] {
            let (mut key, hash) = sample_key("default", json!({"name": "x"}));
            key.name = name.to_owned();
            store
                .insert_legacy_key(&key, &hash, &audit(&key.id))
                .await
                .unwrap();
            ids.push(key.id);
        }
        let ops = CreateGroupRequest {
            name: Some("Ops".into()),
            description: None,
        }
        .into_group("default", "old", now())
        .unwrap()
        .unwrap();
        store
            .insert_legacy_group(&ops, &audit(&ops.id))
            .await
            .unwrap();
    });

    let out = std::process::Command::new(keyward_e2e::keyward_bin())
        .args(["store", "init", "--store", location])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("moved to folded form (written by an older keyward): 2"),
        "{stdout}"
    );
    assert!(
        stdout.contains("left on their old claim") && stdout.contains(": 1 (rename"),
        "{stdout}"
    );

    assert_eq!(
        names(&admin.get("/v1/keys?q=deploy")),
        ["Deploy-Bot", "deploy-bot"]
    );
    for (path, body) in [
        (
            "/v1/keys",
            json!({"name": "DEPLOY-BOT", "scopes": ["read"]}),
        ),
        ("/v1/groups", json!({"name": "OPS"})),
    ] {
        assert_eq!(admin.post(path, &body).status, 409, "{body}");
    }
    let r = admin.patch(
        &format!("/v1/keys/{}", ids[0]),
        &json!({"name": "deploy-bot-old"}),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(admin.delete(&format!("/v1/keys/{}", ids[1])).status, 204);
    admin.create_key(&json!({"name": "DEPLOY-BOT", "scopes": ["read"]}));
}

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}
