//! The issuer Lambda: configuration and clients once, then the Router for every request.

use std::sync::Arc;

use keyward_service::App;
use keyward_service::config::FunctionConfig;
use keyward_store::DynamoStore;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = FunctionConfig::from_env()?;
    let store = DynamoStore::connect(&config.store).await;
    let app = App::new(Arc::new(store), config.pepper, config.settings);
    lambda_http::run(keyward_issuer::router(app)).await
}
