//! The `keyward` command's own contract: help, and clear refusals of bad start-up input.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed check panics

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn keyward(args: &[&str]) -> Output {
    keyward_with(args, &[])
}

fn keyward_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keyward"))
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("KEYWARD_PEPPER")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// A deployment in `data`, made the way an operator makes one: `keyward serve` started once
/// (it bootstraps the account) and stopped with SIGTERM.
fn deployment(data: &Path, extra: &[&str]) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keyward"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .args(extra)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let listening = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.starts_with("keyward: listening on"));
    assert!(listening, "keyward serve did not start");
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
}

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/events/example-apigw-custom-auth-request.json"
);

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
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
    deployment(&data, &[]);
    let fixture = FIXTURE;
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

#[test]
fn authorize_refuses_a_data_dir_without_a_deployment_and_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let authorize = |data: &Path, extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec![
            "authorize",
            "--data-dir",
            data.to_str().unwrap(),
            "--event",
            FIXTURE,
        ];
        args.extend_from_slice(extra);
        let o = keyward_with(&args, env);
        assert!(!o.status.success(), "refused: {}", stderr(&o));
        assert!(o.stdout.is_empty(), "no decision is printed");
        let err = stderr(&o);
        assert!(err.contains("holds no keyward deployment"), "{err}");
        err
    };

    // A mistyped directory: said so, and not created.
    let typo = tmp.path().join("typo");
    let err = authorize(&typo, &[], &[]);
    assert!(err.contains("the directory does not exist"), "{err}");
    assert!(
        err.contains("keyward serve --data-dir"),
        "says how to make one: {err}"
    );
    assert!(!typo.exists(), "nothing is created");

    // An empty directory, with or without a pepper in the environment: no database.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let err = authorize(&empty, &[], &[]);
    assert!(err.contains("no database"), "{err}");
    let pepper = "ab".repeat(32);
    let err = authorize(&empty, &[], &[("KEYWARD_PEPPER", &pepper)]);
    assert!(err.contains("no database"), "{err}");
    assert!(listing(&empty).is_empty(), "nothing is created");

    // A database without its pepper.
    let real = tmp.path().join("real");
    deployment(&real, &[]);
    let copy = tmp.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    std::fs::copy(real.join("keyward.db"), copy.join("keyward.db")).unwrap();
    let err = authorize(&copy, &[], &[]);
    assert!(
        err.contains("no pepper file") && err.contains("KEYWARD_PEPPER"),
        "{err}"
    );
    assert_eq!(listing(&copy), ["keyward.db"], "no pepper is made up");

    // A real deployment, but not of this account.
    let before = listing(&real);
    let err = authorize(&real, &["--account", "other"], &[]);
    assert!(err.contains("no account 'other'"), "{err}");
    assert_eq!(listing(&real), before);
}

#[test]
fn authorize_bounds_the_event_file() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    let big = tmp.path().join("big.json");
    std::fs::write(&big, vec![b' '; 2 * 1024 * 1024]).unwrap();
    for event in ["/dev/zero", big.to_str().unwrap()] {
        let start = Instant::now();
        let o = keyward(&[
            "authorize",
            "--data-dir",
            data.to_str().unwrap(),
            "--event",
            event,
        ]);
        assert!(!o.status.success());
        assert!(stderr(&o).contains("larger than 1 MiB"), "{}", stderr(&o));
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{event} is refused, not read to the end"
        );
    }
    assert!(!data.exists());
}

/// The DynamoDB Local that the test command starts (see README).
fn dynamodb_endpoint() -> String {
    std::env::var("KEYWARD_TEST_DYNAMODB_ENDPOINT").unwrap_or_else(|_| {
        panic!("KEYWARD_TEST_DYNAMODB_ENDPOINT is not set: run ./scripts/test, which starts DynamoDB Local")
    })
}

#[test]
fn authorize_refuses_a_table_without_a_deployment() {
    let endpoint = dynamodb_endpoint();
    let tmp = tempfile::tempdir().unwrap();
    let pepper = "cd".repeat(32);
    let suffix = std::process::id();
    let authorize = |table: &str| {
        let store = format!("dynamodb://{table}?endpoint={endpoint}");
        let o = keyward_with(
            &[
                "authorize",
                "--store",
                &store,
                "--data-dir",
                tmp.path().join("d").to_str().unwrap(),
                "--event",
                FIXTURE,
            ],
            &[("KEYWARD_PEPPER", &pepper)],
        );
        assert!(!o.status.success());
        stderr(&o)
    };
    let missing = format!("kw-cli-missing-{suffix}");
    let err = authorize(&missing);
    assert!(
        err.contains("holds no keyward deployment") && err.contains("does not exist"),
        "{err}"
    );
    assert!(err.contains("keyward store init"), "{err}");

    // A table made by `store init` but never served: no account record.
    let fresh = format!("kw-cli-fresh-{suffix}");
    let o = keyward(&[
        "store",
        "init",
        "--store",
        &format!("dynamodb://{fresh}?endpoint={endpoint}"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = authorize(&fresh);
    assert!(err.contains("no account 'default'"), "{err}");
    assert!(
        err.contains("keyward serve --store dynamodb://"),
        "says how to make one: {err}"
    );
    assert!(!tmp.path().join("d").exists(), "nothing is created");
}
