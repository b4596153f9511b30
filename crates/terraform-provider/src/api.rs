//! What a configured provider talks to: the management API (through `keyward-client`, the
//! client `keyward apply` uses) and the secret sinks.

use std::sync::{Mutex, PoisonError};

use keyward_client::{Client, ClientError};
use keyward_core::group::Group;
use keyward_core::preset::Presets;
use keyward_sinks::Sinks;

#[derive(Debug)]
pub struct Api {
    pub client: Client,
    pub sinks: Sinks,
    /// The built-in presets and the account's, read once and dropped when a `keyward_preset`
    /// changes.
    presets: Mutex<Option<Presets>>,
}

impl Api {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            // Terraform owns the provider's standard output (it is the plugin protocol's), so
            // there is no `stdout` sink here; this one is never written to.
            sinks: Sinks::new(Box::new(std::io::sink())),
            presets: Mutex::new(None),
        }
    }

    /// Every preset a key may name.
    pub fn presets(&self) -> Result<Presets, ClientError> {
        let mut cached = self.presets.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(presets) = cached.as_ref() {
            return Ok(presets.clone());
        }
        let presets = Presets::builtin().extended(self.client.account_presets()?);
        *cached = Some(presets.clone());
        Ok(presets)
    }

    pub fn forget_presets(&self) {
        *self.presets.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    pub fn groups(&self) -> Result<Vec<Group>, ClientError> {
        self.client.list_groups()
    }
}
