//! The services' shared state, built once per process.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use keyward_core::hash::Pepper;
use keyward_store::Store;

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
}

impl App {
    pub fn new(store: Arc<dyn Store>, pepper: Pepper, settings: Settings) -> Self {
        Self {
            store,
            pepper: Arc::new(pepper),
            settings: Arc::new(settings),
        }
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
