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
