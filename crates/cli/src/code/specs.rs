//! Spec files read and checked offline: the schema (`schemas/keyward-spec.schema.json`), the
//! core's rules (the API's own texts), and the rules across documents (duplicate names). Every
//! error is reported at once, with its file, line, column and JSON pointer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::Utc;
use jsonschema::Validator;
use jsonschema::error::ValidationErrorKind;
use keyward_core::spec::{self, Context, KINDS, SecretSpec, Spec};
use serde_json::Value;

use super::source::{self, Document, SourceError};

/// A spec document that passed every offline check.
#[derive(Debug, Clone)]
pub struct Checked {
    pub spec: Spec,
}

/// Reads `paths` (files or directories) and checks every document. Relative sink paths are
/// made relative to the spec file that names them.
pub fn load(paths: &[PathBuf]) -> Result<Vec<Checked>, Vec<SourceError>> {
    let files = source::collect_files(paths)?;
    let (documents, mut errors) = source::read(&files);
    if documents.len() > spec::MAX_DOCUMENTS {
        return Err(vec![SourceError::new(
            paths.first().map_or(Path::new("."), PathBuf::as_path),
            format!(
                "{} documents; one run takes at most {}",
                documents.len(),
                spec::MAX_DOCUMENTS
            ),
        )]);
    }
    let validators = Validators::new();
    let mut checked = Vec::new();
    let mut origins = Vec::new();
    let parsed: Vec<Parsed> = documents.iter().map(|doc| validators.check(doc)).collect();
    let valid: Vec<&Spec> = parsed
        .iter()
        .filter(|p| p.errors.is_empty())
        .filter_map(|p| p.spec.as_ref())
        .collect();
    let ctx = Context::offline(&valid, Utc::now());
    for (doc, parsed) in documents.iter().zip(&parsed) {
        errors.extend(parsed.errors.iter().cloned());
        let Some(spec) = &parsed.spec else { continue };
        // The core's rules, in the API's words, also for a document with unreadable fields
        // (they were left out of it, and are reported above).
        let rule_errors: Vec<SourceError> = spec::check(spec, &ctx)
            .into_iter()
            .map(|e| (spec::pointer_of(&e.field), e.message))
            .filter(|(pointer, _)| !parsed.dropped.iter().any(|d| within(pointer, d)))
            .map(|(pointer, message)| doc.error(&pointer, message))
            .collect();
        if rule_errors.is_empty() && parsed.errors.is_empty() {
            origins.push(doc);
            checked.push(spec);
        }
        errors.extend(rule_errors);
    }
    let set_errors = spec::check_set(&checked);
    for e in set_errors {
        let doc = origins[e.document];
        let mut message = e.error.message;
        if let Some(first) = e.also.and_then(|i| origins.get(i)) {
            let at = first
                .position("/name")
                .map(|p| format!(":{p}"))
                .unwrap_or_default();
            message.push_str(&format!(" (first in {}{at})", first.file.display()));
        }
        errors.push(doc.error(&spec::pointer_of(&e.error.field), message));
    }
    if !errors.is_empty() {
        errors.sort_by(|a, b| {
            (&a.file, a.position.map(|p| (p.line, p.column)))
                .cmp(&(&b.file, b.position.map(|p| (p.line, p.column))))
        });
        return Err(errors);
    }
    Ok(origins
        .into_iter()
        .zip(checked)
        .map(|(doc, spec)| Checked {
            spec: with_resolved_sink(spec.clone(), &doc.file),
        })
        .collect())
}

/// A file sink's relative path, relative to the spec file's directory.
fn with_resolved_sink(mut spec: Spec, file: &Path) -> Spec {
    if let Spec::ApiKey(key) = &mut spec
        && let Some(SecretSpec::File { path }) = &mut key.secret
        && Path::new(path.as_str()).is_relative()
    {
        // Relative to the working directory as the spec file's path is, so a saved plan applied
        // from the same place in another checkout (a CI job) writes into that checkout.
        let joined = file.parent().unwrap_or(Path::new("")).join(path.as_str());
        *path = joined.to_string_lossy().into_owned();
    }
    spec
}

