//! The authorizer Lambda: configuration, store and route policy once; then every event through
//! the shared [`Authorizer`]. A REST API's 401 is the error message `Unauthorized`.

use std::sync::Arc;

use keyward_core::route::{RoutePolicy, RoutePolicySpec};
use keyward_service::authorizer::{Answer, Authorizer, AuthorizerEvent, HttpApiFormat, Response};
use keyward_service::config::FunctionConfig;
use keyward_service::engine::{Engine, EngineConfig};
use keyward_store::DynamoStore;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::value::RawValue;

/// The route policy from `KEYWARD_ROUTE_POLICY` (JSON) or the file `KEYWARD_ROUTE_POLICY_FILE`.
fn route_policy() -> Result<RoutePolicy, String> {
    let text = match (
        std::env::var("KEYWARD_ROUTE_POLICY"),
        std::env::var("KEYWARD_ROUTE_POLICY_FILE"),
    ) {
        (Ok(json), _) => json,
        (_, Ok(path)) => std::fs::read_to_string(&path)
            .map_err(|e| format!("KEYWARD_ROUTE_POLICY_FILE {path}: {e}"))?,
        _ => return Err("set KEYWARD_ROUTE_POLICY (JSON) or KEYWARD_ROUTE_POLICY_FILE".into()),
    };
    let spec: RoutePolicySpec =
        serde_json::from_str(&text).map_err(|e| format!("the route policy is not valid: {e}"))?;
    RoutePolicy::compile(&spec).map_err(|e| format!("the route policy is not valid: {e}"))
}

fn http_api_format() -> Result<HttpApiFormat, String> {
    match std::env::var("KEYWARD_HTTP_API_RESPONSE").as_deref() {
        Err(_) | Ok("simple") => Ok(HttpApiFormat::Simple),
        Ok("iam") => Ok(HttpApiFormat::Iam),
        Ok(other) => Err(format!(
            "KEYWARD_HTTP_API_RESPONSE is '{other}'; use simple or iam"
        )),
    }
}

fn bound() -> Result<std::time::Duration, String> {
    match std::env::var("KEYWARD_REVOCATION_BOUND_MS") {
        Err(_) => Ok(EngineConfig::default().revocation_bound),
        Ok(ms) => ms
            .parse()
            .map(std::time::Duration::from_millis)
            .map_err(|_| format!("KEYWARD_REVOCATION_BOUND_MS is '{ms}'; use milliseconds")),
    }
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = FunctionConfig::from_env()?;
    let policy = route_policy()?;
    let format = http_api_format()?;
    let engine_config = EngineConfig {
        revocation_bound: bound()?,
        ..EngineConfig::default()
    };
    let store = Arc::new(DynamoStore::connect(&config.store).await);
    let engine = Engine::new(
        store,
        Arc::new(config.pepper),
        config.settings.prefix,
        engine_config,
    );
    let _poller = engine.spawn_background();
    let authorizer = Authorizer::new(engine, policy, format);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Box<RawValue>>| {
        let authorizer = authorizer.clone();
        async move { handle(&authorizer, event.payload.get().as_bytes()).await }
    }))
    .await
}

async fn handle(authorizer: &Authorizer, event: &[u8]) -> Result<Response, Diagnostic> {
    let event = AuthorizerEvent::from_slice(event).map_err(|e| Diagnostic {
        error_type: "InvalidEvent".into(),
        error_message: e.to_string(),
    })?;
    let explained = authorizer.authorize(&event).await.map_err(|e| Diagnostic {
        error_type: "AuthorizerError".into(),
        error_message: e.to_string(),
    })?;
    tracing_log(&explained);
    match explained.answer {
        Answer::Respond(r) => Ok(*r),
        Answer::Unauthorized => Err(Diagnostic {
            error_type: "Unauthorized".into(),
            error_message: "Unauthorized".into(),
        }),
    }
}

/// One log line per decision: the outcome and key id, never the token.
fn tracing_log(e: &keyward_service::authorizer::Explained) {
    lambda_runtime::tracing::info!(
        code = e.code.as_str(),
        key_id = e.key_id.as_deref().unwrap_or("-"),
        "authorized"
    );
}
