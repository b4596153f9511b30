//! The data sources, each behind [`DataSource`]: read-only views for configurations that use
//! what Terraform does not manage.
//!
//! - [`api_key`], `keyward_api_key`: one key by id or name.
//! - [`presets`], `keyward_presets`: every preset a key may name.

pub mod api_key;
pub mod presets;

use crate::api::Api;
use crate::cty::Value;
use crate::diag::Diagnostics;
use crate::schema::Block;

pub trait DataSource: Send + Sync {
    fn type_name(&self) -> &'static str;

    fn schema(&self) -> &Block;

    /// Checks a configuration offline.
    fn validate(&self, config: &Value) -> Diagnostics;

    fn read(&self, api: &Api, config: &Value) -> Result<Value, Diagnostics>;
}

/// The data sources this provider offers.
pub fn all() -> Vec<Box<dyn DataSource>> {
    vec![
        Box::new(api_key::ApiKeyData),
        Box::new(presets::PresetsData),
    ]
}
