//! Expiry warnings as EventBridge events (feature `eventbridge`): one `PutEvents` entry per
//! warned key, on the bus the deployment names, for rules to route to mail, chat or tickets.
//!
//! The event: source `keyward`, detail-type `API key expiring`, detail
//! `{"key_id", "name", "account", "expires_at"}`; never a secret.

use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use chrono::{DateTime, Utc};
use keyward_core::key::ApiKey;
use keyward_service::rotation::ExpiryNotifier;
use serde_json::json;

/// The events' `source`.
pub const SOURCE: &str = "keyward";
/// The events' `detail-type`.
pub const EXPIRING: &str = "API key expiring";

/// Sends expiry warnings to an EventBridge bus.
#[derive(Debug, Clone)]
pub struct EventBridgeNotifier {
    client: Client,
    bus: String,
}

impl EventBridgeNotifier {
    /// A notifier on `bus` (a name or an ARN), through `client`.
    pub fn new(client: Client, bus: &str) -> Self {
        Self {
            client,
            bus: bus.to_owned(),
        }
    }
}

#[async_trait]
impl ExpiryNotifier for EventBridgeNotifier {
    async fn expiring(&self, key: &ApiKey, expires_at: DateTime<Utc>) -> Result<(), String> {
        let detail = json!({
            "key_id": key.id,
            "name": key.name,
            "account": key.account,
            "expires_at": expires_at,
        });
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(SOURCE)
            .detail_type(EXPIRING)
            .detail(detail.to_string())
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "PutEvents failed: {}",
                    aws_sdk_eventbridge::error::DisplayErrorContext(e)
                )
            })?;
        match out.failed_entry_count {
            0 => Ok(()),
            _ => Err(format!(
                "EventBridge refused the event: {}",
                out.entries()
                    .first()
                    .and_then(|e| e.error_message())
                    .unwrap_or("no reason given")
            )),
        }
    }
}
