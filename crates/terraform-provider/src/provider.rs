//! The gRPC `Provider` service: the provider's own configuration, and every other call
//! dispatched to the resource or data source it names. Values arrive and leave as cty
//! MessagePack; errors leave as diagnostics, never as gRPC errors (Terraform shows those
//! badly). Resource calls block on the management API, so they run on tokio's blocking pool.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use keyward_client::Client;
use tonic::{Request, Response, Status};

use crate::api::Api;
use crate::cty::{Type, Value};
use crate::data_sources::{self, DataSource};
use crate::diag::{self, Diagnostic, Diagnostics};
use crate::proto::tfplugin6 as tf;
use crate::proto::tfplugin6::provider_server::Provider;
use crate::resources::{self, Resource};
use crate::schema::{Attribute, Block};

/// Where the endpoint and the admin key come from when the configuration leaves them out.
pub const ENDPOINT_ENV: &str = "KEYWARD_ENDPOINT";
pub const API_KEY_ENV: &str = "KEYWARD_API_KEY";

/// The schema version of every resource; a change that old states cannot read raises it.
const SCHEMA_VERSION: i64 = 0;

pub struct KeywardProvider {
    resources: HashMap<&'static str, Arc<dyn Resource>>,
    data_sources: HashMap<&'static str, Arc<dyn DataSource>>,
    schema: Block,
    api: RwLock<Option<Arc<Api>>>,
}

impl std::fmt::Debug for KeywardProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeywardProvider")
            .field("resources", &self.resources.keys())
            .field("data_sources", &self.data_sources.keys())
            .finish_non_exhaustive()
    }
}

impl Default for KeywardProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl KeywardProvider {
    pub fn new() -> Self {
        Self {
            resources: resources::all()
                .into_iter()
                .map(|r| (r.type_name(), Arc::from(r)))
                .collect(),
            data_sources: data_sources::all()
                .into_iter()
                .map(|d| (d.type_name(), Arc::from(d)))
                .collect(),
            schema: Block {
                description: "keyward: API keys, sharing groups and presets, with no secret in state.".into(),
                attributes: vec![
                    Attribute::optional("endpoint", Type::String, "The management API's URL (`https://keys.example.com`, or `http://127.0.0.1:8080` for `keyward serve`). Default: `KEYWARD_ENDPOINT`."),
                    Attribute::optional("api_key", Type::String, "An admin key (`admin` on `keys/**`). Default: `KEYWARD_API_KEY`, which keeps it out of the configuration and of saved plans.").sensitive(),
                ],
            },
            api: RwLock::new(None),
        }
    }

    fn resource(&self, name: &str) -> Result<Arc<dyn Resource>, Diagnostics> {
        self.resources
            .get(name)
            .cloned()
            .ok_or_else(|| vec![Diagnostic::error("Unknown resource type", name.to_owned())])
    }

    fn data_source(&self, name: &str) -> Result<Arc<dyn DataSource>, Diagnostics> {
        self.data_sources
            .get(name)
            .cloned()
            .ok_or_else(|| vec![Diagnostic::error("Unknown data source", name.to_owned())])
    }

    fn api(&self) -> Result<Arc<Api>, Diagnostics> {
        self.api
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| {
                vec![Diagnostic::error(
                    "Provider not configured",
                    "The keyward provider was asked to act before it was configured.",
                )]
            })
    }

    fn capabilities() -> tf::ServerCapabilities {
        tf::ServerCapabilities {
            plan_destroy: false,
            get_provider_schema_optional: false,
            move_resource_state: false,
        }
    }

    /// The endpoint and admin key, from the configuration or the environment.
    fn connect(config: &Value) -> Result<Api, Diagnostics> {
        let setting = |attribute: &str, env: &str| -> Result<String, Diagnostic> {
            match config.get(attribute) {
                Value::String(s) if !s.is_empty() => Ok(s.clone()),
                Value::Unknown => Err(Diagnostic::error(
                    format!("{attribute} is not known yet"),
                    format!("The provider's {attribute} depends on something not created yet; set it to a known value, or leave it out and set {env}."),
                )
                .at(attribute)),
                _ => std::env::var(env)
                    .ok()
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| {
                        Diagnostic::error(
                            format!("No {attribute}"),
                            format!("Set {attribute} in the provider block or {env} in the environment."),
                        )
                        .at(attribute)
                    }),
            }
        };
        let endpoint = setting("endpoint", ENDPOINT_ENV);
        let api_key = setting("api_key", API_KEY_ENV);
        let (endpoint, api_key) = match (endpoint, api_key) {
            (Ok(e), Ok(k)) => (e, k),
            (e, k) => return Err(e.err().into_iter().chain(k.err()).collect()),
        };
        let client = Client::new(&endpoint, api_key).map_err(|e| {
            vec![Diagnostic::error(
                "Invalid provider configuration",
                e.to_string(),
            )]
        })?;
        Ok(Api::new(client))
    }
}

