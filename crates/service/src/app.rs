//! The services' shared state, built once per process.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use keyward_core::hash::Pepper;
use keyward_store::Store;

use crate::error::ServiceError;
use crate::settings::Settings;
use crate::verification::{Engine, EngineConfig, Verifier};

/// Who is acting: an authenticated admin key, or the system itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub account: String,
    /// The acting key's id, or `system`.
    pub id: String,
    pub source_ip: Option<std::net::IpAddr>,
}

impl Actor {
    pub fn system(account: &str) -> Self {
        Self {
            account: account.to_owned(),
            id: "system".to_owned(),
            source_ip: None,
        }
    }
}

/// A store, the pepper and the settings: everything an operation needs. A handle: a clone
/// (the web framework makes one or two per request) shares the one [`Parts`].
#[derive(Debug, Clone)]
pub struct App(Arc<Parts>);

/// What an [`App`] holds; its methods reach these through `Deref`.
#[derive(Debug)]
pub struct Parts {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) pepper: Arc<Pepper>,
    pub(crate) settings: Arc<Settings>,
    /// The engine's cache serves `POST /v1/verify`; a change made here evicts it at once.
    pub(crate) verifier: Verifier,
}

impl std::ops::Deref for App {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.0
    }
}

impl App {
    pub fn new(store: Arc<dyn Store>, pepper: Pepper, settings: Settings) -> Self {
        Self::with_engine(store, pepper, settings, EngineConfig::default())
    }

    /// The same, with the verification engine's freshness and batching set.
    pub fn with_engine(
        store: Arc<dyn Store>,
        pepper: Pepper,
        settings: Settings,
        engine: EngineConfig,
    ) -> Self {
        let pepper = Arc::new(pepper);
        let engine = Engine::new(
            store.clone(),
            pepper.clone(),
            settings.prefix.clone(),
            engine,
        );
        Self(Arc::new(Parts {
            store,
            pepper,
            settings: Arc::new(settings),
            verifier: Verifier::new(engine, None),
        }))
    }

    /// The verifier of `POST /v1/verify` (the caller states what it needs; no route policy).
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// Its engine: run its poller with [`Engine::spawn_background`] in long-lived processes,
    /// and share it with the local gateway's verifier so both use one cache.
    pub fn engine(&self) -> &Engine {
        self.verifier.engine()
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Readiness: whether the store answers now (within its timeouts). Liveness needs nothing.
    pub async fn ready(&self) -> Result<(), ServiceError> {
        self.store.get_account(&self.settings.account).await?;
        Ok(())
    }

    /// The time every read and rule of this process judges by.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