/// One compiled validator per kind, from the generated schema.
struct Validators(BTreeMap<&'static str, Validator>);

impl Validators {
    fn new() -> Self {
        Self(
            KINDS
                .iter()
                .filter_map(|kind| {
                    let schema = spec::document_schema(kind)?;
                    let validator = jsonschema::validator_for(&schema).ok()?;
                    Some((*kind, validator))
                })
                .collect(),
        )
    }

    /// The document as a spec, and every way it breaks the schema. Structural errors (a wrong
    /// type, an unknown or missing field) are the schema's to tell, and stop there. A value
    /// that does not read (a date without its time) is reported at its field and left out, so
    /// the rest is still read and checked by the core's rules, whose texts are the API's.
    fn check(&self, doc: &Document) -> Parsed {
        let fail = |errors| Parsed {
            spec: None,
            errors,
            dropped: Vec::new(),
        };
        let kind = match doc.value.get("kind") {
            Some(Value::String(kind)) => kind.as_str(),
            Some(_) => return fail(vec![doc.error("/kind", kind_message("a string"))]),
            None => return fail(vec![doc.error("", kind_message("missing"))]),
        };
        let Some(validator) = self.0.get(kind) else {
            return fail(vec![doc.error("/kind", kind_message(&format!("'{kind}'")))]);
        };
        let (structural, rules): (Vec<_>, Vec<_>) = validator
            .iter_errors(&doc.value)
            .partition(|e| is_structural(&e.kind));
        if !structural.is_empty() {
            return fail(structural.iter().map(|e| schema_error(doc, e)).collect());
        }
        let mut value = doc.value.clone();
        if let Some(object) = value.as_object_mut() {
            object.remove("$schema");
            // Read as the kind's own type, so a field that does not read is found by its path
            // (through the tagged enum, serde loses it).
            object.remove("kind");
        }
        let mut errors = Vec::new();
        let mut dropped: Vec<String> = Vec::new();
        loop {
            match read_kind(kind, &value) {
                Ok(spec) => {
                    return Parsed {
                        spec: Some(spec),
                        errors,
                        dropped,
                    };
                }
                Err(e) => {
                    let pointer = spec::pointer_of(&e.path().to_string());
                    let field = pointer.split('/').nth(1).unwrap_or_default().to_owned();
                    let top = format!("/{field}");
                    let removable = !field.is_empty()
                        && !dropped.contains(&top)
                        && !["kind", "name"].contains(&field.as_str());
                    errors.push(doc.error(&pointer, read_message(&pointer, &e.into_inner())));
                    if !removable {
                        // Nothing more can be read: say what the schema says of the rest.
                        errors.extend(rules.iter().map(|e| schema_error(doc, e)));
                        return fail(errors);
                    }
                    if let Some(object) = value.as_object_mut() {
                        object.remove(&field);
                    }
                    dropped.push(top);
                }
            }
        }
    }
}

/// A document's members (without `kind`) as the spec of `kind`.
fn read_kind(
    kind: &str,
    value: &Value,
) -> Result<Spec, serde_path_to_error::Error<serde_json::Error>> {
    match kind {
        "ApiKey" => serde_path_to_error::deserialize(value).map(|k| Spec::ApiKey(Box::new(k))),
        "SharingGroup" => serde_path_to_error::deserialize(value).map(Spec::SharingGroup),
        "Preset" => serde_path_to_error::deserialize(value).map(Spec::Preset),
        "RoutePolicy" => serde_path_to_error::deserialize(value).map(Spec::RoutePolicy),
        // Not reached: the kind was matched to a schema first. The enum reads it (and fails).
        _ => serde_path_to_error::deserialize(value),
    }
}

/// A document read as a spec, with what did not read.
struct Parsed {
    /// The spec, without the fields in `dropped`; `None` when it could not be read at all.
    spec: Option<Spec>,
    errors: Vec<SourceError>,
    /// Top-level fields left out because their values did not read.
    dropped: Vec<String>,
}

/// Whether `pointer` is `field` or inside it.
fn within(pointer: &str, field: &str) -> bool {
    pointer == field || pointer.starts_with(&format!("{field}/"))
}

/// A value that did not read, said for people (dates get their expected form).
fn read_message(pointer: &str, error: &serde_json::Error) -> String {
    let text = error.to_string();
    if pointer.ends_with("expires_at") {
        return format!(
            "an RFC 3339 date and time with its offset, such as 2027-06-30T00:00:00Z ({text})"
        );
    }
    text
}

/// A schema error, said for people: an unknown field by name, a pattern or a choice without
/// the machinery (the regular expression) behind it.
fn schema_error(doc: &Document, e: &jsonschema::ValidationError<'_>) -> SourceError {
    let pointer = e.instance_path.to_string();
    let shown = e.instance.to_string();
    let shown: String = if shown.chars().count() > 80 {
        shown.chars().take(77).chain("...".chars()).collect()
    } else {
        shown
    };
    match &e.kind {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let field = unexpected.join("', '");
            let at = unexpected
                .first()
                .map_or(pointer.clone(), |u| source::child_pointer(&pointer, u));
            doc.error(&at, format!("unknown field '{field}'"))
        }
        ValidationErrorKind::Pattern { .. } | ValidationErrorKind::Format { .. } => doc.error(
            &pointer,
            format!("{shown} does not have the form this field takes"),
        ),
        ValidationErrorKind::AnyOf { .. }
        | ValidationErrorKind::OneOfNotValid { .. }
        | ValidationErrorKind::OneOfMultipleValid { .. } => doc.error(
            &pointer,
            format!("{shown} is none of the forms this field takes"),
        ),
        _ => doc.error(&pointer, e.to_string()),
    }
}

