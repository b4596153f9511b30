//! The services' shared state, built once per process.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use keyward_core::hash::Pepper;
use keyward_store::Store;

use crate::engine::{Engine, EngineConfig};
use crate::settings::Settings;

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

/// A store, the pepper and the settings: everything an operation needs.
#[derive(Debug, Clone)]
pub struct App {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) pepper: Arc<Pepper>,
    pub(crate) settings: Arc<Settings>,
    pub(crate) engine: Engine,
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
        Self {
            store,
            pepper,
            settings: Arc::new(settings),
            engine,
        }
    }

    /// The verification engine `POST /v1/verify` uses (run its poller with
    /// [`Engine::spawn_background`] in long-lived processes).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    pub(crate) fn today(&self) -> chrono::NaiveDate {
        self.now().date_naive()
    }
}
