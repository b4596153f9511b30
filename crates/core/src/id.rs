//! Identifiers: the one rule every id obeys (keys, groups, workspaces, accounts, preset
//! names), and how new ones are made.
//!
//! An id is 1 to 64 letters, digits, `_`, `-` or `.`, never `.` or `..`: short enough to be a
//! DynamoDB key part and a URL path segment as it is, and a valid resource-path segment (see
//! [`is_name`]), so an id can name a resource in a scope.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use crate::pattern;
use crate::permission::is_name;
use crate::token::{TokenError, random_base62};
use crate::validation::FieldError;

/// The longest id.
pub const MAX_ID_LEN: usize = 64;

/// The id rule, as every error message and the OpenAPI document state it.
pub const ID_RULE: &str = "an id is 1 to 64 letters, digits, '_', '-' or '.'";

/// The id rule as a JSON Schema pattern, exactly: 1 to [`MAX_ID_LEN`] of the characters, not
/// `.` or `..`.
pub fn id_pattern() -> String {
    format!("^{}$", pattern::segment(MAX_ID_LEN))
}

/// The schema of an id, the `Id` component of the OpenAPI document. Only a schema: id fields
/// stay `String` and say `#[schemars(with = "IdText")]`.
#[derive(Debug)]
pub struct IdText;

impl JsonSchema for IdText {
    fn schema_name() -> Cow<'static, str> {
        "Id".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "pattern": id_pattern(), "description": ID_RULE})
    }
}

/// Whether `s` is a valid id.
pub fn is_id(s: &str) -> bool {
    s.len() <= MAX_ID_LEN && is_name(s)
}

/// `s` as an id, or an error that names `field`.
pub fn check_id(field: &str, s: &str) -> Result<(), FieldError> {
    if is_id(s) {
        Ok(())
    } else {
        Err(FieldError::new(field, ID_RULE))
    }
}

/// A fresh identifier such as `key_3fJ9...`: 20 base62 characters (~119 bits) after the kind.
pub fn new_id(kind: &str) -> Result<String, TokenError> {
    Ok(format!("{kind}_{}", random_base62(20)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_one_rule() {
        for good in ["ws_1", "a", "A.b-c_d", &"x".repeat(64)] {
            assert!(is_id(good), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "é", &"x".repeat(65)] {
            assert!(!is_id(bad), "{bad}");
            assert_eq!(check_id("workspace", bad).unwrap_err().message, ID_RULE);
        }
        let id = new_id("key").unwrap();
        assert!(id.starts_with("key_") && is_id(&id) && id.len() == 24);
    }

    proptest::proptest! {
        #[test]
        fn the_pattern_states_the_rule(s in "[a-z._/ -]{0,3}|[A-Za-z0-9_.-]{60,70}") {
            let pattern = crate::pattern::tests::compile(&id_pattern());
            proptest::prop_assert_eq!(pattern.is_match(&s), is_id(&s), "{:?}", s);
        }
    }
}
