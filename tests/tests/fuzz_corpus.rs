//! Replays every committed fuzz input (`fuzz/corpus/<target>/*`) through the check its fuzz
//! target runs (`keyward_e2e::fuzz_checks`), so the ordinary `cargo test` keeps every crash that
//! fuzzing found fixed, with no cargo-fuzz and no nightly features. `docs/fuzzing.md` says how
//! to fuzz for new inputs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed check panics

use std::collections::BTreeSet;
use std::panic::catch_unwind;
use std::path::{Path, PathBuf};

use keyward_e2e::fuzz_checks::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// Runs `target`'s check on each of its corpus files, and names every file that fails.
fn replay(target: &str) {
    let check = TARGETS.iter().find(|(n, _)| *n == target).unwrap().1;
    let dir = fuzz_dir().join("corpus").join(target);
    let inputs = keyward_e2e::read_tree(&dir);
    assert!(!inputs.is_empty(), "{} holds no input", dir.display());
    let failed: Vec<String> = inputs
        .iter()
        .filter(|(_, data)| catch_unwind(|| check(data)).is_err())
        .map(|(path, _)| path.display().to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} inputs fail the {target} check (their panics are above):\n{}",
        failed.len(),
        inputs.len(),
        failed.join("\n")
    );
}

#[test]
fn token_corpus() {
    replay("token");
}

#[test]
fn authorizer_event_corpus() {
    replay("authorizer_event");
}

#[test]
fn route_policy_corpus() {
    replay("route_policy");
}

#[test]
fn request_json_corpus() {
    replay("request_json");
}

#[test]
fn request_parts_corpus() {
    replay("request_parts");
}

/// The authorizer's JSON reader is keyward's own, so beyond the corpus its check also runs on
/// thousands of mutations of every real event fixture: bytes flipped, cut or repeated, and
/// JSON's own tokens (quotes, escapes, brackets, duplicate keys, multi-byte text) dropped in
/// where they break or bend the structure. Deterministic (a fixed seed), about a second.
#[test]
fn authorizer_event_check_holds_on_mutated_fixtures() {
    const TOKENS: &[&[u8]] = &[
        b"\"",
        b"\\",
        b"\\u",
        b"\\ud83d",
        b"\\ude00",
        b"\\u0041",
        b"{",
        b"}",
        b"[",
        b"]",
        b",",
        b":",
        b"null",
        b"true",
        b"-0.5e+3",
        b"01",
        b" ",
        b"\n",
        b"\x01",
        b"\xc3\xa9",
        b"\xff",
        b"\"headers\":",
        b"\"type\":\"REQUEST\",",
        b"\"requestContext\":{\"http\":{}},",
        b"\"identitySource\":[null,\"a\"],",
        b"[[[[[[[[",
        b"]]]]]]]]",
        b"\\/",
        b"\\u00E9",
        b"1e400",
        b"\"x-api-key\":\"k\",",
        &[b'['; 130],
    ];
    let check = TARGETS
        .iter()
        .find(|(n, _)| *n == "authorizer_event")
        .unwrap()
        .1;
    let fixtures =
        keyward_e2e::read_tree(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/events"));
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = |bound: usize| {
        // xorshift64*: enough to spread mutations, and the same every run.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % bound.max(1)
    };
    let mut runs = 0;
    for (path, original) in fixtures
        .iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "json"))
    {
        for _ in 0..400 {
            let mut data = original.clone();
            for _ in 0..1 + next(3) {
                let at = next(data.len() + 1);
                match next(5) {
                    0 => data.truncate(at),
                    1 if at < data.len() => data[at] ^= 1 << next(8),
                    2 if at < data.len() => {
                        data.remove(at);
                    }
                    3 => {
                        let end = (at + next(64)).min(data.len());
                        let part = data[at..end].to_vec();
                        data.splice(at..at, part);
                    }
                    _ => {
                        let token = TOKENS[next(TOKENS.len())];
                        data.splice(at..at, token.iter().copied());
                    }
                }
            }
            if catch_unwind(|| check(&data)).is_err() {
                panic!(
                    "a mutation of {} fails the check: {:?}",
                    path.display(),
                    String::from_utf8_lossy(&data)
                );
            }
            runs += 1;
        }
    }
    assert!(runs >= 10_000, "{runs} mutations");
}

/// A target added to one place and not the others would go unreplayed (or unfuzzed).
#[test]
fn every_target_has_a_fuzz_target_a_corpus_and_a_replay() {
    let names = |sub: &str, strip: &str| -> BTreeSet<String> {
        std::fs::read_dir(fuzz_dir().join(sub))
            .unwrap()
            .flatten()
            .map(|e| {
                e.file_name()
                    .to_string_lossy()
                    .trim_end_matches(strip)
                    .to_owned()
            })
            .collect()
    };
    let checks: BTreeSet<String> = TARGETS.iter().map(|(n, _)| (*n).to_owned()).collect();
    assert_eq!(names("fuzz_targets", ".rs"), checks);
    assert_eq!(names("corpus", ""), checks);
    let this = include_str!("fuzz_corpus.rs");
    for name in &checks {
        assert!(
            this.contains(&format!("replay(\"{name}\")")),
            "{name} is not replayed"
        );
    }
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    for name in &checks {
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "{name} is not a [[bin]]"
        );
    }
}

/// No committed input may look like a live key to a secret scanner (SECURITY.md): token
/// seeds use the `kw_fuzz` prefix, and the token check tries `kw_live`/`kw_test` itself.
#[test]
fn no_corpus_input_looks_like_a_real_key() {
    let alnum = |b: &u8| b.is_ascii_alphanumeric();
    for (path, data) in keyward_e2e::read_tree(&fuzz_dir().join("corpus")) {
        for at in 0..data.len() {
            let rest = &data[at..];
            let prefixed = rest.starts_with(b"kw_live_") || rest.starts_with(b"kw_test_");
            let body = rest.get(8..).unwrap_or_default();
            let looks_like_a_key = prefixed && body.iter().take_while(|b| alnum(b)).count() >= 38;
            assert!(
                !looks_like_a_key,
                "{} holds a key-shaped string",
                path.display()
            );
        }
    }
}
