//! The issuer function's edge: the management API's Router, as a Lambda handler.
//!
//! The only Lambda-specific part is learning the caller's address: API Gateway puts it in the
//! request context (`identity.sourceIp` for REST, `http.sourceIp` for HTTP APIs), and
//! [`router`] copies it into the extension the Router reads ([`ClientIp`]), so IP allowlists
//! on admin keys and audit entries work exactly as under `keyward serve`. And for REST APIs
//! `lambda_http` puts the stage in front of the path (`/prod/v1/keys`); [`router`] takes it
//! off again so the shared Router sees the API's own paths on any stage, and tells the console
//! the prefix it took ([`PathPrefix`]) so its links and redirects keep it.

use std::net::IpAddr;

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use keyward_http::ClientIp;
use keyward_http::console::PathPrefix;
use keyward_service::App;

use crate::event::without_stage;
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;

/// The caller's address from an API Gateway request context.
pub fn source_ip(context: &RequestContext) -> Option<IpAddr> {
    let ip = match context {
        RequestContext::ApiGatewayV1(c) => c.identity.source_ip.as_deref(),
        RequestContext::ApiGatewayV2(c) => c.http.source_ip.as_deref(),
        #[allow(unreachable_patterns)]
        _ => None,
    };
    ip.and_then(|s| s.parse().ok())
}

/// The stage of a REST or HTTP API event, unless it is the default stage.
fn stage(context: &RequestContext) -> Option<&str> {
    let stage = match context {
        RequestContext::ApiGatewayV1(c) => c.stage.as_deref(),
        RequestContext::ApiGatewayV2(c) => c.stage.as_deref(),
        #[allow(unreachable_patterns)]
        _ => None,
    };
    stage.filter(|s| *s != "$default")
}

/// `path` without a leading `/<stage>` that `lambda_http` added. Paths that already are the
/// API's own (`/v1/...`, `/healthz`) are left alone, so a stage named `v1` is harmless.
pub fn strip_stage(path: &str, stage: Option<&str>) -> String {
    if path.starts_with("/v1/") || path == "/healthz" {
        path.to_owned()
    } else {
        without_stage(path, stage)
    }
}

async fn from_api_gateway(mut request: Request, next: Next) -> Response {
    let context = request.request_context_ref().cloned();
    let ip = context.as_ref().and_then(source_ip);
    request.extensions_mut().insert(ClientIp(ip));
    if let Some(context) = &context {
        let path = request.uri().path();
        let stripped = strip_stage(path, stage(context));
        if stripped.len() != path.len() {
            // The console writes its pages and redirects under the stage again.
            let prefix = path[..path.len() - stripped.len()].to_owned();
            request.extensions_mut().insert(PathPrefix(prefix));
            let rebuilt = match request.uri().query() {
                Some(q) => format!("{stripped}?{q}"),
                None => stripped,
            };
            if let Ok(uri) = rebuilt.parse() {
                *request.uri_mut() = uri;
            }
        }
    }
    next.run(request).await
}

/// The management API for Lambda: the shared Router, on the API's own paths, with the
/// caller's address.
pub fn router(app: App) -> axum::Router {
    // A layer on a Router runs after routing; as the fallback of an outer Router, the shared
    // Router routes the rewritten path.
    axum::Router::new()
        .fallback_service(keyward_http::router(app))
        .layer(middleware::from_fn(from_api_gateway))
}

#[cfg(test)]
mod tests {
    use super::strip_stage;

    #[test]
    fn the_stage_prefix_comes_off_and_nothing_else() {
        assert_eq!(strip_stage("/prod/v1/keys", Some("prod")), "/v1/keys");
        assert_eq!(strip_stage("/v1/keys", Some("prod")), "/v1/keys");
        assert_eq!(strip_stage("/v1/keys", Some("v1")), "/v1/keys");
        assert_eq!(strip_stage("/prod/healthz", Some("prod")), "/healthz");
        assert_eq!(
            strip_stage("/production/v1/keys", Some("prod")),
            "/production/v1/keys"
        );
        assert_eq!(strip_stage("/prod/v1/keys", None), "/prod/v1/keys");
    }
}