/// Decodes a value Terraform sent (absent: null).
fn decode(value: Option<&tf::DynamicValue>) -> Result<Value, Diagnostics> {
    match value {
        None => Ok(Value::Null),
        Some(v) if !v.msgpack.is_empty() => Value::from_msgpack(&v.msgpack)
            .map_err(|e| vec![Diagnostic::error("Invalid value", e.to_string())]),
        // Terraform sends every value as MessagePack; JSON comes only in stored state, which
        // `upgrade_resource_state` reads with the resource's type.
        Some(v) if !v.json.is_empty() => Err(vec![Diagnostic::error(
            "Invalid value",
            "this provider reads values as MessagePack, and Terraform sent JSON",
        )]),
        Some(_) => Ok(Value::Null),
    }
}

fn encode(value: &Value) -> Option<tf::DynamicValue> {
    Some(tf::DynamicValue {
        msgpack: value.to_msgpack(),
        json: Vec::new(),
    })
}

/// Runs a blocking resource call off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Status::internal(format!("the provider's call failed: {e}")))
}

#[tonic::async_trait]
impl Provider for KeywardProvider {
    async fn get_metadata(
        &self,
        _: Request<tf::get_metadata::Request>,
    ) -> Result<Response<tf::get_metadata::Response>, Status> {
        Ok(Response::new(tf::get_metadata::Response {
            server_capabilities: Some(Self::capabilities()),
            resources: self
                .resources
                .keys()
                .map(|name| tf::get_metadata::ResourceMetadata {
                    type_name: (*name).to_owned(),
                })
                .collect(),
            data_sources: self
                .data_sources
                .keys()
                .map(|name| tf::get_metadata::DataSourceMetadata {
                    type_name: (*name).to_owned(),
                })
                .collect(),
            ..Default::default()
        }))
    }

    async fn get_provider_schema(
        &self,
        _: Request<tf::get_provider_schema::Request>,
    ) -> Result<Response<tf::get_provider_schema::Response>, Status> {
        Ok(Response::new(tf::get_provider_schema::Response {
            provider: Some(self.schema.to_proto(0)),
            resource_schemas: self
                .resources
                .iter()
                .map(|(name, r)| ((*name).to_owned(), r.schema().to_proto(SCHEMA_VERSION)))
                .collect(),
            data_source_schemas: self
                .data_sources
                .iter()
                .map(|(name, d)| ((*name).to_owned(), d.schema().to_proto(SCHEMA_VERSION)))
                .collect(),
            server_capabilities: Some(Self::capabilities()),
            ..Default::default()
        }))
    }

    async fn get_resource_identity_schemas(
        &self,
        _: Request<tf::get_resource_identity_schemas::Request>,
    ) -> Result<Response<tf::get_resource_identity_schemas::Response>, Status> {
        Ok(Response::new(Default::default()))
    }

    async fn get_functions(
        &self,
        _: Request<tf::get_functions::Request>,
    ) -> Result<Response<tf::get_functions::Response>, Status> {
        Ok(Response::new(Default::default()))
    }

    async fn validate_provider_config(
        &self,
        request: Request<tf::validate_provider_config::Request>,
    ) -> Result<Response<tf::validate_provider_config::Response>, Status> {
        let diagnostics = match decode(request.get_ref().config.as_ref()) {
            Ok(config) => match config.get("endpoint").as_str() {
                Some(endpoint) => keyward_client::Endpoint::parse(endpoint)
                    .err()
                    .map(|e| Diagnostic::error("Invalid endpoint", e.to_string()).at("endpoint"))
                    .into_iter()
                    .collect(),
                None => Vec::new(),
            },
            Err(d) => d,
        };
        Ok(Response::new(tf::validate_provider_config::Response {
            diagnostics: diag::to_proto(&diagnostics),
        }))
    }

