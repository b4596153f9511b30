//! The one place errors become HTTP answers: every handler and extractor fails with an
//! [`HttpError`], which is either a problem document already (a request the edge refused) or a
//! [`ServiceError`], mapped here to its status and problem document.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keyward_api::problem::{PROBLEM_JSON, Problem};
use keyward_core::validation::FieldError;
use keyward_service::ServiceError;

/// What a handler or extractor fails with.
#[derive(Debug)]
pub enum HttpError {
    Problem(Problem),
    Service(ServiceError),
}

impl From<Problem> for HttpError {
    fn from(p: Problem) -> Self {
        Self::Problem(p)
    }
}

impl From<ServiceError> for HttpError {
    fn from(e: ServiceError) -> Self {
        Self::Service(e)
    }
}

impl HttpError {
    /// The problem document this error answers with.
    pub fn problem(self) -> Problem {
        match self {
            Self::Problem(p) => p,
            Self::Service(e) => problem_of(e),
        }
    }
}

/// The status and problem document of every service error.
fn problem_of(e: ServiceError) -> Problem {
    use ServiceError as E;
    match e {
        E::Invalid(v) => Problem::invalid(v.0),
        E::Unauthenticated(msg) => Problem::new(401, "unauthenticated", "Unauthorized", msg),
        E::Forbidden(msg) => Problem::new(403, "forbidden", "Forbidden", msg),
        E::NotFound(what) => Problem::new(404, "not-found", "Not found", format!("no such {what}")),
        E::NameTaken(what, name) => Problem::new(
            409,
            "name-taken",
            "Name already in use",
            format!(
                "a {what} named '{name}', or one that differs from it only in case, width or Unicode form, already exists"
            ),
        )
        .with_errors(vec![FieldError::new(
            "name",
            "already in use in this account (names are compared after NFKC case folding)",
        )]),
        E::Conflict(msg) => Problem::new(409, "conflict", "Conflict", msg),
        E::Unprocessable(msg) => Problem::new(422, "unprocessable", "Unprocessable request", msg),
        E::Unavailable { retry_after_secs } => Problem::new(
            503,
            "unavailable",
            "Service unavailable",
            format!("the key store cannot answer now; retry in {retry_after_secs} s"),
        ),
        E::RateLimited { retry_after_secs } => Problem::new(
            429,
            "rate-limited",
            "Too many requests",
            format!(
                "this key made as many management calls this minute as the deployment allows; retry in {retry_after_secs} s"
            ),
        ),
        E::PreconditionFailed => Problem::new(
            412,
            "precondition-failed",
            "Precondition failed",
            "the key was changed since it was read; fetch it again and retry",
        ),
        E::Internal(msg) => {
            // The detail stays generic; the cause goes to the log (store errors carry no
            // secrets: the hash is never in a message and the token never reaches a store).
            tracing::error!(error = %msg, "internal error");
            Problem::new(
                500,
                "internal",
                "Internal error",
                "an internal error occurred; it has been logged",
            )
        }
    }
}

/// A problem document as an HTTP response: its status, `application/problem+json`, and a
/// `WWW-Authenticate` challenge on 401.
pub fn respond(problem: Problem) -> Response {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, axum::Json(problem)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    if status == StatusCode::UNAUTHORIZED {
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"keyward\""),
        );
    }
    response
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let retry_after = match &self {
            Self::Service(
                ServiceError::Unavailable { retry_after_secs }
                | ServiceError::RateLimited { retry_after_secs },
            ) => Some(*retry_after_secs),
            _ => None,
        };
        let mut response = respond(self.problem());
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