/// Whether a schema error is about the document's shape rather than a rule of a value.
fn is_structural(kind: &ValidationErrorKind) -> bool {
    matches!(
        kind,
        ValidationErrorKind::Type { .. }
            | ValidationErrorKind::AdditionalProperties { .. }
            | ValidationErrorKind::Required { .. }
            | ValidationErrorKind::Constant { .. }
            | ValidationErrorKind::Enum { .. }
            | ValidationErrorKind::FalseSchema
    )
}

fn kind_message(got: &str) -> String {
    format!("`kind` must be one of {} (got {got})", KINDS.join(", "))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed check panics
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn good_files_load_with_sinks_relative_to_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("team")).unwrap();
        write(
            &dir.path().join("team"),
            "keys.yaml",
            "# yaml-language-server: $schema=../schemas/keyward-spec.schema.json\nkind: ApiKey\nname: ci\nscopes: [read]\ngroups: [platform]\nsecret: {sink: file, path: secrets/ci.key}\n---\nkind: SharingGroup\nname: platform\n",
        );
        write(
            dir.path(),
            "presets.json",
            r#"[{"$schema": "x", "kind": "Preset", "name": "runner", "scopes": ["agent:executor"]}]"#,
        );
        let checked = load(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(checked.len(), 3);
        let key = checked.iter().find(|c| c.spec.kind() == "ApiKey").unwrap();
        let Spec::ApiKey(k) = &key.spec else {
            unreachable!()
        };
        let Some(SecretSpec::File { path }) = &k.secret else {
            panic!()
        };
        assert!(path.ends_with("team/secrets/ci.key"), "{path}");
    }

    #[test]
    fn a_value_that_does_not_read_leaves_the_rest_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "d.yaml",
            "kind: ApiKey\nname: d\nexpires_at: 2030-01-01\nscopes: [agent:admin]\nallowed_cidrs: [nope]\n",
        );
        let errors = load(&[file]).unwrap_err();
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 3, "{shown:#?}");
        assert!(
            shown[0].contains("d.yaml:3:13: an RFC 3339 date and time"),
            "{shown:#?}"
        );
        assert!(
            shown[1].contains("d.yaml:4:10:") && shown[1].contains("owner"),
            "{shown:#?}"
        );
        assert!(
            shown[2].contains("d.yaml:5:17: 'nope' is not an IP address"),
            "{shown:#?}"
        );
    }

    #[test]
    fn the_worked_example_validates() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/keys-as-code");
        let checked = load(&[example]).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(checked.len(), 6);
    }

    #[test]
    fn every_error_is_reported_with_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(
            dir.path(),
            "a.yaml",
            "kind: ApiKey\nname: ci\nscopes:\n  - read\n  - agent:admin\nrate_limit_per_minute: fast\ncolour: red\n---\nkind: Gadget\nname: x\n---\nkind: ApiKey\nname: ok\nscopes: [read]\nallowed_cidrs: [10.0.0.0/33]\n",
        );
        write(
            dir.path(),
            "b.yaml",
            "kind: ApiKey\nname: Dup\nscopes: [read]\n",
        );
        write(
            dir.path(),
            "c.json",
            r#"{"kind": "ApiKey", "name": "dup", "scopes": ["read"]}"#,
        );
        let errors = load(&[dir.path().to_path_buf()]).unwrap_err();
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let all = shown.join("\n");
        assert!(all.contains("a.yaml:6:"), "{all}");
        assert!(all.contains("colour"), "{all}");
        assert!(all.contains("`kind` must be one of"), "{all}");
        assert!(all.contains(":15:"), "the range error is placed: {all}");
        assert!(
            all.contains("c.json:1:28: ApiKey 'dup' is defined twice (first in "),
            "{all}"
        );
        // The schema error at /rate_limit_per_minute stops that document before the rules; the
        // role error of another document shows the valid roles.
        let _ = a;
        let role = write(
            dir.path(),
            "r.yaml",
            "kind: ApiKey\nname: r\nscopes: [agent:admin]\n",
        );
        let errors = load(&[role]).unwrap_err();
        assert_eq!(errors[0].pointer.as_deref(), Some("/scopes/0"));
        assert_eq!(errors[0].position.unwrap().line, 3);
        assert!(errors[0].message.contains("owner"), "{}", errors[0].message);
    }
}
