//! What a call can fail with. The messages are what a person at a terminal reads, so each says
//! what happened and, where it can, what to do. None ever holds the API key or a secret.

use std::fmt::Write as _;

use keyward_api::Problem;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ClientError {
    /// The API refused the request with an RFC 9457 problem document.
    #[error("{}", describe(*status, problem))]
    Problem { status: u16, problem: Problem },
    /// An error status without a problem document: something in front of the API answered (a
    /// proxy, API Gateway), or the endpoint is not a keyward API.
    #[error("{message}")]
    Status { status: u16, message: String },
    /// No answer: the endpoint could not be reached, or did not answer in time.
    #[error("{0}")]
    Transport(String),
    /// A success answer whose body is not what the route answers.
    #[error("{0}")]
    Decode(String),
    /// A request that cannot be sent as asked (a header value that is not visible ASCII).
    #[error("{0}")]
    InvalidRequest(String),
    #[error("invalid endpoint: {0}")]
    InvalidEndpoint(String),
    /// The API key cannot be sent as a header (empty, or not visible ASCII).
    #[error("invalid API key: {0}")]
    InvalidApiKey(&'static str),
}

impl ClientError {
    /// The HTTP status the API answered, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Problem { status, .. } | Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The problem document, if the API answered one.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Self::Problem { problem, .. } => Some(problem),
            _ => None,
        }
    }

    /// 404: no such key, group or preset.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// 412: the record changed since the version given in `If-Match`.
    pub fn is_precondition_failed(&self) -> bool {
        self.status() == Some(412)
    }

    /// 409: the change conflicts with the record (a revoked key, a name in use, no lock-out).
    pub fn is_conflict(&self) -> bool {
        self.status() == Some(409)
    }

    /// 401: the API key is missing, unknown, revoked or expired.
    pub fn is_unauthenticated(&self) -> bool {
        self.status() == Some(401)
    }

    /// 403: the API key is valid but may not manage keys (or not from this address).
    pub fn is_forbidden(&self) -> bool {
        self.status() == Some(403)
    }
}

/// `Title (status): detail`, then every per-field error the detail does not already say, one
/// per line as `field: message`.
fn describe(status: u16, problem: &Problem) -> String {
    let mut text = format!("{} ({status})", problem.title);
    if !problem.detail.is_empty() {
        let _ = write!(text, ": {}", problem.detail);
    }
    for error in &problem.errors {
        let line = format!("{}: {}", error.field, error.message);
        if line != problem.detail {
            let _ = write!(text, "\n  {line}");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyward_api::problem::FieldError;

    #[test]
    fn a_problem_reads_as_title_detail_and_each_field() {
        let one = Problem::invalid(vec![FieldError::new("name", "required")]);
        let e = ClientError::Problem {
            status: 400,
            problem: one,
        };
        assert_eq!(e.to_string(), "Invalid request (400): name: required");

        let two = Problem::invalid(vec![
            FieldError::new("name", "required"),
            FieldError::new("scopes", "at least one scope"),
        ]);
        let e = ClientError::Problem {
            status: 400,
            problem: two,
        };
        assert_eq!(
            e.to_string(),
            "Invalid request (400): 2 fields are invalid\n  name: required\n  scopes: at least one scope"
        );
        assert_eq!(e.status(), Some(400));
        assert!(!e.is_not_found());
    }

    #[test]
    fn helpers_name_the_statuses_callers_branch_on() {
        let e = |status| ClientError::Problem {
            status,
            problem: Problem::new(status, "x", "X", "x"),
        };
        assert!(e(412).is_precondition_failed());
        assert!(e(404).is_not_found());
        assert!(e(409).is_conflict());
        assert!(e(401).is_unauthenticated());
        assert!(e(403).is_forbidden());
        assert_eq!(ClientError::Transport("down".into()).status(), None);
    }
}
