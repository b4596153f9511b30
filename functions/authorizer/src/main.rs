//! The authorizer Lambda: configuration, store and route policy once; then every event through
//! the shared [`Authorizer`].

use std::sync::Arc;

use keyward_aws::authorizer::Authorizer;
use keyward_aws::{pepper, sdk};
use keyward_service::config::Config;
use keyward_service::verification::{Engine, Verifier};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::value::RawValue;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    keyward_aws::logging::init();
    let config = Config::from_env()?;
    let policy = config.require_route_policy()?;
    let location = config.require_dynamodb()?;
    let sdk = sdk::load_for_lambda(location);
    let store = sdk::dynamodb(&sdk, location);
    let engine = Engine::new(
        Arc::new(store),
        Arc::new(pepper::load(&sdk, &config).await?),
        config.settings.prefix,
        config.engine,
    );
    let _poller = engine.spawn_background();
    let authorizer = Authorizer::new(
        Verifier::new(engine, Some(policy)),
        config.http_api_response,
    )
    .with_cache_safe_answers(config.cache_safe_answers);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Box<RawValue>>| {
        let authorizer = authorizer.clone();
        async move { authorizer.handle(event.payload.get().as_bytes()).await }
    }))
    .await
}
