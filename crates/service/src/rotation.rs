//! The rotation sweep: what the `rotator` function does on its schedule, and `keyward serve`
//! on a timer. It only tidies up and warns; verification never waits for it (an ended grace
//! is refused from its instant, an expired key from its expiry).
//!
//! One pass over the account's keys, as stored:
//! - a grace that ended: the old secret is forgotten (its lookup hash removed);
//! - a key past its expiry: marked expired;
//! - a key that expires within the warning window: its owners are warned once per expiry (a
//!   log line, and an event through the [`ExpiryNotifier`]), recorded on the key by a write
//!   conditional on the version read, so two sweeps running at once warn once.
//!
//! Each change is a key change like any other: audited, versioned, seen by every verifier.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use keyward_core::key::ApiKey;
use keyward_core::lifecycle::{self, KeyOp};
use keyward_store::KeyQuery;
use serde::Serialize;
use serde_json::json;

use crate::app::{Actor, App};
use crate::error::ServiceError;
use crate::issuance::Change;

/// How far ahead keys are warned of their expiry, by default: 7 days.
pub const DEFAULT_EXPIRY_WARNING: Duration = Duration::days(7);

/// How often `keyward serve` sweeps (the rotator runs on its EventBridge schedule instead).
pub const IN_PROCESS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// Where expiry warnings go besides the log (the rotator: EventBridge).
#[async_trait]
pub trait ExpiryNotifier: Send + Sync {
    /// Tells that `key` expires at `expires_at`. An error is logged; the warning is not sent
    /// again (warnings are sent at most once).
    async fn expiring(&self, key: &ApiKey, expires_at: DateTime<Utc>) -> Result<(), String>;
}

/// Warnings in the log only (`keyward serve`, or a rotator without an event bus).
#[derive(Debug, Clone, Copy, Default)]
pub struct LogOnly;

#[async_trait]
impl ExpiryNotifier for LogOnly {
    async fn expiring(&self, _: &ApiKey, _: DateTime<Utc>) -> Result<(), String> {
        Ok(())
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// Keys looked at.
    pub keys: usize,
    /// Grace periods ended (old secrets forgotten).
    pub graces_ended: usize,
    /// Keys marked expired.
    pub expired: usize,
    /// Keys whose owners were warned of their expiry in this pass (delivered or not).
    pub warned: usize,
    /// Of those, warnings recorded but not delivered by the notifier.
    pub warnings_failed: usize,
    /// Keys this pass could not finish (logged; the next pass tries again).
    pub failed: usize,
}

impl App {
    /// Sweeps every `interval` until the process ends, warning in the log only; a failed pass
    /// is logged once per fault interval and retried on the next tick.
    pub fn spawn_sweep(
        &self,
        interval: std::time::Duration,
        warning_window: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let app = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = app.sweep(warning_window, &LogOnly).await {
                    crate::fault::FAULTS.report("rotation sweep failed", &e);
                }
            }
        })
    }

    /// One sweep over the account's keys (see the module documentation).
    pub async fn sweep(
        &self,
        warning_window: Duration,
        notifier: &dyn ExpiryNotifier,
    ) -> Result<SweepReport, ServiceError> {
        let system = Actor::system(&self.settings.account);
        let mut report = SweepReport::default();
        let mut query = KeyQuery::as_stored();
        loop {
            let page = self.store.list_keys(&system.account, &query).await?;
            for key in &page.items {
                report.keys += 1;
                match self
                    .sweep_key(&system, key, warning_window, notifier, &mut report)
                    .await
                {
                    Ok(()) | Err(ServiceError::NotFound(_)) => {} // deleted meanwhile
                    Err(unavailable @ ServiceError::Unavailable { .. }) => return Err(unavailable),
                    Err(e) => {
                        // One key that fails does not hold the others back; the next pass
                        // tries it again.
                        tracing::error!(key_id = %key.id, error = %e, "rotation sweep: a key failed");
                        report.failed += 1;
                    }
                }
            }
            match page.next_cursor {
                Some(cursor) => query.cursor = Some(cursor),
                None => break,
            }
        }
        if report.graces_ended + report.expired + report.warned + report.failed > 0 {
            tracing::info!(
                keys = report.keys,
                graces_ended = report.graces_ended,
                expired = report.expired,
                warned = report.warned,
                warnings_failed = report.warnings_failed,
                failed = report.failed,
                "rotation sweep"
            );
        }
        Ok(report)
    }

    async fn sweep_key(
        &self,
        system: &Actor,
        key: &ApiKey,
        window: Duration,
        notifier: &dyn ExpiryNotifier,
        report: &mut SweepReport,
    ) -> Result<(), ServiceError> {
        let now = self.now();
        // The version the last change of this pass left, for the conditional warning.
        let mut version = key.version;
        if key.grace_over(now) {
            // Any change drops an ended grace; this one changes nothing else.
            let mut changed = false;
            let after = self
                .change_key(system, &key.id, KeyOp::EndGrace, None, |current| {
                    changed = current.grace_over(now);
                    Ok(changed.then(|| {
                        let mut next = current.clone();
                        next.end_grace_if_over(now);
                        Change::to(next, json!({"name": current.name}))
                    }))
                })
                .await?;
            version = after.version;
            report.graces_ended += usize::from(changed);
        }
        if lifecycle::mark_expired(key, now).is_some() {
            let mut changed = false;
            let marked = self
                .change_key(system, &key.id, KeyOp::MarkExpired, None, |current| {
                    let next = lifecycle::mark_expired(current, now);
                    changed = next.is_some();
                    Ok(
                        next.map(|next| {
                            Change::to(next, json!({"expires_at": current.expires_at}))
                        }),
                    )
                })
                .await;
            match marked {
                Ok(after) => {
                    version = after.version;
                    report.expired += usize::from(changed);
                }
                Err(ServiceError::Conflict(_)) => {} // revoked meanwhile: nothing to mark
                Err(e) => return Err(e),
            }
        }
        if let Some(expires_at) = lifecycle::expiry_to_warn(key, now, window) {
            // Recorded first, on the version read: of two sweeps, one records and warns.
            let recorded = self
                .change_key(
                    system,
                    &key.id,
                    KeyOp::WarnExpiry,
                    Some(version),
                    |current| {
                        Ok(
                            (lifecycle::expiry_to_warn(current, now, window) == Some(expires_at))
                                .then(|| {
                                    let mut next = current.clone();
                                    next.expiry_warned_for = Some(expires_at);
                                    Change::to(next, json!({"expires_at": expires_at}))
                                }),
                        )
                    },
                )
                .await;
            match recorded {
                Ok(after)
                    if after.expiry_warned_for == Some(expires_at) && after.version > version =>
                {
                    tracing::warn!(
                        key_id = %key.id,
                        name = %key.name,
                        account = %key.account,
                        %expires_at,
                        "key expires soon"
                    );
                    report.warned += 1;
                    if let Err(e) = notifier.expiring(key, expires_at).await {
                        tracing::error!(key_id = %key.id, error = %e, "expiry warning not delivered");
                        report.warnings_failed += 1;
                    }
                }
                // Recorded by nobody (nothing to warn of any more): no warning.
                Ok(_) => {}
                // Another sweep (or an edit) got there first; the next pass decides again.
                Err(ServiceError::PreconditionFailed | ServiceError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
