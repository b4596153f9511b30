//! The issuer Lambda: configuration and clients once, then the management Router for every
//! request.

use std::sync::Arc;

use keyward_aws::{pepper, sdk};
use keyward_service::App;
use keyward_service::config::Config;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    keyward_aws::logging::init();
    let config = Config::from_env()?;
    let location = config.require_dynamodb()?;
    let sdk = sdk::load_for_lambda(location);
    let store = sdk::dynamodb(&sdk, location);
    let app = App::with_engine(
        Arc::new(store),
        pepper::load(&sdk, &config).await?,
        config.settings,
        config.engine,
    );
    lambda_http::run(keyward_aws::issuer::router(app)).await
}
