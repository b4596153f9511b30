//! Extractors that fail with problem documents instead of axum's plain-text rejections.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use keyward_core::validation::FieldError;
use serde::de::DeserializeOwned;

use keyward_api::problem::Problem;
use keyward_core::credential;
use keyward_service::App;
use keyward_service::app::Actor;

use crate::problem::HttpError;

/// A JSON body, parsed with the path of any bad field named in the problem.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<App> for JsonBody<T> {
    type Rejection = HttpError;

    async fn from_request(req: Request, app: &App) -> Result<Self, Self::Rejection> {
        RawJson::from_request(req, app)
            .await
            .map(|RawJson(v, _)| JsonBody(v))
    }
}

/// A JSON body that may be left out: no body (or only whitespace) is `None`; anything else is
/// read as [`JsonBody`] reads it.
#[derive(Debug)]
pub struct OptionalJsonBody<T>(pub Option<T>);

impl<T: DeserializeOwned> FromRequest<App> for OptionalJsonBody<T> {
    type Rejection = HttpError;

    async fn from_request(req: Request, app: &App) -> Result<Self, Self::Rejection> {
        let json = is_json(req.headers());
        let bytes = read_body(req, app).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(None));
        }
        if !json {
            return Err(Problem::unsupported_media_type().into());
        }
        Ok(Self(Some(parse_json(&bytes)?)))
    }
}

/// A JSON body and the exact bytes it came as (an `Idempotency-Key` fingerprints them).
#[derive(Debug)]
pub struct RawJson<T>(pub T, pub Bytes);

impl<T: DeserializeOwned> FromRequest<App> for RawJson<T> {
    type Rejection = HttpError;

    async fn from_request(req: Request, app: &App) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(Problem::unsupported_media_type().into());
        }
        let bytes = read_body(req, app).await?;
        Ok(parse_json(&bytes).map(|v| RawJson(v, bytes))?)
    }
}

/// Whether the request says its body is JSON (`application/json` or `application/*+json`).
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim)
        .is_some_and(|m| {
            let starts = |p: &str| m.get(..p.len()).is_some_and(|s| s.eq_ignore_ascii_case(p));
            let ends = |p: &str| {
                m.len()
                    .checked_sub(p.len())
                    .and_then(|i| m.get(i..))
                    .is_some_and(|s| s.eq_ignore_ascii_case(p))
            };
            m.eq_ignore_ascii_case("application/json") || (starts("application/") && ends("+json"))
        })
}

/// The body, up to the deployment's limit (413 beyond).
async fn read_body(req: Request, app: &App) -> Result<Bytes, Problem> {
    let limit = app.settings().max_body_bytes;
    Bytes::from_request(req, app).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::payload_too_large(limit)
        } else {
            Problem::invalid(vec![FieldError::new("body", "the body could not be read")])
        }
    })
}

/// Parses `bytes` as one JSON object of type `T`, naming the offending field on failure.
/// Every body of this API is an object; serde would otherwise take an array positionally.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        None => {
            return Err(Problem::invalid(vec![FieldError::new(
                "body",
                "the body is empty; send a JSON object",
            )]));
        }
        Some(_) => {
            return Err(Problem::invalid(vec![FieldError::new(
                "body",
                "the body must be a JSON object",
            )]));
        }
    }
    // The usual body parses at once; only a refused one is read again, naming where it failed.
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let field = if path == "." || path.is_empty() {
            "body".to_owned()
        } else {
            path
        };
        let message = if inner.is_syntax() || inner.is_eof() {
            format!("malformed JSON: {inner}")
        } else {
            inner.to_string()
        };
        Problem::invalid(vec![FieldError::new(field, message)])
    })?;
    de.end().map_err(|e| {
        Problem::invalid(vec![FieldError::new(
            "body",
            format!("malformed JSON: trailing characters after the value ({e})"),
        )])
    })?;
    Ok(value)
}

/// Items per page when a listing's `limit` is absent.
pub const DEFAULT_PAGE_SIZE: usize = 50;

/// The query string as a name-to-value map, each name once. Handlers [`take`](Self::take)
/// what they know and [`finish`](Self::finish) refuses the rest by name.
#[derive(Debug, Default)]
pub struct QueryMap(pub HashMap<String, String>);

