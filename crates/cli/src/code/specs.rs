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
    let specs: Vec<Option<Spec>> = documents
        .iter()
        .map(|doc| match validators.check(doc) {
            Ok(spec) => Some(spec),
            Err(e) => {
                errors.extend(e);
                None
            }
        })
        .collect();
    let valid: Vec<&Spec> = specs.iter().flatten().collect();
    let ctx = Context::offline(&valid, Utc::now());
    for (doc, spec) in documents.iter().zip(&specs) {
        let Some(spec) = spec else { continue };
        let rule_errors = spec::check(spec, &ctx);
        if rule_errors.is_empty() {
            origins.push(doc);
            checked.push(spec);
        } else {
            errors.extend(
                rule_errors
                    .into_iter()
                    .map(|e| doc.error(&spec::pointer_of(&e.field), e.message)),
            );
        }
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

/// A file sink's relative path, relative to the spec file's directory (made absolute).
fn with_resolved_sink(mut spec: Spec, file: &Path) -> Spec {
    if let Spec::ApiKey(key) = &mut spec
        && let Some(SecretSpec::File { path }) = &mut key.secret
        && Path::new(path.as_str()).is_relative()
    {
        let joined = file.parent().unwrap_or(Path::new("")).join(path.as_str());
        // Absolute, so a saved plan applied from another directory writes to the same file.
        let resolved = std::path::absolute(&joined).unwrap_or(joined);
        *path = resolved.to_string_lossy().into_owned();
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

    /// The document as a spec, or every way it breaks the schema.
    fn check(&self, doc: &Document) -> Result<Spec, Vec<SourceError>> {
        let kind = match doc.value.get("kind") {
            Some(Value::String(kind)) => kind.as_str(),
            Some(_) => return Err(vec![doc.error("/kind", kind_message("a string"))]),
            None => return Err(vec![doc.error("", kind_message("missing"))]),
        };
        let Some(validator) = self.0.get(kind) else {
            return Err(vec![doc.error("/kind", kind_message(&format!("'{kind}'")))]);
        };
        // Structural errors (a wrong type, an unknown or missing field) are the schema's to
        // tell. Rule-level ones (patterns, ranges, lengths, a scope's spelling) are left to
        // the core's rules, whose texts are the API's; the schema's stand in only when the
        // document cannot be read at all.
        let (structural, rules): (Vec<_>, Vec<_>) = validator
            .iter_errors(&doc.value)
            .partition(|e| is_structural(&e.kind));
        let place = |e: &jsonschema::ValidationError<'_>| {
            let pointer = e.instance_path.to_string();
            match &e.kind {
                ValidationErrorKind::AdditionalProperties { unexpected } => {
                    let field = unexpected.join("', '");
                    let at = unexpected.first().map_or(pointer.clone(), |u| {
                        format!("{pointer}/{}", u.replace('~', "~0").replace('/', "~1"))
                    });
                    doc.error(&at, format!("unknown field '{field}'"))
                }
                _ => doc.error(&pointer, e.to_string()),
            }
        };
        if !structural.is_empty() {
            return Err(structural.iter().map(place).collect());
        }
        let mut value = doc.value.clone();
        if let Some(object) = value.as_object_mut() {
            object.remove("$schema");
        }
        serde_json::from_value(value).map_err(|e| {
            if rules.is_empty() {
                vec![doc.error("", e.to_string())]
            } else {
                rules.iter().map(place).collect()
            }
        })
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
