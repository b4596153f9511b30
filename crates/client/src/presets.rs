//! `/v1/presets`: the built-in presets and the account's own.

use keyward_api::presets::{Preset, PresetListing, PresetRequest};

use crate::client::{Client, Method, Request};
use crate::endpoint::segment;
use crate::error::ClientError;

impl Client {
    /// `GET /v1/presets`: built-in ones first, then the account's own.
    pub fn list_presets(&self) -> Result<PresetListing, ClientError> {
        self.json(Request::get("/v1/presets".to_owned()))
    }

    /// The account's own presets (the built-in ones left out), as a plan or the Terraform
    /// provider adds them to the built-in ones.
    pub fn account_presets(&self) -> Result<Vec<Preset>, ClientError> {
        Ok(self
            .list_presets()?
            .items
            .into_iter()
            .filter(|p| !p.builtin)
            .map(|p| p.preset)
            .collect())
    }

    /// `PUT /v1/presets/{name}`: define or replace one of the account's presets.
    pub fn put_preset(&self, name: &str, request: &PresetRequest) -> Result<Preset, ClientError> {
        self.json(Request::new(Method::Put, preset_path(name)).json(request)?)
    }

    /// `DELETE /v1/presets/{name}`.
    pub fn delete_preset(&self, name: &str) -> Result<(), ClientError> {
        self.empty(Request::new(Method::Delete, preset_path(name)))
    }
}

fn preset_path(name: &str) -> String {
    format!("/v1/presets/{}", segment(name))
}