    async fn configure_provider(
        &self,
        request: Request<tf::configure_provider::Request>,
    ) -> Result<Response<tf::configure_provider::Response>, Status> {
        let diagnostics =
            match decode(request.get_ref().config.as_ref()).and_then(|c| Self::connect(&c)) {
                Ok(api) => {
                    *self.api.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(api));
                    Vec::new()
                }
                Err(d) => d,
            };
        Ok(Response::new(tf::configure_provider::Response {
            diagnostics: diag::to_proto(&diagnostics),
        }))
    }

    async fn validate_resource_config(
        &self,
        request: Request<tf::validate_resource_config::Request>,
    ) -> Result<Response<tf::validate_resource_config::Response>, Status> {
        let request = request.into_inner();
        let diagnostics = self
            .resource(&request.type_name)
            .and_then(|r| Ok(r.validate(&decode(request.config.as_ref())?)))
            .unwrap_or_else(|d| d);
        Ok(Response::new(tf::validate_resource_config::Response {
            diagnostics: diag::to_proto(&diagnostics),
        }))
    }

    async fn validate_data_resource_config(
        &self,
        request: Request<tf::validate_data_resource_config::Request>,
    ) -> Result<Response<tf::validate_data_resource_config::Response>, Status> {
        let request = request.into_inner();
        let diagnostics = self
            .data_source(&request.type_name)
            .and_then(|d| Ok(d.validate(&decode(request.config.as_ref())?)))
            .unwrap_or_else(|d| d);
        Ok(Response::new(tf::validate_data_resource_config::Response {
            diagnostics: diag::to_proto(&diagnostics),
        }))
    }

    async fn upgrade_resource_state(
        &self,
        request: Request<tf::upgrade_resource_state::Request>,
    ) -> Result<Response<tf::upgrade_resource_state::Response>, Status> {
        let request = request.into_inner();
        let upgraded = (|| {
            let resource = self.resource(&request.type_name)?;
            if request.version > SCHEMA_VERSION {
                return Err(vec![Diagnostic::error(
                    "State from a newer provider",
                    format!(
                        "This state was written by a provider with schema version {}; this one reads up to {SCHEMA_VERSION}. Upgrade terraform-provider-keyward.",
                        request.version
                    ),
                )]);
            }
            let raw = request.raw_state.map(|r| r.json).unwrap_or_default();
            let json: serde_json::Value = serde_json::from_slice(&raw)
                .map_err(|e| vec![Diagnostic::error("Unreadable state", e.to_string())])?;
            Value::from_json(&json, &resource.schema().object_type())
                .map_err(|e| vec![Diagnostic::error("Unreadable state", e.to_string())])
        })();
        Ok(Response::new(match upgraded {
            Ok(state) => tf::upgrade_resource_state::Response {
                upgraded_state: encode(&state),
                diagnostics: Vec::new(),
            },
            Err(d) => tf::upgrade_resource_state::Response {
                upgraded_state: None,
                diagnostics: diag::to_proto(&d),
            },
        }))
    }

    async fn read_resource(
        &self,
        request: Request<tf::read_resource::Request>,
    ) -> Result<Response<tf::read_resource::Response>, Status> {
        let request = request.into_inner();
        let prepared = self
            .resource(&request.type_name)
            .and_then(|r| Ok((r, self.api()?, decode(request.current_state.as_ref())?)));
        let (state, diagnostics) = match prepared {
            Ok((resource, api, current)) => {
                let fallback = current.clone();
                match blocking(move || resource.read(&api, &current)).await? {
                    Ok(state) => (state, Vec::new()),
                    Err(d) => (fallback, d),
                }
            }
            Err(d) => (Value::Null, d),
        };
        Ok(Response::new(tf::read_resource::Response {
            new_state: encode(&state),
            diagnostics: diag::to_proto(&diagnostics),
            private: request.private,
            ..Default::default()
        }))
    }

    async fn plan_resource_change(
        &self,
        request: Request<tf::plan_resource_change::Request>,
    ) -> Result<Response<tf::plan_resource_change::Response>, Status> {
        let request = request.into_inner();
        let prepared = self.resource(&request.type_name).and_then(|r| {
            Ok((
                r,
                decode(request.prior_state.as_ref())?,
                decode(request.proposed_new_state.as_ref())?,
                decode(request.config.as_ref())?,
            ))
        });
        let response = match prepared {
            // A destroy: nothing to plan.
            Ok((_, _, proposed, _)) if proposed.is_null() => tf::plan_resource_change::Response {
                planned_state: encode(&Value::Null),
                ..Default::default()
            },
            Ok((resource, prior, proposed, config)) => {
                let api = self.api();
                let planned = blocking(move || {
                    let api = api?;
                    resource.plan(&api, &prior, &proposed, &config)
                })
                .await?;
                match planned {
                    Ok(planned) => tf::plan_resource_change::Response {
                        planned_state: encode(&planned.state),
                        requires_replace: planned
                            .requires_replace
                            .iter()
                            .map(|a| attribute_path(a))
                            .collect(),
                        diagnostics: diag::to_proto(&planned.diagnostics),
                        planned_private: request.prior_private,
                        ..Default::default()
                    },
                    Err(d) => tf::plan_resource_change::Response {
                        diagnostics: diag::to_proto(&d),
                        ..Default::default()
                    },
                }
            }
            Err(d) => tf::plan_resource_change::Response {
                diagnostics: diag::to_proto(&d),
                ..Default::default()
            },
        };
        Ok(Response::new(response))
    }

    async fn apply_resource_change(
        &self,
        request: Request<tf::apply_resource_change::Request>,
    ) -> Result<Response<tf::apply_resource_change::Response>, Status> {
        let request = request.into_inner();
        let prepared = self.resource(&request.type_name).and_then(|r| {
            Ok((
                r,
                self.api()?,
                decode(request.prior_state.as_ref())?,
                decode(request.planned_state.as_ref())?,
            ))
        });
        let (state, diagnostics) = match prepared {
            Ok((resource, api, prior, planned)) => {
                blocking(move || resource.apply(&api, &prior, &planned)).await?
            }
            Err(d) => (
                decode(request.prior_state.as_ref()).unwrap_or(Value::Null),
                d,
            ),
        };
        Ok(Response::new(tf::apply_resource_change::Response {
            new_state: encode(&state),
            diagnostics: diag::to_proto(&diagnostics),
            private: request.planned_private,
            ..Default::default()
        }))
    }

    async fn import_resource_state(
        &self,
        request: Request<tf::import_resource_state::Request>,
    ) -> Result<Response<tf::import_resource_state::Response>, Status> {
        let request = request.into_inner();
        let prepared = self
            .resource(&request.type_name)
            .and_then(|r| Ok((r, self.api()?)));
        let type_name = request.type_name.clone();
        let imported = match prepared {
            Ok((resource, api)) => {
                let id = request.id.clone();
                blocking(move || resource.import(&api, &id)).await?
            }
            Err(d) => Err(d),
        };
        Ok(Response::new(match imported {
            Ok(state) => tf::import_resource_state::Response {
                imported_resources: vec![tf::import_resource_state::ImportedResource {
                    type_name,
                    state: encode(&state),
                    ..Default::default()
                }],
                ..Default::default()
            },
            Err(d) => tf::import_resource_state::Response {
                diagnostics: diag::to_proto(&d),
                ..Default::default()
            },
        }))
    }

    async fn read_data_source(
        &self,
        request: Request<tf::read_data_source::Request>,
    ) -> Result<Response<tf::read_data_source::Response>, Status> {
        let request = request.into_inner();
        let prepared = self
            .data_source(&request.type_name)
            .and_then(|d| Ok((d, self.api()?, decode(request.config.as_ref())?)));
        let read = match prepared {
            Ok((data_source, api, config)) => {
                blocking(move || data_source.read(&api, &config)).await?
            }
            Err(d) => Err(d),
        };
        Ok(Response::new(match read {
            Ok(state) => tf::read_data_source::Response {
                state: encode(&state),
                ..Default::default()
            },
            Err(d) => tf::read_data_source::Response {
                diagnostics: diag::to_proto(&d),
                ..Default::default()
            },
        }))
    }

    async fn stop_provider(
        &self,
        _: Request<tf::stop_provider::Request>,
    ) -> Result<Response<tf::stop_provider::Response>, Status> {
        // Every call is bounded by the client's timeouts; there is nothing to interrupt.
        Ok(Response::new(tf::stop_provider::Response::default()))
    }
}

fn attribute_path(name: &str) -> tf::AttributePath {
    use tf::attribute_path::{Step, step::Selector};
    tf::AttributePath {
        steps: vec![Step {
            selector: Some(Selector::AttributeName(name.to_owned())),
        }],
    }
}