impl QueryMap {
    pub fn take(&mut self, name: &str) -> Option<String> {
        self.0.remove(name)
    }

    /// An id parameter (workspace, group): the id rule of the core, or an error by name.
    pub fn take_id(&mut self, name: &str, errors: &mut Vec<FieldError>) -> Option<String> {
        let value = self.take(name)?;
        match keyward_core::id::check_id(name, &value) {
            Ok(()) => Some(value),
            Err(e) => {
                errors.push(e);
                None
            }
        }
    }

    /// `limit`, 1 to the store's page maximum, [`DEFAULT_PAGE_SIZE`] when absent.
    pub fn limit(&mut self, errors: &mut Vec<FieldError>) -> usize {
        let max = keyward_store::port::MAX_PAGE_SIZE;
        match self.take("limit").map(|v| v.parse::<usize>()) {
            None => DEFAULT_PAGE_SIZE,
            Some(Ok(n)) if (1..=max).contains(&n) => n,
            Some(_) => {
                errors.push(FieldError::new(
                    "limit",
                    format!("an integer from 1 to {max}"),
                ));
                DEFAULT_PAGE_SIZE
            }
        }
    }

    /// Refuses unknown parameters and any errors found while taking the known ones.
    pub fn finish(self, mut errors: Vec<FieldError>, known: &str) -> Result<(), HttpError> {
        for name in self.0.into_keys() {
            errors.push(FieldError::new(
                name.chars().take(64).collect::<String>(),
                format!("unknown query parameter; known: {known}"),
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            errors.sort_by(|a, b| a.field.cmp(&b.field));
            Err(Problem::invalid(errors).into())
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryMap {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map(|q| QueryMap(q.0))
            .map_err(|_| {
                Problem::invalid(vec![FieldError::new(
                    "query",
                    "the query string is malformed",
                )])
                .into()
            })
    }
}

/// Path parameters (a key id, or a key id and a workspace), with a problem on malformed ones.
#[derive(Debug)]
pub struct PathParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParams<T> {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| PathParams(p.0))
            .map_err(|_| {
                Problem::invalid(vec![FieldError::new("path", "malformed path parameter")]).into()
            })
    }
}

/// What [`IfMatch`] accepts, for the OpenAPI document: `*`, or one ETag of this API (a
/// version in quotes, optionally weak).
pub const IF_MATCH_PATTERN: &str = r#"^(\*|(W/)?"[0-9]+")$"#;

/// `If-Match: "<version>"` (or `W/"<version>"`), the version a change is conditional on;
/// `*` or no header means any version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfMatch(pub Option<u64>);

impl IfMatch {
    /// Parses a header value by [`IF_MATCH_PATTERN`]. An ETag too large to be a version is
    /// well formed but matches no key: it stands for a version no key reaches (versions count
    /// up from 1), so the edit answers 412 like any other stale ETag.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        if value == "*" {
            return Some(IfMatch(None));
        }
        let digits = value
            .strip_prefix("W/")
            .unwrap_or(value)
            .strip_prefix('"')?
            .strip_suffix('"')?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(IfMatch(Some(digits.parse().unwrap_or(u64::MAX))))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::IF_MATCH) else {
            return Ok(IfMatch(None));
        };
        value.to_str().ok().and_then(IfMatch::parse).ok_or_else(|| {
            Problem::invalid(vec![FieldError::new(
                "If-Match",
                "an ETag from this API, such as \"3\"",
            )])
            .into()
        })
    }
}

/// The client's address as the edge learned it: set as an extension by the Lambda adapter,
/// or taken from the TCP peer under `keyward serve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if let Some(ip) = parts.extensions.get::<ClientIp>() {
            return Ok(*ip);
        }
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// The headers that are text, as name-value pairs (the form the core's rules read).
pub fn text_headers(headers: &axum::http::HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)))
}

/// The key a request presents, by the core's rule (`X-API-Key`, else `Authorization: Bearer`).
pub fn presented_key(headers: &axum::http::HeaderMap) -> Option<&str> {
    credential::from_headers(text_headers(headers)).0
}

