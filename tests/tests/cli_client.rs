//! The client commands (`keyward keys`, `keyward usage`, `keyward audit`) run as separate
//! processes, the way a person or a CI job runs them, against a real `keyward serve` on SQLite
//! and on DynamoDB Local: exit codes, what people read, and the API's JSON with `--json`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed check panics

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use keyward_e2e::{Backend, Client, Server, keyward_bin};
use serde_json::Value;

struct Env {
    tmp: tempfile::TempDir,
    server: Server,
    root: String,
}

/// What one command printed, and its exit code.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// This run, which must have succeeded.
    fn ok(self) -> Run {
        assert_eq!(self.code, 0, "{self:?}");
        self
    }

    /// This run, which must have failed with exit code 1 (a refusal, not a usage error).
    fn failed(self) -> Run {
        assert_eq!(self.code, 1, "{self:?}");
        assert!(
            self.stdout.is_empty(),
            "a failure prints nothing on stdout: {self:?}"
        );
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

fn env(backend: &Backend) -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(
        &tmp.path().join("d"),
        &tmp.path().join("log"),
        &backend.serve_args(),
    );
    let root = server.root_key().unwrap();
    Env { tmp, server, root }
}

/// Runs `keyward args...` with none of the caller's `KEYWARD_*` settings, then `vars`.
fn keyward(args: &[&str], vars: &[(&str, &str)]) -> Run {
    let out = Command::new(keyward_bin())
        .args(args)
        .env_remove("KEYWARD_API_KEY")
        .env_remove("KEYWARD_API_KEY_FILE")
        .env_remove("KEYWARD_ENDPOINT")
        .env_remove("RUST_LOG")
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

impl Env {
    /// `keyward args...` against this server with the root key in `KEYWARD_API_KEY`.
    fn run(&self, args: &[&str]) -> Run {
        self.run_as(&self.root, args)
    }

    fn run_as(&self, key: &str, args: &[&str]) -> Run {
        keyward(
            args,
            &[
                ("KEYWARD_ENDPOINT", &self.server.base),
                ("KEYWARD_API_KEY", key),
            ],
        )
    }

    /// `keyward args...` logging everything it can (`RUST_LOG=trace`).
    fn run_logged(&self, args: &[&str]) -> Run {
        keyward(
            args,
            &[
                ("KEYWARD_ENDPOINT", &self.server.base),
                ("KEYWARD_API_KEY", &self.root),
                ("RUST_LOG", "trace"),
            ],
        )
    }

    fn http(&self) -> Client {
        self.server.client()
    }

    /// The code `POST /v1/verify` answers for `secret`.
    fn verify(&self, secret: &str) -> String {
        let r = self.http().verify(secret, serde_json::json!({}));
        r.json()["code"].as_str().unwrap_or_default().to_owned()
    }
}

/// Whether `text` is one secret in the published token format, `kw_live_` and 38 base62
/// characters.
fn is_secret(text: &str) -> bool {
    let rest = text.strip_prefix("kw_live_").unwrap_or_default();
    rest.len() == 38 && rest.bytes().all(|b| b.is_ascii_alphanumeric())
}

keyward_e2e::on_both_stores!(
    a_key_lives_its_whole_life_on_the_command_line,
    a_stale_version_changes_nothing_and_says_so,
    bad_input_and_bad_keys_are_refused_clearly,
    usage_and_audit_are_reported,
);

fn a_key_lives_its_whole_life_on_the_command_line(backend: &Backend) {
    let e = env(backend);

    // Create: the secret alone on stdout, the rest on stderr.
    let created = e
        .run(&[
            "keys",
            "create",
            "--name",
            "ci nightly",
            "--scope",
            "read",
            "--scope",
            "agent:editor",
            "--workspace",
            "ws_1",
            "--rate-limit",
            "90",
            "--description",
            "the nightly build",
        ])
        .ok();
    let secret = created.stdout.trim_end().to_owned();
    assert!(is_secret(&secret), "{created:?}");
    assert_eq!(
        created.stdout,
        format!("{secret}\n"),
        "only the secret on stdout"
    );
    assert!(
        created.stderr.contains("shown this once"),
        "{}",
        created.stderr
    );
    assert!(!created.stderr.contains(&secret), "{}", created.stderr);
    assert_eq!(e.verify(&secret), "VALID");
    let id = created
        .stderr
        .split_whitespace()
        .find(|w| w.starts_with("key_"))
        .unwrap()
        .to_owned();

    // List: a table with the key's name, status, shown form, scopes and rate limit; the
    // secret never.
    let listed = e.run(&["keys", "list"]).ok();
    let row = listed
        .stdout
        .lines()
        .find(|l| l.contains(&id))
        .unwrap_or_else(|| panic!("{id} not listed: {}", listed.stdout));
    let shown = format!("{}…{}", &secret[..12], &secret[secret.len() - 4..]);
    for part in [
        "ci nightly",
        "active",
        &shown,
        "read, agent:editor",
        "90/min",
        "never",
    ] {
        assert!(row.contains(part), "{part} missing from {row}");
    }
    assert!(listed.stdout.starts_with("ID"), "{}", listed.stdout);
    assert!(!listed.stdout.contains(&secret));
    let json = e.run(&["keys", "list", "--json"]).ok().json();
    let ids: Vec<&str> = json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&id.as_str()), "{json}");
    assert_eq!(json["next_cursor"], Value::Null);
    // Paged by hand: one key per page, the next page's cursor on stderr.
    let page = e
        .run(&["keys", "list", "--limit", "1", "--json"])
        .ok()
        .json();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let human = e.run(&["keys", "list", "--limit", "1"]).ok();
    assert!(
        human.stderr.contains(&format!("--cursor {cursor}")),
        "{}",
        human.stderr
    );
    let next = e
        .run(&[
            "keys", "list", "--limit", "1", "--cursor", &cursor, "--json",
        ])
        .ok()
        .json();
    assert_ne!(next["items"][0]["id"], page["items"][0]["id"]);
    // A name search, in any case.
    let found = e
        .run(&["keys", "list", "--search", "NIGHTLY", "--json"])
        .ok()
        .json();
    assert_eq!(found["items"].as_array().unwrap().len(), 1, "{found}");

    // Get: field by field, and the record as JSON.
    let got = e.run(&["keys", "get", &id]).ok();
    for part in [
        "ci nightly",
        "the nightly build",
        "ws_1",
        "90 per minute",
        "any address",
    ] {
        assert!(got.stdout.contains(part), "{part} missing: {}", got.stdout);
    }
    let record = e.run(&["keys", "get", &id, "--json"]).ok().json();
    assert_eq!(
        (
            &record["id"],
            &record["version"],
            &record["rate_limit_per_minute"]
        ),
        (&Value::from(id.as_str()), &Value::from(1), &Value::from(90))
    );
    assert!(record.get("secret").is_none() && !got.stdout.contains(&secret));

    // Update: only what the flags name; JSON has the record and its warnings.
    let updated = e
        .run(&[
            "keys",
            "update",
            &id,
            "--name",
            "ci nightly 2",
            "--scope",
            "read",
            "--if-match",
            "1",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(
        (
            &updated["name"],
            &updated["version"],
            &updated["workspaces"]
        ),
        (
            &Value::from("ci nightly 2"),
            &Value::from(2),
            &serde_json::json!(["ws_1"])
        )
    );
    assert_eq!(updated["warnings"][0]["field"], "scopes", "{updated}");
    let human = e
        .run(&["keys", "update", &id, "--active", "false", "--no-expiry"])
        .ok();
    assert!(human.stdout.contains("inactive"), "{}", human.stdout);
    assert_eq!(e.verify(&secret), "INACTIVE");
    e.run(&["keys", "update", &id, "--active", "true"]).ok();
    assert_eq!(e.verify(&secret), "VALID");
    let nothing = e.run(&["keys", "update", &id]).failed();
    assert!(nothing.stderr.contains("nothing to change"), "{nothing:?}");

    // Regenerate: a new secret alone on stdout; the old one stops at once.
    let regenerated = e.run(&["keys", "regenerate", &id]).ok();
    let new_secret = regenerated.stdout.trim_end().to_owned();
    assert!(
        is_secret(&new_secret) && new_secret != secret,
        "{regenerated:?}"
    );
    assert!(
        regenerated.stderr.contains("old secret stopped"),
        "{regenerated:?}"
    );
    assert_eq!(e.verify(&secret), "NOT_FOUND");
    assert_eq!(e.verify(&new_secret), "VALID");
    // Logging everything, the command writes neither the admin key nor the secret to stderr.
    let logged = e.run_logged(&["keys", "regenerate", &id]).ok();
    let logged_secret = logged.stdout.trim_end().to_owned();
    assert!(is_secret(&logged_secret), "{logged:?}");
    assert!(
        !logged.stderr.contains(&logged_secret) && !logged.stderr.contains(&e.root),
        "{}",
        logged.stderr
    );
    let new_secret = logged_secret;
    // With a grace and --json: the API's answer, secret included.
    let graced = e
        .run(&[
            "keys",
            "regenerate",
            &id,
            "--grace-period-seconds",
            "3600",
            "--json",
        ])
        .ok()
        .json();
    let newest = graced["secret"].as_str().unwrap().to_owned();
    assert!(is_secret(&newest));
    assert!(graced["previous_secret_expires_at"].is_string(), "{graced}");
    assert_eq!(e.verify(&new_secret), "VALID", "in its grace");
    assert_eq!(e.verify(&newest), "VALID");

    // Revoke: refused without --yes (nothing changes), final with it.
    let unconfirmed = e.run(&["keys", "revoke", &id]).failed();
    assert!(unconfirmed.stderr.contains("--yes"), "{unconfirmed:?}");
    assert_eq!(e.verify(&newest), "VALID");
    let revoked = e.run(&["keys", "revoke", &id, "--yes"]).ok();
    assert!(revoked.stdout.starts_with("Revoked key"), "{revoked:?}");
    assert_eq!(e.verify(&newest), "REVOKED");
    let again = e.run(&["keys", "update", &id, "--name", "x"]).failed();
    assert!(again.stderr.contains("Conflict (409)"), "{again:?}");
    let active = e.run(&["keys", "list", "--json"]).ok().json();
    assert!(
        !active.to_string().contains(&id),
        "revoked keys are not listed as active"
    );
    let revoked_list = e.run(&["keys", "list", "--status", "revoked"]).ok();
    assert!(revoked_list.stdout.contains(&id), "{revoked_list:?}");

    // Delete: refused without --yes, gone with it.
    e.run(&["keys", "delete", &id]).failed();
    let deleted = e.run(&["keys", "delete", &id, "--yes"]).ok();
    assert_eq!(deleted.stdout, format!("Deleted key {id}.\n"));
    let gone = e.run(&["keys", "get", &id]).failed();
    assert!(
        gone.stderr.starts_with("keyward: Not found (404)"),
        "{gone:?}"
    );

    // An idempotent create: the retry answers the same key, without a secret.
    let first = e
        .run(&[
            "keys",
            "create",
            "--name",
            "once",
            "--preset",
            "read-only",
            "--idempotency-key",
            "job-42",
            "--json",
        ])
        .ok()
        .json();
    assert!(is_secret(first["secret"].as_str().unwrap()), "{first}");
    let retry = e
        .run(&[
            "keys",
            "create",
            "--name",
            "once",
            "--preset",
            "read-only",
            "--idempotency-key",
            "job-42",
        ])
        .ok();
    assert_eq!(retry.stdout, "", "no secret the second time: {retry:?}");
    assert!(retry.stderr.contains("No secret"), "{retry:?}");
    assert!(retry.stderr.contains(first["key"]["id"].as_str().unwrap()));
}

fn a_stale_version_changes_nothing_and_says_so(backend: &Backend) {
    let e = env(backend);
    let created = e
        .run(&[
            "keys", "create", "--name", "guarded", "--scope", "read", "--json",
        ])
        .ok()
        .json();
    let id = created["key"]["id"].as_str().unwrap().to_owned();
    e.run(&["keys", "update", &id, "--description", "v2"]).ok();

    // Version 1 is stale now: each guarded command fails with a clear message, exit 1.
    for args in [
        vec!["keys", "update", &id, "--name", "other", "--if-match", "1"],
        vec!["keys", "regenerate", &id, "--if-match", "1"],
        vec!["keys", "revoke", &id, "--yes", "--if-match", "1"],
        vec!["keys", "delete", &id, "--yes", "--if-match", "1"],
    ] {
        let stale = e.run(&args).failed();
        assert!(
            stale.stderr.starts_with(
                "keyward: Precondition failed (412): the key was changed since it was read"
            ),
            "{args:?}: {stale:?}"
        );
        assert!(stale.stderr.contains("keyward keys get"), "{stale:?}");
    }
    let record = e.run(&["keys", "get", &id, "--json"]).ok().json();
    assert_eq!(
        (&record["name"], &record["version"], &record["status"]),
        (
            &Value::from("guarded"),
            &Value::from(2),
            &Value::from("active")
        ),
        "nothing changed"
    );
    assert_eq!(record["start"], created["key"]["start"], "not regenerated");
    // The current version passes.
    e.run(&["keys", "revoke", &id, "--yes", "--if-match", "2"])
        .ok();
}

fn bad_input_and_bad_keys_are_refused_clearly(backend: &Backend) {
    let e = env(backend);

    // The API's problem, field by field.
    let invalid = e
        .run(&["keys", "create", "--name", "x", "--rate-limit", "100000"])
        .failed();
    assert!(
        invalid.stderr.starts_with("keyward: Invalid request (400)"),
        "{invalid:?}"
    );
    assert!(
        invalid.stderr.contains("rate_limit_per_minute"),
        "{invalid:?}"
    );
    assert!(invalid.stderr.contains("scopes"), "{invalid:?}");

    // A wrong key: 401, said plainly, the key not repeated.
    let wrong = "kw_live_0000000000000000000000000000000000000A";
    let refused = e.run_as(wrong, &["keys", "list"]).failed();
    assert!(
        refused.stderr.starts_with("keyward: Unauthorized (401)"),
        "{refused:?}"
    );
    assert!(refused.stderr.contains("KEYWARD_API_KEY"), "{refused:?}");
    assert!(!refused.stderr.contains(wrong), "{refused:?}");
    // A key that is valid but no admin: 403.
    let reader = e
        .run(&["keys", "create", "--name", "reader", "--scope", "read"])
        .ok()
        .stdout
        .trim_end()
        .to_owned();
    let forbidden = e.run_as(&reader, &["usage"]).failed();
    assert!(
        forbidden.stderr.starts_with("keyward: Forbidden (403)"),
        "{forbidden:?}"
    );
    assert!(!forbidden.stderr.contains(&reader));

    // No key at all: nothing is sent, and the message says where a key comes from.
    let missing = keyward(&["keys", "list"], &[("KEYWARD_ENDPOINT", &e.server.base)]).failed();
    assert!(
        missing.stderr.contains("no admin API key")
            && missing.stderr.contains("KEYWARD_API_KEY")
            && missing.stderr.contains("--api-key-file"),
        "{missing:?}"
    );

    // The key from a file, whitespace around it ignored; the file wins over the variable.
    let file = e.tmp.path().join("root.key");
    std::fs::write(&file, format!("{}\n", e.root)).unwrap();
    let from_file = e.run_as(
        wrong,
        &["keys", "list", "--api-key-file", file.to_str().unwrap()],
    );
    assert!(from_file.ok().stdout.contains("root"));
    let absent = e.tmp.path().join("absent.key");
    let unreadable = e
        .run(&["keys", "list", "--api-key-file", absent.to_str().unwrap()])
        .failed();
    assert!(
        unreadable.stderr.contains("read the API key file"),
        "{unreadable:?}"
    );
}

fn usage_and_audit_are_reported(backend: &Backend) {
    let e = env(backend);
    let created = e
        .run(&[
            "keys", "create", "--name", "busy", "--scope", "read", "--json",
        ])
        .ok()
        .json();
    let id = created["key"]["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert_eq!(e.verify(&secret), "VALID");
    assert_eq!(e.verify(&secret), "VALID");

    // The audit log, newest first, as a table and as the API's page.
    let audit = e.run(&["audit"]).ok();
    let first_row = audit.stdout.lines().nth(1).unwrap_or_default();
    assert!(
        first_row.contains("key.created") && first_row.contains(&id),
        "{}",
        audit.stdout
    );
    assert!(
        !audit.stdout.contains(&secret),
        "no secret in the audit log"
    );
    let page = e.run(&["audit", "--limit", "1", "--json"]).ok().json();
    assert_eq!(page["items"][0]["action"], "key.created");
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let human = e.run(&["audit", "--limit", "1"]).ok();
    assert!(human.stderr.contains(&format!("--cursor {cursor}")));
    let older = e
        .run(&["audit", "--limit", "1", "--cursor", &cursor, "--json"])
        .ok()
        .json();
    assert_ne!(older["items"][0]["id"], page["items"][0]["id"]);

    // Usage, once the engine has flushed and the aggregator has run (about 15 s).
    let deadline = Instant::now() + Duration::from_secs(45);
    let usage = loop {
        let usage = e.run(&["usage", "--key", &id, "--json"]).ok().json();
        if usage["request_count"] == 2 {
            break usage;
        }
        assert!(Instant::now() < deadline, "usage not rolled up: {usage}");
        std::thread::sleep(Duration::from_secs(2));
    };
    assert_eq!(usage["days"][0]["valid"], 2, "{usage}");
    let today = usage["to"].as_str().unwrap().to_owned();
    let human = e.run(&["usage", "--key", &id, "--days", "7"]).ok();
    assert!(
        human
            .stdout
            .starts_with(&format!("Key {id}: 2 requests in all, last used")),
        "{}",
        human.stdout
    );
    let day_row = human
        .stdout
        .lines()
        .find(|l| l.starts_with(&today))
        .unwrap_or_else(|| panic!("no row for {today}: {}", human.stdout));
    assert_eq!(
        day_row.split_whitespace().collect::<Vec<_>>(),
        [today.as_str(), "2", "0", "0", "2"]
    );
    let account = e.run(&["usage", "--days", "2", "--json"]).ok().json();
    assert!(account["days"][0]["valid"].as_u64() >= Some(2), "{account}");
    let from =
        chrono::NaiveDate::parse_from_str(account["from"].as_str().unwrap(), "%Y-%m-%d").unwrap();
    let to =
        chrono::NaiveDate::parse_from_str(account["to"].as_str().unwrap(), "%Y-%m-%d").unwrap();
    assert_eq!((to - from).num_days(), 1, "--days 2 is today and yesterday");
    let human = e.run(&["usage"]).ok();
    assert!(
        human.stdout.starts_with("Account default:"),
        "{}",
        human.stdout
    );
    let bad = keyward(
        &["usage", "--days", "0"],
        &[
            ("KEYWARD_ENDPOINT", &e.server.base),
            ("KEYWARD_API_KEY", &e.root),
        ],
    );
    assert_eq!(bad.code, 2, "a usage error: {bad:?}");
}

/// Without a server: an endpoint nothing listens on, and one that is no URL.
#[test]
fn an_unreachable_or_malformed_endpoint_is_named() {
    let key = (
        "KEYWARD_API_KEY",
        "kw_live_0000000000000000000000000000000000000A",
    );
    let down = keyward(
        &["keys", "list", "--endpoint", "http://127.0.0.1:1"],
        &[key],
    )
    .failed();
    assert!(
        down.stderr
            .starts_with("keyward: could not reach http://127.0.0.1:1"),
        "{down:?}"
    );
    assert!(!down.stderr.contains(key.1));
    let malformed = keyward(
        &["audit"],
        &[key, ("KEYWARD_ENDPOINT", "localhost:8080?x=1")],
    )
    .failed();
    assert!(
        malformed.stderr.starts_with("keyward: invalid endpoint"),
        "{malformed:?}"
    );
}
