//! The local gateway: the authorizer in front of a local HTTP service, for development without
//! API Gateway. Allowed requests are forwarded with the key's context as `X-Keyward-*`
//! headers (and without the key itself); others get the authorizer's answer as a problem
//! document: 401, 403 (and 429 once rate limits exist).

use std::net::IpAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use keyward_core::decision::Code;

use crate::authorizer::{Authorizer, Presented, context_of, token_from_headers};
use crate::http::extract::ClientIp;
use crate::http::problem::Problem;

/// Headers the gateway sets; any a client sends are removed first, so they cannot be forged.
const CONTEXT_PREFIX: &str = "x-keyward-";

#[derive(Debug, Clone)]
struct Gateway {
    authorizer: Authorizer,
    upstream: Uri,
    client: Client<HttpConnector, Body>,
}

/// A Router that authorizes every request and forwards the allowed ones to `upstream`.
pub fn gateway_router(authorizer: Authorizer, upstream: Uri) -> Router {
    let client = Client::builder(TokioExecutor::new()).build_http();
    Router::new().fallback(forward).with_state(Gateway {
        authorizer,
        upstream,
        client,
    })
}

fn presented(request: &Request, peer: Option<IpAddr>) -> Presented {
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .filter_map(|(k, v)| {
            v.to_str()
                .ok()
                .map(|v| (k.as_str().to_owned(), v.to_owned()))
        })
        .collect();
    let (token, token_source) = token_from_headers(&headers);
    let query = request
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| {
            pair.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        })
        .collect();
    Presented {
        token,
        token_source,
        method: request.method().as_str().to_owned(),
        path: request.uri().path().to_owned(),
        headers,
        query,
        source_ip: peer,
        arn: String::new(),
    }
}

fn denial(code: Code) -> Response {
    let status = StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::FORBIDDEN);
    let (slug, title) = match status {
        StatusCode::UNAUTHORIZED => ("unauthenticated", "Unauthorized"),
        StatusCode::TOO_MANY_REQUESTS => ("rate-limited", "Too many requests"),
        _ => ("forbidden", "Forbidden"),
    };
    let mut response =
        Problem::new(status, slug, title, format!("denied: {}", code.as_str())).into_response();
    if let Ok(v) = HeaderValue::from_str(code.as_str()) {
        response.headers_mut().insert("x-keyward-code", v);
    }
    response
}

async fn forward(
    State(gateway): State<Gateway>,
    ClientIp(peer): ClientIp,
    mut request: Request,
) -> Response {
    let p = presented(&request, peer);
    let decided = match gateway.authorizer.decide(&p, false).await {
        Ok(d) => d,
        Err(e) => return Problem::from(e).into_response(),
    };
    let key = match (decided.code, decided.key) {
        (Code::Valid, Some(key)) => key,
        (code, _) => return denial(code),
    };
    let headers = request.headers_mut();
    let forged: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with(CONTEXT_PREFIX))
        .cloned()
        .collect();
    for name in forged {
        headers.remove(name);
    }
    headers.remove("x-api-key");
    headers.remove(header::AUTHORIZATION);
    let context = serde_json::to_value(context_of(&key)).unwrap_or_default();
    for (name, value) in context.as_object().into_iter().flatten() {
        let name = HeaderName::from_bytes(
            format!("{CONTEXT_PREFIX}{}", name.replace('_', "-")).as_bytes(),
        );
        let value = value.as_str().and_then(|v| HeaderValue::from_str(v).ok());
        if let (Ok(name), Some(value)) = (name, value) {
            headers.insert(name, value);
        }
    }
    let path_and_query = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let target = format!(
        "{}{}",
        gateway.upstream.to_string().trim_end_matches('/'),
        path_and_query
    );
    match target.parse::<Uri>() {
        Ok(uri) => *request.uri_mut() = uri,
        Err(_) => return StatusCode::BAD_REQUEST.into_response(),
    }
    request.headers_mut().remove(header::HOST);
    match gateway.client.request(request).await {
        Ok(response) => response.map(Body::new).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "upstream request failed");
            Problem::new(
                StatusCode::BAD_GATEWAY,
                "bad-gateway",
                "Bad gateway",
                "the upstream service did not answer",
            )
            .into_response()
        }
    }
}