/// The key a request presents in its headers, read without copying the rest of them.
#[derive(Debug)]
pub struct CallerKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for CallerKey {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(CallerKey(presented_key(&parts.headers).map(str::to_owned)))
    }
}

/// An authenticated admin caller: every management handler takes one.
#[derive(Debug)]
pub struct Admin(pub Actor);

impl FromRequestParts<App> for Admin {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let ClientIp(ip) = ClientIp::from_request_parts(parts, app)
            .await
            .unwrap_or(ClientIp(None));
        app.authenticate_admin(presented_key(&parts.headers), ip)
            .await
            .map(Admin)
            .map_err(HttpError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    #[test]
    fn the_key_comes_from_either_header() {
        let mut h = HeaderMap::new();
        assert_eq!(presented_key(&h), None);
        h.insert("authorization", "bearer abc".parse().unwrap());
        assert_eq!(presented_key(&h), Some("abc"));
        h.insert("authorization", "Basic abc".parse().unwrap());
        assert_eq!(presented_key(&h), None);
        h.insert("x-api-key", "xyz".parse().unwrap());
        assert_eq!(presented_key(&h), Some("xyz"));
    }

    #[test]
    fn a_json_body_is_said_so_by_its_media_type_in_any_case() {
        let said = |value: Option<&str>| {
            let mut h = HeaderMap::new();
            if let Some(v) = value {
                h.insert(header::CONTENT_TYPE, v.parse().unwrap());
            }
            is_json(&h)
        };
        for yes in [
            "application/json",
            "Application/JSON; charset=utf-8",
            " application/json ;q=1",
            "application/merge-patch+json",
            "APPLICATION/PROBLEM+JSON",
            "application/+json",
        ] {
            assert!(said(Some(yes)), "{yes}");
        }
        for no in [
            "text/json",
            "application/jsonx",
            "application/json5",
            "application/xml",
            "applicatio/+json",
            "+json",
            "",
        ] {
            assert!(!said(Some(no)), "{no}");
        }
        assert!(!said(None));
    }

    #[test]
    fn if_match_is_read_exactly_as_its_pattern_says() {
        let pattern = regex_lite::Regex::new(IF_MATCH_PATTERN).unwrap();
        for text in [
            "*",
            "\"3\"",
            "W/\"3\"",
            "\"0\"",
            "\"99999999999999999999999\"",
            "",
            "3",
            "\"\"",
            "\"+3\"",
            "W/W/\"3\"",
            "w/\"3\"",
            "\"3\", \"4\"",
            "\"3",
            "**",
            "\"3 \"",
        ] {
            assert_eq!(
                IfMatch::parse(text).is_some(),
                pattern.is_match(text),
                "{text}"
            );
        }
        assert_eq!(IfMatch::parse("W/\"7\""), Some(IfMatch(Some(7))));
        assert_eq!(
            IfMatch::parse("\"99999999999999999999999\""),
            Some(IfMatch(Some(u64::MAX)))
        );
    }

    #[test]
    fn json_errors_name_the_field() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct T {
            name: Option<String>,
            n: Option<i64>,
        }
        let e = parse_json::<T>(br#"{"name": 5}"#).unwrap_err();
        assert_eq!(e.errors[0].field, "name");
        let e = parse_json::<T>(br#"{"name": "x", "n": "7"}"#).unwrap_err();
        assert_eq!(e.errors[0].field, "n");
        let e = parse_json::<T>(br#"{"name": "#).unwrap_err();
        assert!(e.errors[0].message.starts_with("malformed JSON"), "{e:?}");
        let e = parse_json::<T>(br#"{"bogus": 1}"#).unwrap_err();
        assert!(
            e.errors[0].message.contains("unknown field `bogus`"),
            "{e:?}"
        );
        let e = parse_json::<T>(br#"{} {}"#).unwrap_err();
        assert!(e.errors[0].message.contains("trailing"), "{e:?}");
        for not_an_object in [&b"[\"x\", 5]"[..], b"null", b"  7", b"", b"\"s\""] {
            let e = parse_json::<T>(not_an_object).unwrap_err();
            assert_eq!(e.errors[0].field, "body");
        }
    }
}
