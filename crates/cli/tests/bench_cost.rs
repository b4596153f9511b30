//! `keyward bench cost` as an operator runs it: both scenarios in text, the same as JSON, and
//! bad model inputs refused with the flag to fix.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed check panics

use std::process::{Command, Output};

fn keyward(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keyward"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

/// A small model (fast in a debug build), its engine bound stated so the default TTL is 4 s.
const SMALL: &[&str] = &[
    "bench",
    "cost",
    "--keys",
    "200",
    "--rps",
    "50",
    "--minutes",
    "2",
    "--engine-bound-ms",
    "1000",
];

#[test]
fn bench_cost_prints_both_scenarios_and_the_same_as_json() {
    let o = keyward(SMALL);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.contains("authorizer result cache on: TTL 4 s"),
        "{text}"
    );
    assert!(
        text.contains("authorizer result cache off: TTL 0 s"),
        "{text}"
    );
    assert_eq!(
        text.matches("total beyond API Gateway").count(),
        2,
        "{text}"
    );
    assert!(text.contains("the result cache saves $"), "{text}");

    let o = keyward(&[SMALL, &["--json"]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let scenarios = json["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 2);
    let (on, off) = (&scenarios[0]["report"], &scenarios[1]["report"]);
    assert_eq!(on["authorizer_ttl_secs"], 4);
    assert_eq!(off["authorizer_ttl_secs"], 0);
    // Without the cache every request is an invocation; with it, fewer are, and cost less.
    assert!((off["invocations"].as_f64().unwrap() - 1e6).abs() < 1e-3);
    assert!(on["invocations"].as_f64().unwrap() < 1e6);
    assert!(on["total_usd"].as_f64().unwrap() < off["total_usd"].as_f64().unwrap());
    // The text shows the JSON's figures.
    let total = format!("{:.4}", on["total_usd"].as_f64().unwrap());
    assert!(text.contains(&total), "{total} not in {text}");
    for p in json["prices"].as_array().unwrap() {
        assert_eq!(p["region"], "us-east-1");
        assert!(
            p["source"]
                .as_str()
                .unwrap()
                .starts_with("https://aws.amazon.com/")
        );
    }
    assert_eq!(json["model"]["keys"], 200);
}

#[test]
fn bench_cost_refuses_a_bad_model_with_the_flag_to_fix() {
    for (flag, value) in [("--keys", "0"), ("--ttl-secs", "3601"), ("--rps", "0")] {
        let o = keyward(&["bench", "cost", flag, value]);
        assert!(!o.status.success(), "{flag} {value} was accepted");
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(stderr.contains(flag), "{flag}: {stderr}");
        assert!(o.stdout.is_empty(), "{flag}: printed a report");
    }
}
