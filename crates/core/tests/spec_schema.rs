//! The JSON Schema of spec files: the committed copy under `schemas/` matches the code.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed check panics

use std::path::PathBuf;

use keyward_core::spec::{KINDS, SCHEMA_FILE, document_schema, json_schema};

#[test]
fn the_committed_schema_matches_the_code() {
    let generated = serde_json::to_string_pretty(&json_schema()).unwrap() + "\n";
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(SCHEMA_FILE);
    if std::env::var_os("KEYWARD_WRITE_SCHEMAS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{SCHEMA_FILE} is out of date: run `KEYWARD_WRITE_SCHEMAS=1 cargo test -p keyward-core --test spec_schema` and commit it"
    );
}

#[test]
fn every_kind_has_a_closed_document_schema() {
    for kind in KINDS {
        let schema = document_schema(kind).unwrap();
        assert_eq!(schema["properties"]["kind"]["const"], kind);
        assert_eq!(schema["additionalProperties"], false, "{kind}");
        assert!(schema["properties"]["$schema"].is_object(), "{kind}");
    }
    assert!(document_schema("Nope").is_none());
}
