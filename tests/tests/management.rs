//! The complete management API, black-box over HTTP against `keyward serve`, on SQLite and on
//! DynamoDB Local: every endpoint and every status rule of the product notes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed check panics

use keyward_e2e::{Backend, Client, Reply, Server};
use serde_json::{Value, json};

struct Env {
    _tmp: tempfile::TempDir,
    server: Server,
    admin: Client,
    anon: Client,
}

fn env(backend: &Backend) -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(
        &tmp.path().join("d"),
        &tmp.path().join("log"),
        &backend.serve_args(),
    );
    let anon = server.client();
    let admin = anon.with_key(&server.root_key().unwrap());
    Env {
        _tmp: tmp,
        server,
        admin,
        anon,
    }
}

fn created(r: &Reply) -> (String, String) {
    assert_eq!(r.status, 201, "{}", r.text);
    let j = r.json();
    (
        j["key"]["id"].as_str().unwrap().into(),
        j["secret"].as_str().unwrap().into(),
    )
}

fn code(r: &Reply) -> (u16, String) {
    (
        r.status,
        r.json()["code"].as_str().unwrap_or_default().to_owned(),
    )
}

fn verify(e: &Env, key: &str, extra: Value) -> (u16, String) {
    code(&e.anon.verify(key, extra))
}

keyward_e2e::on_both_stores!(
    status_rules_follow_the_product_notes,
    edits_are_guarded_by_etags_and_warn,
    regenerate_issues_a_new_secret_and_stops_the_old_one,
    idempotent_creates_make_one_key,
    workspaces_are_associated_and_dissociated,
    sharing_groups_and_membership,
    presets_builtin_and_defined,
    audit_and_usage_are_readable,
    input_limits_are_the_same_on_both_stores,
    look_alike_names_are_one_name_on_both_stores,
    a_revoked_key_frees_its_name,
);

