//! Diagnostics: every error and warning Terraform shows, optionally pinned to the attribute it
//! is about (Terraform then points at that line of the configuration).

use keyward_client::ClientError;
use keyward_core::validation::FieldError;

use crate::proto::tfplugin6 as tf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub error: bool,
    pub summary: String,
    pub detail: String,
    /// The top-level attribute it is about.
    pub attribute: Option<String>,
}

pub type Diagnostics = Vec<Diagnostic>;

impl Diagnostic {
    pub fn error(summary: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            error: true,
            summary: summary.into(),
            detail: detail.into(),
            attribute: None,
        }
    }

    pub fn warning(summary: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            error: false,
            ..Self::error(summary, detail)
        }
    }

    /// About `attribute` (a top-level attribute name).
    pub fn at(mut self, attribute: &str) -> Self {
        self.attribute = Some(attribute.to_owned());
        self
    }

    /// A call to the management API that failed, while doing `what` ("creating key ci").
    pub fn api(what: &str, error: &ClientError) -> Self {
        let mut detail = error.to_string();
        if error.is_precondition_failed() {
            detail.push_str(
                "\n\nThe object changed on the server since Terraform last read it: run terraform plan again.",
            );
        }
        Self::error(format!("keyward API: {what} failed"), detail)
    }

    /// The core's rule errors, each at the attribute its field names (`scopes[0]` is
    /// `scopes`), in the API's own words.
    pub fn fields(errors: Vec<FieldError>) -> Diagnostics {
        errors
            .into_iter()
            .map(|e| {
                let attribute = e
                    .field
                    .split(['[', '.', '/'])
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                Self::error(format!("Invalid {}", e.field), e.message).at(&attribute)
            })
            .collect()
    }

    pub fn to_proto(&self) -> tf::Diagnostic {
        use tf::attribute_path::{Step, step::Selector};
        tf::Diagnostic {
            severity: if self.error {
                tf::diagnostic::Severity::Error
            } else {
                tf::diagnostic::Severity::Warning
            } as i32,
            summary: self.summary.clone(),
            detail: self.detail.clone(),
            attribute: self.attribute.as_ref().map(|name| tf::AttributePath {
                steps: vec![Step {
                    selector: Some(Selector::AttributeName(name.clone())),
                }],
            }),
        }
    }
}

/// Whether any of `diagnostics` is an error.
pub fn has_errors(diagnostics: &[Diagnostic]) -> bool {
    diagnostics.iter().any(|d| d.error)
}

pub fn to_proto(diagnostics: &[Diagnostic]) -> Vec<tf::Diagnostic> {
    diagnostics.iter().map(Diagnostic::to_proto).collect()
}
