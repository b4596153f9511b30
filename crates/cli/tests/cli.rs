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
