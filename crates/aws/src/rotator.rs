//! The rotator's edge: EventBridge scheduled events in, the rotation sweep's report out.
//!
//! The function runs on a schedule (an EventBridge rule, `rate(5 minutes)` in the templates);
//! each scheduled event is one [`App::sweep`](keyward_service::App::sweep), which is
//! idempotent, so a late or doubled event changes nothing twice. Expiry warnings go to the log
//! and through the [`ExpiryNotifier`] the function was built with (EventBridge, when a bus is
//! configured). Any other event is refused with a clear error, never swept on.

use std::sync::Arc;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::Duration;
use keyward_service::App;
use keyward_service::rotation::{ExpiryNotifier, SweepReport};
use lambda_runtime::Diagnostic;

/// The `detail-type` of an EventBridge schedule's events.
pub const SCHEDULED_EVENT: &str = "Scheduled Event";

/// A rotator: the app it sweeps, where warnings go, and how far ahead they look.
#[derive(Clone)]
pub struct Rotator {
    app: App,
    notifier: Arc<dyn ExpiryNotifier>,
    warning_window: Duration,
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
        }
    }

    /// Handles one invocation's payload: a scheduled event sweeps; anything else is an error
    /// that names what was received.
    pub async fn handle(&self, payload: &[u8]) -> Result<SweepReport, Diagnostic> {
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
