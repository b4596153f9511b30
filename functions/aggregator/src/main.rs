//! The aggregator Lambda: configuration and store once; then every DynamoDB Streams batch of
//! usage records through the shared [`Aggregator`], answering partial batch failures.

use std::sync::Arc;

use aws_lambda_events::dynamodb::Event;
use keyward_aws::{sdk, stream};
use keyward_service::aggregation::Aggregator;
use keyward_service::config::Config;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    keyward_aws::logging::init();
    let config = Config::from_env()?;
    let location = config.require_dynamodb()?;
    let sdk = sdk::load_for_lambda(location);
    let aggregator = Aggregator::new(Arc::new(sdk::dynamodb(&sdk, location)));
    lambda_runtime::run(service_fn(|event: LambdaEvent<Event>| {
        let aggregator = aggregator.clone();
        async move {
            Ok::<_, lambda_runtime::Error>(stream::handle(&aggregator, event.payload).await)
        }
    }))
    .await
}
