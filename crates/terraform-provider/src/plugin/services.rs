//! The two go-plugin services Terraform calls besides the provider: the controller, whose
//! `Shutdown` ends the serving, and the health check behind go-plugin's ping.

use std::sync::Arc;

use tokio::sync::Notify;
use tonic::{Request, Response, Status};

use crate::proto::health::health_check_response::ServingStatus;
use crate::proto::health::health_server::Health;
use crate::proto::health::{HealthCheckRequest, HealthCheckResponse};
use crate::proto::plugin::Empty;
use crate::proto::plugin::grpc_controller_server::GrpcController;

/// go-plugin's controller: `Shutdown` asks the server to stop gracefully (the calls under way
/// finish first).
#[derive(Debug, Clone)]
pub(crate) struct Controller {
    shutdown: Arc<Notify>,
}

impl Controller {
    /// A controller that wakes whoever waits on `shutdown` (`Notify` keeps the permit when
    /// nobody waits yet).
    pub(crate) fn new(shutdown: Arc<Notify>) -> Self {
        Self { shutdown }
    }
}

#[tonic::async_trait]
impl GrpcController for Controller {
    async fn shutdown(&self, _request: Request<Empty>) -> Result<Response<Empty>, Status> {
        tracing::info!("Terraform asked the provider to shut down");
        self.shutdown.notify_one();
        Ok(Response::new(Empty {}))
    }
}

/// The health service: serving, whatever the service asked about (go-plugin asks about
/// "plugin").
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct HealthCheck;

#[tonic::async_trait]
impl Health for HealthCheck {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        tracing::debug!(service = %request.get_ref().service, "health check");
        Ok(Response::new(HealthCheckResponse {
            status: ServingStatus::Serving.into(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn shutdown_wakes_the_server_even_before_it_waits() {
        let notify = Arc::new(Notify::new());
        let controller = Controller::new(notify.clone());
        let response = controller
            .shutdown(Request::new(Empty {}))
            .await
            .expect("ok");
        assert_eq!(response.into_inner(), Empty {});
        tokio::time::timeout(Duration::from_secs(5), notify.notified())
            .await
            .expect("woken");
    }

    #[tokio::test]
    async fn health_is_serving_for_any_service() {
        for service in ["plugin", "", "tfplugin6.Provider", "anything"] {
            let response = HealthCheck
                .check(Request::new(HealthCheckRequest {
                    service: service.to_owned(),
                }))
                .await
                .expect("ok");
            assert_eq!(response.into_inner().status, ServingStatus::Serving as i32);
        }
    }
}
