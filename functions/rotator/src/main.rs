//! The rotator Lambda: configuration, store, a Secrets Manager client and (with
//! `KEYWARD_EVENT_BUS`) an EventBridge client once; then every scheduled event and Secrets
//! Manager rotation request through the shared [`Rotator`].

use std::sync::Arc;

use keyward_aws::events::EventBridgeNotifier;
use keyward_aws::rotator::Rotator;
use keyward_aws::secrets_manager::SecretsManager;
use keyward_aws::{pepper, sdk};
use keyward_service::App;
use keyward_service::config::Config;
use keyward_service::rotation::{ExpiryNotifier, LogOnly};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::value::RawValue;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    keyward_aws::logging::init();
    let config = Config::from_env()?;
    let location = config.require_dynamodb()?;
    let sdk = sdk::load_for_lambda(location);
    let app = App::with_engine(
        Arc::new(sdk::dynamodb(&sdk, location)),
        pepper::load(&sdk, &config).await?,
        config.settings.clone(),
        config.engine,
    );
    let notifier: Arc<dyn ExpiryNotifier> = match &config.event_bus {
        Some(bus) => Arc::new(EventBridgeNotifier::new(sdk::eventbridge(&sdk), bus)),
        None => Arc::new(LogOnly),
    };
    let vault = Arc::new(SecretsManager::new(sdk::secrets_manager(&sdk)));
    let rotator = Rotator::new(app, notifier, config.expiry_warning)
        .with_secrets_manager(vault, config.rotation_grace);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Box<RawValue>>| {
        let rotator = rotator.clone();
        async move { rotator.handle(event.payload.get().as_bytes()).await }
    }))
    .await
}
