//! The local gateway: the verifier in front of a local HTTP service, for development without
//! API Gateway. Allowed requests are forwarded with the key's context as `X-Keyward-*`
//! headers (and without the key itself); others get the decision's answer as a problem
//! document: 401, 403 (and 429 once rate limits exist).

use std::borrow::Cow;
use std::net::IpAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use keyward_api::problem::Problem;
use keyward_core::context::Context;
use keyward_core::credential;
use keyward_core::decision::Code;
use keyward_service::verification::{Explain, Presented, Target, Verifier};

use crate::extract::{ClientIp, text_headers};
use crate::problem::{HttpError, respond};

/// Headers the gateway sets; any a client sends are removed first, so they cannot be forged.
const CONTEXT_PREFIX: &str = "x-keyward-";

#[derive(Debug, Clone)]
struct Gateway {
    verifier: Verifier,
    upstream: Uri,
    client: Client<HttpConnector, Body>,
}

/// A Router that verifies every request and forwards the allowed ones to `upstream`.
pub fn gateway_router(verifier: Verifier, upstream: Uri) -> Router {
    let client = Client::builder(TokioExecutor::new()).build_http();
    Router::new().fallback(forward).with_state(Gateway {
        verifier,
        upstream,
        client,
    })
}

fn presented(request: &Request, peer: Option<IpAddr>) -> Presented<'_> {
    let (token, source) = credential::from_headers(text_headers(request.headers()));
    let headers = text_headers(request.headers())
        .map(|(k, v)| (Cow::Borrowed(k), Cow::Borrowed(v)))
        .collect();
    let query = request
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| {
            pair.split_once('=')
                .map(|(k, v)| (Cow::Borrowed(k), Cow::Borrowed(v)))
        })
        .collect();
    Presented {
        token: token.map(Cow::Borrowed),
        source,
        source_ip: peer,
        target: Target::Route {
            method: Cow::Borrowed(request.method().as_str()),
            path: Cow::Borrowed(request.uri().path()),
            headers,
            query,
        },
    }
}

fn denial(code: Code, retry_after_secs: Option<u32>) -> Response {
    let status = StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::FORBIDDEN);
    let (slug, title) = match status {
        StatusCode::UNAUTHORIZED => ("unauthenticated", "Unauthorized"),
        StatusCode::TOO_MANY_REQUESTS => ("rate-limited", "Too many requests"),
        StatusCode::SERVICE_UNAVAILABLE => ("unavailable", "Service unavailable"),
        _ => ("forbidden", "Forbidden"),
    };
    let mut response = respond(Problem::new(
        status.as_u16(),
        slug,
        title,
        format!("denied: {}", code.as_str()),
    ));
    if let Ok(v) = HeaderValue::from_str(code.as_str()) {
        response.headers_mut().insert("x-keyward-code", v);
    }
    if let Some(secs) = retry_after_secs {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

async fn forward(
    State(gateway): State<Gateway>,
    ClientIp(peer): ClientIp,
    mut request: Request,
) -> Response {
    let p = presented(&request, peer);
    let decided = match gateway.verifier.decide(&p, Explain::No).await {
        Ok(d) => d,
        Err(e) => return HttpError::from(e).into_response(),
    };
    let key = match (decided.code, decided.key) {
        (Code::Valid, Some(key)) => key,
        (code, _) => return denial(code, decided.retry_after_secs),
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
    for (name, value) in Context::allowed(&key).pairs() {
        let name = HeaderName::from_bytes(
            format!("{CONTEXT_PREFIX}{}", name.replace('_', "-")).as_bytes(),
        );
        if let (Ok(name), Ok(value)) = (name, HeaderValue::from_str(value)) {
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
            respond(Problem::new(
                502,
                "bad-gateway",
                "Bad gateway",
                "the upstream service did not answer",
            ))
        }
    }
}
