//! RFC 9457 problem documents, the shape of every error the management API answers. The `type`
//! is `urn:keyward:problem:<slug>`, stable for clients to match on.

pub use keyward_core::validation::FieldError;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The media type of a problem document.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// `{"type", "title", "status", "detail", "errors": [{"field", "message"}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub errors: Vec<FieldError>,
}

impl Problem {
    pub fn new(status: u16, slug: &str, title: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("urn:keyward:problem:{slug}"),
            title: title.to_owned(),
            status,
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    /// 400, naming every bad field.
    pub fn invalid(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            many => format!("{} fields are invalid", many.len()),
        };
        Self::new(400, "invalid-request", "Invalid request", detail).with_errors(errors)
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            413,
            "payload-too-large",
            "Request body too large",
            format!("the request body must be at most {limit} bytes"),
        )
    }

    pub fn unsupported_media_type() -> Self {
        Self::new(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            "send the body as JSON with Content-Type: application/json",
        )
    }

    pub fn not_found_route() -> Self {
        Self::new(
            404,
            "not-found",
            "Not found",
            "no such endpoint; see /v1/openapi.json",
        )
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "method-not-allowed",
            "Method not allowed",
            "this endpoint does not accept that method",
        )
    }
}
