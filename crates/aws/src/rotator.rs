//! The rotator's edge: EventBridge scheduled events and Secrets Manager rotation requests in.
//!
//! - A scheduled event (an EventBridge rule, such as `rate(5 minutes)`) is one
//!   [`App::sweep`](keyward_service::App::sweep), which is idempotent, so a late or doubled
//!   event changes nothing twice; the answer is the sweep's report. Expiry warnings go to the
//!   log and through the [`ExpiryNotifier`] the function was built with (EventBridge, when a
//!   bus is configured).
//! - A Secrets Manager rotation request (`{"Step", "SecretId", "ClientRequestToken"}`) is one
//!   step of [`App::rotate_secret`](keyward_service::App::rotate_secret); the answer is `null`.
//!
//! Anything else is refused with a clear error, and nothing is done.

use std::sync::Arc;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::Duration;
use keyward_service::App;
use keyward_service::rotation::{ExpiryNotifier, SweepReport};
use keyward_service::secret_rotation::{Rotation, SecretVault, Step};
use lambda_runtime::Diagnostic;
use serde_json::Value;

/// The `detail-type` of an EventBridge schedule's events.
pub const SCHEDULED_EVENT: &str = "Scheduled Event";

/// A rotator: the app it sweeps, where warnings go, and how far ahead they look; and, for
/// Secrets Manager rotation, the vault and the grace of the secret a rotation replaces.
#[derive(Clone)]
pub struct Rotator {
    app: App,
    notifier: Arc<dyn ExpiryNotifier>,
    warning_window: Duration,
    vault: Option<(Arc<dyn SecretVault>, Duration)>,
}

/// A Secrets Manager rotation request, as the service invokes the function (`RotationToken`
/// is sent by Secrets Manager today, and passed back on the write of the pending version).
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RotationRequest {
    step: String,
    secret_id: String,
    client_request_token: String,
    #[serde(default)]
    rotation_token: Option<String>,
}

impl std::fmt::Debug for Rotator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rotator")
            .field("warning_window", &self.warning_window)
            .finish_non_exhaustive()
    }
}

impl Rotator {
    pub fn new(app: App, notifier: Arc<dyn ExpiryNotifier>, warning_window: Duration) -> Self {
        Self {
            app,
            notifier,
            warning_window,
            vault: None,
        }
    }

    /// The same rotator, also answering Secrets Manager rotation requests through `vault`,
    /// keeping a replaced secret verifying for `grace`.
    pub fn with_secrets_manager(mut self, vault: Arc<dyn SecretVault>, grace: Duration) -> Self {
        self.vault = Some((vault, grace));
        self
    }

    /// Handles one invocation's payload: a scheduled event sweeps (answering the report), a
    /// Secrets Manager request runs its step (answering `null`); anything else is an error
    /// that names what was received.
    pub async fn handle(&self, payload: &[u8]) -> Result<Value, Diagnostic> {
        if let Ok(request) = serde_json::from_slice::<RotationRequest>(payload) {
            self.rotate(&request).await?;
            return Ok(Value::Null);
        }
        let report = self.sweep(payload).await?;
        serde_json::to_value(report).map_err(|e| Diagnostic {
            error_type: "Internal".into(),
            error_message: e.to_string(),
        })
    }

    async fn rotate(&self, request: &RotationRequest) -> Result<(), Diagnostic> {
        let Some((vault, grace)) = &self.vault else {
            return Err(refused(
                "a Secrets Manager rotation request, and this rotator has no Secrets Manager client"
                    .into(),
            ));
        };
        let step = Step::parse(&request.step).ok_or_else(|| {
            refused(format!(
                "unknown rotation step '{}' (createSecret, setSecret, testSecret, finishSecret)",
                request.step
            ))
        })?;
        self.app
            .rotate_secret(
                vault.as_ref(),
                step,
                &Rotation {
                    secret_id: &request.secret_id,
                    token: &request.client_request_token,
                    rotation_token: request.rotation_token.as_deref(),
                    grace: *grace,
                },
            )
            .await
            .map_err(|e| Diagnostic {
                error_type: "RotationFailed".into(),
                error_message: e.to_string(),
            })
    }

    /// Sweeps on a scheduled event.
    pub async fn sweep(&self, payload: &[u8]) -> Result<SweepReport, Diagnostic> {
        let event: EventBridgeEvent = serde_json::from_slice(payload).map_err(|e| {
            refused(format!(
                "not an EventBridge scheduled event ({e}); the rotator runs on a schedule"
            ))
        })?;
        if event.detail_type != SCHEDULED_EVENT {
            return Err(refused(format!(
                "an EventBridge event of type '{}', not '{SCHEDULED_EVENT}'",
                event.detail_type
            )));
        }
        self.app
            .sweep(self.warning_window, self.notifier.as_ref())
            .await
            .map_err(|e| Diagnostic {
                error_type: "SweepFailed".into(),
                error_message: e.to_string(),
            })
    }
}

fn refused(message: String) -> Diagnostic {
    Diagnostic {
        error_type: "UnsupportedEvent".into(),
        error_message: message,
    }
}
