//! The resources, each behind [`Resource`]: its schema and the five things Terraform asks of
//! it. Calls are blocking (the client is); the provider runs them off the async threads.
//!
//! - [`api_key`], `keyward_api_key`: the secret to a sink and never to state.
//! - [`sharing_group`], `keyward_sharing_group`.
//! - [`preset`], `keyward_preset`.

pub mod api_key;
pub mod preset;
pub mod sharing_group;

use crate::api::Api;
use crate::cty::Value;
use crate::diag::Diagnostics;
use crate::schema::Block;

/// What a plan decided: the planned state, and the attributes whose change replaces the object.
#[derive(Debug, Default)]
pub struct Planned {
    pub state: Value,
    pub requires_replace: Vec<&'static str>,
    pub diagnostics: Diagnostics,
}

/// One resource type.
pub trait Resource: Send + Sync {
    fn type_name(&self) -> &'static str;

    fn schema(&self) -> &Block;

    /// Checks a configuration offline (values may be unknown: those are checked at plan).
    fn validate(&self, config: &Value) -> Diagnostics;

    /// Plans a create (`prior` null) or an update; a destroy is never asked here.
    fn plan(
        &self,
        api: &Api,
        prior: &Value,
        proposed: &Value,
        config: &Value,
    ) -> Result<Planned, Diagnostics>;

    /// Makes the planned change (`planned` null: destroy). Answers the new state (null when
    /// gone) with any diagnostics; a state beside an error is kept by Terraform (a create that
    /// half succeeded is then tainted and replaced by the next apply).
    fn apply(&self, api: &Api, prior: &Value, planned: &Value) -> (Value, Diagnostics);

    /// The object as the server has it now (null: gone, so Terraform plans to create it).
    fn read(&self, api: &Api, state: &Value) -> Result<Value, Diagnostics>;

    /// The state of an existing object taken over by `terraform import`.
    fn import(&self, api: &Api, id: &str) -> Result<Value, Diagnostics>;
}

/// The resource types this provider offers.
pub fn all() -> Vec<Box<dyn Resource>> {
    vec![
        Box::new(api_key::ApiKeyResource),
        Box::new(sharing_group::SharingGroupResource),
        Box::new(preset::PresetResource),
    ]
}
