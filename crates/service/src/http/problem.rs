//! RFC 9457 problem documents, and the single mapping from every error to an HTTP status.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keyward_core::validation::FieldError;
use serde::Serialize;

use crate::error::ServiceError;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// `{"type", "title", "status", "detail", "errors": [{"field", "message"}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub errors: Vec<FieldError>,
}

impl Problem {
    pub fn new(status: StatusCode, slug: &str, title: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("urn:keyward:problem:{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    pub fn invalid(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            many => format!("{} fields are invalid", many.len()),
        };
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid-request",
            "Invalid request",
            detail,
        )
        .with_errors(errors)
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Request body too large",
            format!("the request body must be at most {limit} bytes"),
        )
    }

    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            "send the body as JSON with Content-Type: application/json",
        )
    }

    pub fn not_found_route() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            "no such endpoint; see /v1/openapi.json",
        )
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method not allowed",
            "this endpoint does not accept that method",
        )
    }

    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<ServiceError> for Problem {
    fn from(e: ServiceError) -> Self {
        use ServiceError as E;
        match e {
            E::Invalid(v) => Self::invalid(v.0),
            E::Unauthenticated(msg) => Self::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Unauthorized",
                msg,
            ),
            E::Forbidden(msg) => Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", msg),
            E::NotFound(what) => Self::new(
                StatusCode::NOT_FOUND,
                "not-found",
                "Not found",
                format!("no such {what}"),
            ),
            E::NameTaken(what, name) => Self::new(
                StatusCode::CONFLICT,
                "name-taken",
                "Name already in use",
                format!("a {what} named '{name}' already exists"),
            )
            .with_errors(vec![FieldError::new(
                "name",
                "already in use in this account",
            )]),
            E::Conflict(msg) => Self::new(StatusCode::CONFLICT, "conflict", "Conflict", msg),
            E::Unprocessable(msg) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unprocessable",
                "Unprocessable request",
                msg,
            ),
            E::PreconditionFailed => Self::new(
                StatusCode::PRECONDITION_FAILED,
                "precondition-failed",
                "Precondition failed",
                "the key was changed since it was read; fetch it again and retry",
            ),
            E::Internal(msg) => {
                // The detail stays generic; the cause goes to the log (store errors carry no
                // secrets: the hash is never in a message and the token never reaches a store).
                tracing::error!(error = %msg, "internal error");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Internal error",
                    "an internal error occurred; it has been logged",
                )
            }
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let unauthenticated = status == StatusCode::UNAUTHORIZED;
        let mut response = (status, axum::Json(self)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if unauthenticated {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"keyward\""),
            );
        }
        response
    }
}

impl IntoResponse for ServiceError {
    fn into_response(self) -> Response {
        Problem::from(self).into_response()
    }
}
