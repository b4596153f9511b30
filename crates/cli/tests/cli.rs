//! The `keyward` command's own contract: help, and clear refusals of bad start-up input.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed check panics

use std::process::{Command, Output};

fn keyward(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keyward"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn help_names_the_commands() {
    let o = keyward(&["--help"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("serve"));
}

#[test]
fn bad_flags_are_refused_with_the_rule() {
    let o = keyward(&["serve", "--prefix", "Bad-Prefix"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("lowercase letters or digits"),
        "{}",
        stderr(&o)
    );
    let o = keyward(&["serve", "--listen", "not-an-address"]);
    assert!(!o.status.success());
    let o = keyward(&["serve", "--account", "a b"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("account id"), "{}", stderr(&o));
}

#[test]
fn a_database_without_its_pepper_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("keyward.db"), b"").unwrap();
    let o = keyward(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no pepper file"), "{}", stderr(&o));
}

#[test]
fn a_corrupt_pepper_is_refused_without_echoing_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pepper"), "zz-not-hex-zz-secretish").unwrap();
    let o = keyward(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("pepper file") && err.contains("hexadecimal"),
        "{err}"
    );
    assert!(
        !err.contains("secretish"),
        "the pepper's content is never printed"
    );
}

#[test]
fn a_taken_port_is_a_clear_error() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let o = keyward(&[
        "serve",
        "--listen",
        &addr,
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("could not listen"), "{}", stderr(&o));
}

#[test]
fn authorize_explains_a_fixture_and_refuses_a_broken_event() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/events/example-apigw-custom-auth-request.json"
    );
    let o = keyward(&[
        "authorize",
        "--data-dir",
        data.to_str().unwrap(),
        "--event",
        fixture,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for step in [
        "1. event: REST TOKEN",
        "token: authorizationToken",
        "decision: NOT_FOUND (HTTP 401)",
        "answer: Unauthorized",
    ] {
        assert!(out.contains(step), "missing '{step}' in:\n{out}");
    }
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"type": "WEBSOCKET"}"#).unwrap();
    let o = keyward(&[
        "authorize",
        "--data-dir",
        data.to_str().unwrap(),
        "--event",
        bad.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("not an API Gateway authorizer event"),
        "{}",
        stderr(&o)
    );
    let policy = dir.path().join("policy.json");
    std::fs::write(
        &policy,
        r#"{"routes": [{"method": "FETCH", "path": "/", "action": "read"}]}"#,
    )
    .unwrap();
    let o = keyward(&[
        "authorize",
        "--data-dir",
        data.to_str().unwrap(),
        "--event",
        fixture,
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("routes[0].method"), "{}", stderr(&o));
}