fn status_rules_follow_the_product_notes(backend: &Backend) {
    let e = env(backend);
    let (id, key) = created(
        &e.admin
            .post("/v1/keys", &json!({"name": "svc", "scopes": ["read"]})),
    );
    assert_eq!(verify(&e, &key, json!({})), (200, "VALID".into()));

    // Deactivate: 403 until reactivated.
    let r = e
        .admin
        .patch(&format!("/v1/keys/{id}"), &json!({"active": false}), None);
    assert_eq!(
        (r.status, r.json()["status"].as_str()),
        (200, Some("inactive")),
        "{}",
        r.text
    );
    assert_eq!(verify(&e, &key, json!({})), (403, "INACTIVE".into()));
    assert!(e.admin.get("/v1/keys?status=inactive").text.contains(&id));
    e.admin
        .patch(&format!("/v1/keys/{id}"), &json!({"active": true}), None);
    assert_eq!(verify(&e, &key, json!({})), (200, "VALID".into()));

    // An edited scope takes effect at once.
    assert_eq!(
        verify(&e, &key, json!({"action": "write", "resource": "agents/a"})).0,
        403
    );
    let r = e.admin.patch(
        &format!("/v1/keys/{id}"),
        &json!({"scopes": ["write"]}),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        verify(&e, &key, json!({"action": "write", "resource": "agents/a"})),
        (200, "VALID".into())
    );
    assert_eq!(
        verify(&e, &key, json!({"action": "read", "resource": "agents/a"})).1,
        "PERMISSION_DENIED"
    );

    // An expired key shows status expired and verifies as 401 EXPIRED.
    let soon = (chrono_now() + 2).to_string();
    let (exp_id, exp_key) = created(&e.admin.post(
        "/v1/keys",
        &json!({"name": "brief", "scopes": ["read"], "expires_at": rfc3339(&soon)}),
    ));
    std::thread::sleep(std::time::Duration::from_millis(2600));
    assert_eq!(
        e.admin.get(&format!("/v1/keys/{exp_id}")).json()["status"],
        "expired"
    );
    assert_eq!(verify(&e, &exp_key, json!({})), (401, "EXPIRED".into()));
    assert!(
        e.admin
            .get("/v1/keys?status=expired")
            .text
            .contains(&exp_id)
    );
    assert!(
        !e.admin.get("/v1/keys").text.contains(&exp_id),
        "expired keys leave the active list"
    );

    // Revoke is final: 401, and later edits are refused with 409.
    assert_eq!(
        e.admin
            .post(&format!("/v1/keys/{id}/revoke"), &json!({}))
            .status,
        200
    );
    assert_eq!(verify(&e, &key, json!({})), (401, "REVOKED".into()));
    assert_eq!(
        e.admin
            .patch(&format!("/v1/keys/{id}"), &json!({"active": true}), None)
            .status,
        409
    );
    assert_eq!(
        e.admin
            .post(&format!("/v1/keys/{id}/regenerate"), &json!({}))
            .status,
        409
    );
    assert_eq!(
        e.admin
            .put(&format!("/v1/keys/{id}/workspaces/ws_1"))
            .status,
        409
    );

    // Delete: 401 NOT_FOUND, and the record is gone.
    assert_eq!(e.admin.delete(&format!("/v1/keys/{id}")).status, 204);
    assert_eq!(verify(&e, &key, json!({})), (401, "NOT_FOUND".into()));
    assert_eq!(e.admin.get(&format!("/v1/keys/{id}")).status, 404);
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Seconds since the epoch as RFC 3339 (UTC), without a date library in the harness.
fn rfc3339(epoch: &str) -> String {
    let secs: i64 = epoch.parse().unwrap();
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn edits_are_guarded_by_etags_and_warn(backend: &Backend) {
    let e = env(backend);
    let (id, _) = created(
        &e.admin
            .post("/v1/keys", &json!({"name": "guarded", "scopes": ["read"]})),
    );
    let r = e.admin.get(&format!("/v1/keys/{id}"));
    let etag = r.etag.clone().unwrap();
    assert_eq!(etag, "\"1\"");

    // Two edits from the same read: one wins, the other gets 412.
    let first = e.admin.patch(
        &format!("/v1/keys/{id}"),
        &json!({"description": "one"}),
        Some(&etag),
    );
    assert_eq!(
        (first.status, first.etag.as_deref()),
        (200, Some("\"2\"")),
        "{}",
        first.text
    );
    let second = e.admin.patch(
        &format!("/v1/keys/{id}"),
        &json!({"description": "two"}),
        Some(&etag),
    );
    assert_eq!(second.status, 412, "{}", second.text);
    assert_eq!(second.content_type, "application/problem+json");
    assert_eq!(
        e.admin.get(&format!("/v1/keys/{id}")).json()["description"],
        "one"
    );

    // Scope and range edits warn that live callers may break; wildcards warn too.
    let r = e.admin.patch(
        &format!("/v1/keys/{id}"),
        &json!({"scopes": ["agent:viewer"], "allowed_cidrs": ["0.0.0.0/0"]}),
        None,
    );
    let fields: Vec<String> = r.json()["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["field"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        fields,
        ["allowed_cidrs[0]", "scopes", "allowed_cidrs"],
        "{}",
        r.text
    );
    assert_eq!(r.json()["scopes"][0]["scope"], "agent:viewer");
    let r = e.admin.patch(
        &format!("/v1/keys/{id}"),
        &json!({"description": "quiet"}),
        None,
    );
    assert_eq!(r.json()["warnings"], json!([]));

    // Bad edits are refused by field and change nothing.
    let before = e.admin.get(&format!("/v1/keys/{id}")).json();
    for (body, field) in [
        (json!({"name": ""}), "name"),
        (json!({"rate_limit_per_minute": 0}), "rate_limit_per_minute"),
        (json!({"expires_at": "2001-01-01T00:00:00Z"}), "expires_at"),
        (json!({"scopes": ["project:executor"]}), "scopes[0]"),
        (json!({"allowed_cidrs": ["300.1.1.1"]}), "allowed_cidrs[0]"),
        (json!({"workspaces": ["not an id"]}), "workspaces[0]"),
        (json!({"groups": ["grp_missing"]}), "groups[0]"),
        (json!({"generation": 2}), "generation"),
        (json!({"active": "yes"}), "active"),
    ] {
        let r = e.admin.patch(&format!("/v1/keys/{id}"), &body, None);
        assert_eq!(
            (r.status, r.problem_fields()),
            (400, vec![field.to_owned()]),
            "{body}"
        );
    }
    assert_eq!(e.admin.get(&format!("/v1/keys/{id}")).json(), before);
    let r = e
        .admin
        .patch(&format!("/v1/keys/{id}"), &json!({}), Some("not-an-etag"));
    assert_eq!(r.status, 400);
    assert_eq!(
        e.admin
            .patch("/v1/keys/key_missing", &json!({}), None)
            .status,
        404
    );
    // A rename onto a taken name is a conflict naming the field.
    created(
        &e.admin
            .post("/v1/keys", &json!({"name": "taken", "scopes": ["read"]})),
    );
    let r = e
        .admin
        .patch(&format!("/v1/keys/{id}"), &json!({"name": "taken"}), None);
    assert_eq!(
        (r.status, r.problem_fields()),
        (409, vec!["name".to_owned()])
    );
}

fn regenerate_issues_a_new_secret_and_stops_the_old_one(backend: &Backend) {
    let e = env(backend);
    let (id, old) = created(&e.admin.post(
        "/v1/keys",
        &json!({"name": "rotating", "scopes": ["read"], "workspaces": ["ws_1"]}),
    ));
    let r = e
        .admin
        .post(&format!("/v1/keys/{id}/regenerate"), &json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    let new = j["secret"].as_str().unwrap().to_owned();
    assert!(keyward_core::token::Token::parse(&new).is_ok());
    assert_ne!(new, old);
    assert_eq!(j["key"]["id"], id.as_str());
    assert_eq!(j["key"]["workspaces"], json!(["ws_1"]), "settings are kept");
    assert_eq!(j["key"]["last4"], &new[new.len() - 4..]);
    assert_eq!(
        verify(&e, &old, json!({})),
        (401, "NOT_FOUND".into()),
        "the old secret stops at once"
    );
    assert_eq!(verify(&e, &new, json!({})), (200, "VALID".into()));
    assert!(
        !e.admin
            .get(&format!("/v1/keys/{id}"))
            .text
            .contains(&new[8..40]),
        "shown once"
    );
    assert_eq!(j["previous_secret_expires_at"], json!(null));

    // With a grace: both verify, and the answer and the record say until when.
    let r = e.admin.post(
        &format!("/v1/keys/{id}/regenerate"),
        &json!({"grace_period_seconds": 600}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    let newest = j["secret"].as_str().unwrap().to_owned();
    let until = j["previous_secret_expires_at"].as_str().unwrap().to_owned();
    assert_eq!(j["key"]["previous_secret"]["expires_at"], until.as_str());
    assert_eq!(j["key"]["previous_secret"]["last4"], &new[new.len() - 4..]);
    assert_eq!(
        verify(&e, &new, json!({})),
        (200, "VALID".into()),
        "in grace"
    );
    assert_eq!(verify(&e, &newest, json!({})), (200, "VALID".into()));
    let shown = e.admin.get(&format!("/v1/keys/{id}")).json();
    assert_eq!(shown["previous_secret"]["expires_at"], until.as_str());
    assert!(!shown.to_string().contains(&new[8..40]), "never the secret");

    // No body is no grace; bad bodies are refused by field and change nothing.
    let bare = e.admin.post_raw(&format!("/v1/keys/{id}/regenerate"), "");
    assert_eq!(bare.status, 200, "{}", bare.text);
    let current = bare.json()["secret"].as_str().unwrap().to_owned();
    assert_eq!(verify(&e, &newest, json!({})), (401, "NOT_FOUND".into()));
    for (body, field) in [
        (json!({"grace_period_seconds": -1}), "grace_period_seconds"),
        (
            json!({"grace_period_seconds": 604_801}),
            "grace_period_seconds",
        ),
        (
            json!({"grace_period_seconds": "soon"}),
            "grace_period_seconds",
        ),
        (json!({"grace": 60}), "grace"),
    ] {
        let r = e.admin.post(&format!("/v1/keys/{id}/regenerate"), &body);
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        assert!(
            r.problem_fields().iter().any(|f| f == field),
            "{body}: {:?}",
            r.problem_fields()
        );
    }
    assert_eq!(
        verify(&e, &current, json!({})),
        (200, "VALID".into()),
        "unchanged"
    );

    // Opting in to Secrets Manager rotation, and out again; a bad secret id changes nothing.
    let r = e.admin.patch(
        &format!("/v1/keys/{id}"),
        &json!({"secrets_manager_secret_id": "keyward/ci-deploy"}),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["secrets_manager_secret_id"], "keyward/ci-deploy");
    let r = e.admin.patch(
        &format!("/v1/keys/{id}"),
        &json!({"secrets_manager_secret_id": "not a secret id!"}),
        None,
    );
    assert_eq!(r.problem_fields(), ["secrets_manager_secret_id"]);
    let r = e.admin.patch(
        &format!("/v1/keys/{id}"),
        &json!({"secrets_manager_secret_id": null}),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.json().get("secrets_manager_secret_id").is_none(),
        "{}",
        r.text
    );
    let stored = e.admin.get(&format!("/v1/keys/{id}")).json();
    assert!(
        stored.get("secrets_manager_secret_id").is_none(),
        "{stored}"
    );
}

fn idempotent_creates_make_one_key(backend: &Backend) {
    let e = env(backend);
    let body = json!({"name": "once", "scopes": ["read"]}).to_string();
    let first = e
        .admin
        .post_with("/v1/keys", &body, &[("Idempotency-Key", "deploy-42")]);
    let (id, secret) = created(&first);
    let retry = e
        .admin
        .post_with("/v1/keys", &body, &[("Idempotency-Key", "deploy-42")]);
    assert_eq!(retry.status, 200, "{}", retry.text);
    let j = retry.json();
    assert_eq!(
        (j["key"]["id"].as_str(), j["secret"].is_null()),
        (Some(id.as_str()), true)
    );
    assert!(!retry.text.contains(&secret[8..40]));
    let other = e.admin.post_with(
        "/v1/keys",
        &json!({"name": "else", "scopes": ["read"]}).to_string(),
        &[("Idempotency-Key", "deploy-42")],
    );
    assert_eq!(other.status, 422, "{}", other.text);

    // Concurrent retries of one request still make one key.
    let body = json!({"name": "raced", "scopes": ["read"]}).to_string();
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..6)
            .map(|_| {
                s.spawn(|| {
                    e.admin
                        .post_with("/v1/keys", &body, &[("Idempotency-Key", "race-1")])
                        .status
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| [200, 201, 409].contains(s)),
        "{statuses:?}"
    );
    let list = e.admin.get("/v1/keys?q=raced").json();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let r = e
        .admin
        .post_with("/v1/keys", &body, &[("Idempotency-Key", "has space")]);
    assert_eq!(
        (r.status, r.problem_fields()),
        (400, vec!["Idempotency-Key".to_owned()])
    );
}

fn workspaces_are_associated_and_dissociated(backend: &Backend) {
    let e = env(backend);
    let (id, key) = created(
        &e.admin
            .post("/v1/keys", &json!({"name": "ws", "scopes": ["read"]})),
    );
    assert_eq!(
        verify(&e, &key, json!({"workspace": "ws_9"})).1,
        "WORKSPACE_DENIED"
    );
    let r = e.admin.put(&format!("/v1/keys/{id}/workspaces/ws_9"));
    assert_eq!(
        (r.status, r.json()["workspaces"].clone()),
        (200, json!(["ws_9"])),
        "{}",
        r.text
    );
    assert_eq!(
        e.admin
            .put(&format!("/v1/keys/{id}/workspaces/ws_9"))
            .json()["version"],
        2,
        "idempotent"
    );
    assert_eq!(verify(&e, &key, json!({"workspace": "ws_9"})).0, 200);
    assert!(e.admin.get("/v1/keys?workspace=ws_9").text.contains(&id));
    let r = e.admin.delete(&format!("/v1/keys/{id}/workspaces/ws_9"));
    assert_eq!((r.status, r.json()["workspaces"].clone()), (200, json!([])));
    assert_eq!(
        verify(&e, &key, json!({"workspace": "ws_9"})).1,
        "WORKSPACE_DENIED"
    );
    assert_eq!(
        e.admin
            .put(&format!("/v1/keys/{id}/workspaces/bad%20id"))
            .status,
        400
    );
    assert_eq!(e.admin.put("/v1/keys/key_nope/workspaces/ws_1").status, 404);
}

fn sharing_groups_and_membership(backend: &Backend) {
    let e = env(backend);
    let r = e.admin.post(
        "/v1/groups",
        &json!({"name": "platform", "description": "the platform team"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let gid = r.json()["id"].as_str().unwrap().to_owned();
    let r = e.admin.post("/v1/groups", &json!({"name": "platform"}));
    assert_eq!(
        (r.status, r.problem_fields()),
        (409, vec!["name".to_owned()])
    );
    assert_eq!(
        e.admin.post("/v1/groups", &json!({})).problem_fields(),
        ["name"]
    );
    assert_eq!(
        e.admin.get(&format!("/v1/groups/{gid}")).json()["name"],
        "platform"
    );
    assert_eq!(
        e.admin.get("/v1/groups").json()["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let (id, key) = created(&e.admin.post(
        "/v1/keys",
        &json!({"name": "deployer", "preset": "deploy", "groups": [gid]}),
    ));
    let (other, _) = created(
        &e.admin
            .post("/v1/keys", &json!({"name": "other", "scopes": ["read"]})),
    );
    let r = e.admin.put(&format!("/v1/groups/{gid}/members/{other}"));
    assert_eq!(
        (r.status, r.json()["groups"].clone()),
        (200, json!([gid])),
        "{}",
        r.text
    );
    let members = e.admin.get(&format!("/v1/groups/{gid}/members")).json();
    assert_eq!(members["items"].as_array().unwrap().len(), 2);
    let v = e.anon.verify(&key, json!({}));
    assert_eq!(
        v.json()["groups"],
        json!([gid]),
        "the verifier passes the key's groups on"
    );
    let r = e.admin.post(
        "/v1/keys",
        &json!({"name": "x", "scopes": ["read"], "groups": ["grp_nope"]}),
    );
    assert_eq!(
        (r.status, r.problem_fields()),
        (400, vec!["groups[0]".to_owned()])
    );
    assert_eq!(
        e.admin
            .put(&format!("/v1/groups/grp_nope/members/{id}"))
            .status,
        404
    );

    assert_eq!(
        e.admin
            .delete(&format!("/v1/groups/{gid}/members/{other}"))
            .json()["groups"],
        json!([])
    );
    assert_eq!(e.admin.delete(&format!("/v1/groups/{gid}")).status, 204);
    assert_eq!(
        e.admin.get(&format!("/v1/keys/{id}")).json()["groups"],
        json!([]),
        "members are detached"
    );
    assert_eq!(e.admin.get(&format!("/v1/groups/{gid}")).status, 404);
    assert_eq!(e.admin.delete(&format!("/v1/groups/{gid}")).status, 404);
}

fn presets_builtin_and_defined(backend: &Backend) {
    let e = env(backend);
    let list = e.admin.get("/v1/presets").json();
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["deploy", "read-only", "agent-runner", "custom"]);
    let r = e.admin.put_json(
        "/v1/presets/ci-runner",
        &json!({"description": "CI", "scopes": ["agent:executor", "project:viewer"]}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let list = e.admin.get("/v1/presets").json();
    let last = list["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["name"].as_str(), last["builtin"].as_bool()),
        (Some("ci-runner"), Some(false))
    );
    let (_, key) = created(
        &e.admin
            .post("/v1/keys", &json!({"name": "ci", "preset": "ci-runner"})),
    );
    assert_eq!(
        verify(
            &e,
            &key,
            json!({"action": "execute", "resource": "agents/a1"})
        )
        .0,
        200
    );
    assert_eq!(
        e.admin
            .put_json("/v1/presets/deploy", &json!({"scopes": ["read"]}))
            .status,
        409
    );
    assert_eq!(e.admin.delete("/v1/presets/deploy").status, 409);
    assert_eq!(
        e.admin
            .put_json("/v1/presets/bad", &json!({"scopes": ["org:viewer"]}))
            .problem_fields(),
        ["scopes[0]"]
    );
    assert_eq!(e.admin.delete("/v1/presets/ci-runner").status, 204);
    assert_eq!(e.admin.delete("/v1/presets/ci-runner").status, 404);
    let r = e
        .admin
        .post("/v1/keys", &json!({"name": "late", "preset": "ci-runner"}));
    assert_eq!(r.problem_fields(), ["preset"]);
}

fn audit_and_usage_are_readable(backend: &Backend) {
    let e = env(backend);
    let (id, secret) = created(
        &e.admin
            .post("/v1/keys", &json!({"name": "watched", "scopes": ["read"]})),
    );
    e.admin.patch(
        &format!("/v1/keys/{id}"),
        &json!({"description": "d"}),
        None,
    );
    e.admin.post(&format!("/v1/keys/{id}/revoke"), &json!({}));
    let audit = e.admin.get("/v1/audit?limit=3");
    assert_eq!(audit.status, 200);
    let items = audit.json()["items"].as_array().unwrap().clone();
    let actions: Vec<&str> = items
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["key.revoked", "key.updated", "key.created"]);
    assert_eq!(items[1]["details"]["changed"], json!(["description"]));
    assert_eq!(items[0]["source_ip"], "127.0.0.1");
    assert!(items[0]["actor"].as_str().unwrap().starts_with("key_"));
    assert!(
        !audit.text.contains(&secret[8..40]),
        "no secret in the audit log"
    );
    let next = audit.json()["next_cursor"].as_str().unwrap().to_owned();
    assert_eq!(e.admin.get(&format!("/v1/audit?cursor={next}")).status, 200);

    let usage = e.admin.get(&format!("/v1/keys/{id}/usage"));
    assert_eq!(usage.status, 200, "{}", usage.text);
    assert_eq!(
        (
            usage.json()["request_count"].as_u64(),
            usage.json()["days"].clone()
        ),
        (Some(0), json!([]))
    );
    let total = e
        .admin
        .get("/v1/usage?from=2026-01-01&to=2026-01-31")
        .json();
    assert_eq!(
        (total["days"].clone(), total["from"].as_str()),
        (json!([]), Some("2026-01-01"))
    );
    assert_eq!(
        e.admin.get("/v1/usage?from=soon").problem_fields(),
        ["from"]
    );
    assert_eq!(
        e.admin
            .get("/v1/usage?from=2026-02-01&to=2026-01-01")
            .problem_fields(),
        ["from"]
    );
    assert_eq!(e.admin.get("/v1/usage?day=1").problem_fields(), ["day"]);
    assert_eq!(e.admin.get("/v1/keys/key_nope/usage").status, 404);

    // The OpenAPI document is served, and it is the committed one.
    let served = e.anon.get("/v1/openapi.json").json();
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../schemas/openapi.json"
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(served, committed);
    drop(e.server);
}

/// `{"a": {"a": ... 1}}`, `levels` objects deep.
fn nested(levels: usize) -> Value {
    let mut v = json!(1);
    for _ in 0..levels {
        v = json!({ "a": v });
    }
    v
}

/// Input a store could choke on (DynamoDB: 32 nesting levels, number range, empty attribute
/// names) is refused by the core's rules before any store call: the same 400 on both stores.
fn input_limits_are_the_same_on_both_stores(backend: &Backend) {
    let e = env(backend);
    for metadata in [
        nested(31),
        nested(11),
        json!({"n": 1e200}),
        json!({"n": [1e-200]}),
        json!({"": true}),
        json!({"pad": "x".repeat(5000)}),
    ] {
        let r = e.admin.post(
            "/v1/keys",
            &json!({"name": "limits", "scopes": ["read"], "metadata": metadata}),
        );
        assert_eq!(
            (r.status, r.problem_fields()),
            (400, vec!["metadata".to_owned()]),
            "{}",
            r.text
        );
    }
    assert_eq!(
        e.admin.get("/v1/keys?q=limits").json()["items"],
        json!([]),
        "nothing was written"
    );
    // The most a request may carry is stored and read back whole on both stores.
    let most: serde_json::Map<String, Value> = (0..99)
        .map(|i| (format!("k{i}"), json!(i)))
        .chain([("deep".to_owned(), nested(9))])
        .collect();
    let (id, _) = created(&e.admin.post(
        "/v1/keys",
        &json!({"name": "limits", "scopes": ["read"], "metadata": most,
                "description": "d".repeat(1024), "workspaces": (0..40).map(|i| format!("ws_{i}")).collect::<Vec<_>>()}),
    ));
    let r = e.admin.patch(
        &format!("/v1/keys/{id}"),
        &json!({"metadata": nested(31)}),
        None,
    );
    assert_eq!(
        (r.status, r.problem_fields()),
        (400, vec!["metadata".to_owned()])
    );
    let record = e.admin.get(&format!("/v1/keys/{id}")).json();
    assert_eq!(record["metadata"], Value::Object(most));
    assert_eq!(record["version"], 1);
}

/// Names that display alike are one name: stored in NFC, compared after NFKC case folding,
/// refused when they hide characters or mix scripts like a spoof. The same on both stores.
fn look_alike_names_are_one_name_on_both_stores(backend: &Backend) {
    let e = env(backend);
    let create = |name: &str| {
        e.admin
            .post("/v1/keys", &json!({"name": name, "scopes": ["read"]}))
    };
    let (id, _) = created(&create("ci-bot"));
    let (_, _) = created(&create("cafe\u{301}"));
    for look_alike in [
        "CI-Bot",
        "\u{ff43}\u{ff49}-\u{ff42}\u{ff4f}\u{ff54}",
        "caf\u{e9}",
        "CAFE\u{301}",
    ] {
        let r = create(look_alike);
        assert_eq!(
            (r.status, r.problem_fields()),
            (409, vec!["name".to_owned()]),
            "{look_alike:?}: {}",
            r.text
        );
    }
    let listed = e.admin.get("/v1/keys?q=caf").json();
    assert_eq!(listed["items"][0]["name"], "caf\u{e9}", "stored in NFC");
    for (hostile, says) in [
        ("ci-bot\u{202E}", "bidirectional"),
        ("ci\u{200B}bot", "invisible"),
        ("p\u{430}ypal", "mixes scripts (Latin, Cyrillic)"),
    ] {
        let r = create(hostile);
        assert_eq!(
            (r.status, r.problem_fields()),
            (400, vec!["name".to_owned()]),
            "{}",
            r.text
        );
        assert!(r.text.contains(says), "{}", r.text);
    }
    for single_script in ["Сервис оплаты", "本番環境のキー"] {
        let (id, _) = created(&create(single_script));
        assert_eq!(
            e.admin.get(&format!("/v1/keys/{id}")).json()["name"],
            single_script
        );
    }
    // A rename into a look-alike is refused; respelling one's own name is not.
    let (other, _) = created(&create("other"));
    let r = e.admin.patch(
        &format!("/v1/keys/{other}"),
        &json!({"name": "CI-BOT"}),
        None,
    );
    assert_eq!(r.status, 409, "{}", r.text);
    let r = e
        .admin
        .patch(&format!("/v1/keys/{id}"), &json!({"name": "CI-Bot"}), None);
    assert_eq!((r.status, r.json()["name"].as_str()), (200, Some("CI-Bot")));
    // Groups follow the same rule.
    assert_eq!(
        e.admin
            .post("/v1/groups", &json!({"name": "Platform"}))
            .status,
        201
    );
    let r = e.admin.post("/v1/groups", &json!({"name": "PLATFORM"}));
    assert_eq!(
        (r.status, r.problem_fields()),
        (409, vec!["name".to_owned()])
    );
}

/// A revoked key keeps its name for history but frees it: a new key may take it at once (in
/// any spelling), and the revoked one still shows under it.
fn a_revoked_key_frees_its_name(backend: &Backend) {
    let e = env(backend);
    let create = |name: &str| {
        e.admin
            .post("/v1/keys", &json!({"name": name, "scopes": ["read"]}))
    };
    let (old, old_key) = created(&create("nightly"));
    assert_eq!(create("nightly").status, 409, "taken while live");
    let r = e.admin.post(&format!("/v1/keys/{old}/revoke"), &json!({}));
    assert_eq!(r.status, 200, "{}", r.text);

    let (new, new_key) = created(&create("nightly"));
    assert_ne!(new, old);
    assert_eq!(verify(&e, &new_key, json!({})), (200, "VALID".into()));
    assert_eq!(verify(&e, &old_key, json!({})), (401, "REVOKED".into()));
    let r = create("NIGHTLY");
    assert_eq!(
        (r.status, r.problem_fields()),
        (409, vec!["name".to_owned()]),
        "the new key holds it"
    );
    let shown = e.admin.get(&format!("/v1/keys/{old}")).json();
    assert_eq!(
        (shown["name"].as_str(), shown["status"].as_str()),
        (Some("nightly"), Some("revoked"))
    );
    let revoked = e.admin.get("/v1/keys?status=revoked").json();
    assert_eq!(revoked["items"][0]["id"], old.as_str());
    // Deleting the revoked key leaves the new one's name claimed.
    assert_eq!(e.admin.delete(&format!("/v1/keys/{old}")).status, 204);
    assert_eq!(create("Nightly").status, 409);
    // Another key may be renamed into a revoked key's name too.
    let r = e.admin.post(&format!("/v1/keys/{new}/revoke"), &json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    let (other, _) = created(&create("other"));
    let r = e.admin.patch(
        &format!("/v1/keys/{other}"),
        &json!({"name": "Nightly"}),
        None,
    );
    assert_eq!(
        (r.status, r.json()["name"].as_str()),
        (200, Some("Nightly")),
        "{}",
        r.text
    );
}
