//! API Gateway authorizer events: REST `TOKEN` and `REQUEST`, and HTTP API (payload 2.0),
//! decoded in one pass into the [`Presented`] request every verifying edge hands the decision.

use std::borrow::Cow;
use std::net::IpAddr;

use keyward_core::credential::{self, KeySource};
use keyward_service::verification::{Pairs, Presented, Target};
use serde_json::Value;
use thiserror::Error;

use self::scan::{Scan, Scanned};

mod scan;

/// An authorizer event that cannot be understood.
#[derive(Debug, Error)]
pub enum EventError {
    #[error("the event is not JSON of an API Gateway authorizer: {0}")]
    Malformed(String),
    #[error("the event is not an API Gateway authorizer event (expected type TOKEN or REQUEST)")]
    Unknown,
}

/// The kinds of event. An HTTP API sends payload 1.0 (the REST `REQUEST` shape with
/// `"version": "1.0"`) or 2.0, and answers them differently from a REST API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Token,
    Request,
    HttpApiV1,
    HttpApi,
}

impl EventKind {
    pub const fn name(self) -> &'static str {
        match self {
            Self::Token => "REST TOKEN",
            Self::Request => "REST REQUEST",
            Self::HttpApiV1 => "HTTP API (payload 1.0)",
            Self::HttpApi => "HTTP API (payload 2.0)",
        }
    }
}

/// An authorizer event: its kind, the request it describes, and the ARN a policy answers for
/// (the method ARN of a REST event, the route ARN of an HTTP API event). Its text borrows from
/// the bytes it was read from wherever JSON needed no unescaping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizerEvent<'a> {
    pub kind: EventKind,
    pub presented: Presented<'a>,
    pub arn: Cow<'a, str>,
    /// An HTTP API event's route key (`GET /agents/{id}`) and the values of its identity
    /// sources (what API Gateway caches an answer by).
    pub route_key: Option<Cow<'a, str>>,
    pub identity_source: Vec<Cow<'a, str>>,
}

/// Reads a `$ty` from an object (or `null`, which leaves it as its default): each named key's
/// value into its field by its reader, every other key's value skipped unread, and a named key
/// given twice refused (a later one must not quietly replace what an earlier one said). One
/// `match` on each key.
macro_rules! read_object {
    ($s:expr, $ty:ident { $($field:ident: $name:literal => $reader:expr),* $(,)? }) => {{
        const NAMES: &[&str] = &[$($name),*];
        const _: () = assert!(NAMES.len() <= 32, "`seen` holds 32 fields");
        let mut read = $ty::default();
        let mut seen = 0u32;
        let s: &mut Scan<'_> = $s;
        if !s.null()? {
            s.object(|s, key| {
            match &*key {
                $($name => {
                    const BIT: u32 = 1 << position(NAMES, $name);
                    if seen & BIT != 0 {
                        return s.error(concat!("duplicate field `", $name, "`"));
                    }
                    seen |= BIT;
                    read.$field = $reader(s)?;
                })*
                _ => s.skip()?,
            }
            Ok(())
            })?;
        }
        Ok(read)
    }};
}

/// Where `name` is in `names` (at compile time, for [`read_object!`]).
#[allow(clippy::panic)] // only ever evaluated in a const: a panic is a compile error
const fn position(names: &[&str], name: &str) -> usize {
    let mut i = 0;
    while i < names.len() {
        if names[i].len() == name.len() {
            let (a, b) = (names[i].as_bytes(), name.as_bytes());
            let mut j = 0;
            while j < a.len() && a[j] == b[j] {
                j += 1;
            }
            if j == a.len() {
                return i;
            }
        }
        i += 1;
    }
    panic!("a field's name is among its object's names")
}

/// The fields any of the three events may carry that the authorizer reads; every other field
/// is skipped unread, so one pass over the bytes decodes any kind.
#[derive(Debug, Default)]
struct RawEvent<'a> {
    kind: Option<Cow<'a, str>>,
    version: Option<Cow<'a, str>>,
    authorization_token: Option<Cow<'a, str>>,
    method_arn: Option<Cow<'a, str>>,
    route_arn: Option<Cow<'a, str>>,
    path: Option<Cow<'a, str>>,
    raw_path: Option<Cow<'a, str>>,
    http_method: Option<Cow<'a, str>>,
    route_key: Option<Cow<'a, str>>,
    identity_source: Vec<Cow<'a, str>>,
    headers: Pairs<'a>,
    query_string_parameters: Pairs<'a>,
    request_context: RawContext<'a>,
}

#[derive(Debug, Default)]
struct RawContext<'a> {
    stage: Option<Cow<'a, str>>,
    identity: RawIdentity<'a>,
    http: RawHttp<'a>,
}

/// `requestContext.identity` (REST and payload 1.0).
#[derive(Debug, Default)]
struct RawIdentity<'a> {
    source_ip: Option<Cow<'a, str>>,
}

/// `requestContext.http` (payload 2.0).
#[derive(Debug, Default)]
struct RawHttp<'a> {
    method: Option<Cow<'a, str>>,
    path: Option<Cow<'a, str>>,
    source_ip: Option<Cow<'a, str>>,
}

impl<'a> RawEvent<'a> {
    /// Reads an event's fields from JSON text in one pass.
    fn scan(s: &mut Scan<'a>) -> Scanned<Self> {
        // An event is an object: `read_object!` alone would take `null` as an empty one.
        if s.peek() != Some(b'{') {
            return s.error("an event is a JSON object");
        }
        read_object!(s, RawEvent {
            kind: "type" => Scan::string_or_null,
            version: "version" => Scan::string_or_null,
            authorization_token: "authorizationToken" => Scan::string_or_null,
            method_arn: "methodArn" => Scan::string_or_null,
            route_arn: "routeArn" => Scan::string_or_null,
            path: "path" => Scan::string_or_null,
            raw_path: "rawPath" => Scan::string_or_null,
            http_method: "httpMethod" => Scan::string_or_null,
            route_key: "routeKey" => Scan::string_or_null,
            identity_source: "identitySource" => identity_source,
            headers: "headers" => pairs,
            query_string_parameters: "queryStringParameters" => pairs,
            request_context: "requestContext" => RawContext::scan,
        })
    }
}

impl<'a> RawContext<'a> {
    /// `requestContext`: an object, or `null`.
    fn scan(s: &mut Scan<'a>) -> Scanned<Self> {
        read_object!(s, RawContext {
            stage: "stage" => Scan::string_or_null,
            identity: "identity" => |s: &mut Scan<'a>| read_object!(s, RawIdentity {
                source_ip: "sourceIp" => Scan::string_or_null,
            }),
            http: "http" => |s: &mut Scan<'a>| read_object!(s, RawHttp {
                method: "method" => Scan::string_or_null,
                path: "path" => Scan::string_or_null,
                source_ip: "sourceIp" => Scan::string_or_null,
            }),
        })
    }
}

/// The same fields from a JSON value, by the same rules, written as plainly as they can be:
/// the model [`AuthorizerEvent::from_slice`]'s reader is fuzzed against.
impl<'a> RawEvent<'a> {
    fn of_value(event: &'a Value) -> Result<Self, String> {
        let event = Some(object_of(Some(event), "the event")?.ok_or("an event is a JSON object")?);
        let context = object_of(
            event.and_then(|e| e.get("requestContext")),
            "requestContext",
        )?;
        let inner = |name: &str| object_of(context.and_then(|c| c.get(name)), name);
        let (identity, http) = (inner("identity")?, inner("http")?);
        Ok(Self {
            kind: text_of(event, "type")?,
            version: text_of(event, "version")?,
            authorization_token: text_of(event, "authorizationToken")?,
            method_arn: text_of(event, "methodArn")?,
            route_arn: text_of(event, "routeArn")?,
            path: text_of(event, "path")?,
            raw_path: text_of(event, "rawPath")?,
            http_method: text_of(event, "httpMethod")?,
            route_key: text_of(event, "routeKey")?,
            identity_source: match event.and_then(|e| e.get("identitySource")) {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::String(s)) => vec![Cow::Borrowed(s.as_str())],
                Some(Value::Array(values)) => values
                    .iter()
                    .filter(|v| !v.is_null())
                    .map(|v| {
                        v.as_str()
                            .map(Cow::Borrowed)
                            .ok_or("identitySource: not a string")
                    })
                    .collect::<Result<_, _>>()?,
                Some(_) => return Err("identitySource: not a list, a string or null".into()),
            },
            headers: pairs_of(event, "headers")?,
            query_string_parameters: pairs_of(event, "queryStringParameters")?,
            request_context: RawContext {
                stage: text_of(context, "stage")?,
                identity: RawIdentity {
                    source_ip: text_of(identity, "sourceIp")?,
                },
                http: RawHttp {
                    method: text_of(http, "method")?,
                    path: text_of(http, "path")?,
                    source_ip: text_of(http, "sourceIp")?,
                },
            },
        })
    }
}

/// An object, or `null` or absent (none).
fn object_of<'a>(
    value: Option<&'a Value>,
    name: &str,
) -> Result<Option<&'a serde_json::Map<String, Value>>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(format!("{name}: not an object or null")),
    }
}

/// A string, or `null` or absent (none), in an object that may itself be absent.
fn text_of<'a>(
    object: Option<&'a serde_json::Map<String, Value>>,
    name: &str,
) -> Result<Option<Cow<'a, str>>, String> {
    match object.and_then(|o| o.get(name)) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(Cow::Borrowed(s))),
        Some(_) => Err(format!("{name}: not a string or null")),
    }
}

fn pairs_of<'a>(
    object: Option<&'a serde_json::Map<String, Value>>,
    name: &str,
) -> Result<Pairs<'a>, String> {
    let Some(pairs) = object_of(object.and_then(|o| o.get(name)), name)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (k, v) in pairs {
        match v {
            Value::Null => {}
            Value::String(v) => out.push((Cow::Borrowed(k.as_str()), Cow::Borrowed(v.as_str()))),
            _ => return Err(format!("{name}.{k}: not a string or null")),
        }
    }
    Ok(out)
}

/// An object of strings (or `null`, or absent) read straight into name-value pairs: headers and
/// query parameters, without a map in between. `null` values are skipped.
fn pairs<'a>(s: &mut Scan<'a>) -> Scanned<Pairs<'a>> {
    let mut pairs = Vec::new();
    if s.null()? {
        return Ok(pairs);
    }
    // `object` would refuse it too; this says what was expected here.
    if s.peek() != Some(b'{') {
        return s.error("expected an object of strings, or null");
    }
    s.object(|s, name| {
        if let Some(value) = s.string_or_null()? {
            pairs.push((name, value));
        }
        Ok(())
    })?;
    Ok(pairs)
}

/// The values of an event's identity sources: a list in payload 2.0, one comma-joined string in
/// payload 1.0 (kept whole), or `null`. `null` values are skipped.
fn identity_source<'a>(s: &mut Scan<'a>) -> Scanned<Vec<Cow<'a, str>>> {
    let mut values = Vec::new();
    match s.peek() {
        Some(b'[') => s.array(|s| {
            values.extend(s.string_or_null()?);
            Ok(())
        })?,
        Some(b'"') => values.push(s.string()?),
        Some(b'n') => {
            s.null()?;
        }
        _ => return s.error("expected a list of strings, a string, or null"),
    }
    Ok(values)
}

fn address(t: Option<Cow<'_, str>>) -> Option<IpAddr> {
    t.and_then(|t| t.parse().ok())
}

impl<'a> AuthorizerEvent<'a> {
    /// Parses an event from its JSON bytes (the hot path: one pass, only what is read, text
    /// borrowed from `bytes`).
    pub fn from_slice(bytes: &'a [u8]) -> Result<Self, EventError> {
        let raw = Scan::new(bytes)
            .and_then(|mut s| {
                let raw = RawEvent::scan(&mut s)?;
                s.end()?; // one JSON value, nothing after it
                Ok(raw)
            })
            .map_err(|e| EventError::Malformed(e.to_string()))?;
        Self::from_raw(raw)
    }

    /// Parses an event already read as a JSON value, by the same rules: the reference the
    /// `authorizer_event` fuzz target holds [`Self::from_slice`]'s reader to.
    pub fn parse(event: &'a Value) -> Result<Self, EventError> {
        let raw = RawEvent::of_value(event).map_err(EventError::Malformed)?;
        Self::from_raw(raw)
    }

    fn from_raw(raw: RawEvent<'a>) -> Result<Self, EventError> {
        let kind = match (raw.kind.as_deref(), raw.version.as_deref()) {
            (Some(k), _) if k.eq_ignore_ascii_case("TOKEN") => EventKind::Token,
            (Some(k), Some("2.0")) if k.eq_ignore_ascii_case("REQUEST") => EventKind::HttpApi,
            (Some(k), Some("1.0")) if k.eq_ignore_ascii_case("REQUEST") => EventKind::HttpApiV1,
            (Some(k), _) if k.eq_ignore_ascii_case("REQUEST") => EventKind::Request,
            _ => return Err(EventError::Unknown),
        };
        let context = raw.request_context;
        let route_key = raw.route_key;
        let identity_source = raw.identity_source;
        let (arn, presented) = match kind {
            EventKind::Token => {
                let arn = raw.method_arn.unwrap_or_default();
                let (method, path) = method_and_path(&arn).unwrap_or_default();
                let token = raw
                    .authorization_token
                    .map(|t| match credential::bearer(&t) {
                        Some(b) => Cow::Owned(b.to_owned()),
                        None if t.trim().len() == t.len() => t,
                        None => Cow::Owned(t.trim().to_owned()),
                    })
                    .filter(|t| !t.is_empty());
                let presented = Presented {
                    token,
                    source: KeySource::AuthorizationToken,
                    source_ip: None,
                    target: Target::Route {
                        method: Cow::Owned(method),
                        path: Cow::Owned(path),
                        headers: Vec::new(),
                        query: Vec::new(),
                    },
                };
                (arn, presented)
            }
            EventKind::Request | EventKind::HttpApiV1 => {
                let headers = raw.headers;
                let (token, source) = token_of(&headers);
                let arn = raw.method_arn.unwrap_or_default();
                let (arn_method, arn_path) = method_and_path(&arn).unwrap_or_default();
                let presented = Presented {
                    token,
                    source,
                    source_ip: address(context.identity.source_ip),
                    target: Target::Route {
                        method: raw.http_method.unwrap_or(Cow::Owned(arn_method)),
                        path: raw.path.unwrap_or(Cow::Owned(arn_path)),
                        headers,
                        query: raw.query_string_parameters,
                    },
                };
                (arn, presented)
            }
            EventKind::HttpApi => {
                let headers = raw.headers;
                let (token, source) = token_of(&headers);
                let http = context.http;
                let raw_path = raw.raw_path.or(http.path).unwrap_or(Cow::Borrowed("/"));
                let stage = context.stage;
                let presented = Presented {
                    token,
                    source,
                    source_ip: address(http.source_ip),
                    target: Target::Route {
                        method: http.method.unwrap_or_default(),
                        path: strip_stage(raw_path, stage.as_deref()),
                        headers,
                        query: raw.query_string_parameters,
                    },
                };
                (raw.route_arn.unwrap_or_default(), presented)
            }
        };
        Ok(Self {
            kind,
            presented,
            arn,
            route_key,
            identity_source,
        })
    }
}

/// The key of a request's headers, by the core's rule: borrowed from the event's bytes when
/// its header was (no copy on the hot path), copied when its value had to be unescaped.
fn token_of<'a>(headers: &Pairs<'a>) -> (Option<Cow<'a, str>>, KeySource) {
    let (token, source) = credential::from_headers(headers.iter().map(|(k, v)| (&**k, &**v)));
    let token = token.map(|t| {
        headers
            .iter()
            .find_map(|(_, v)| match v {
                Cow::Borrowed(v) => part_of(v, t),
                Cow::Owned(_) => None,
            })
            .map_or_else(|| Cow::Owned(t.to_owned()), Cow::Borrowed)
    });
    (token, source)
}

/// `part` as the same text within `whole`, when it is a slice of it.
fn part_of<'a>(whole: &'a str, part: &str) -> Option<&'a str> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    whole.get(start..start.checked_add(part.len())?)
}

/// `arn:aws:execute-api:region:account:api/stage/METHOD/path` -> (METHOD, /path).
fn method_and_path(arn: &str) -> Option<(String, String)> {
    let resource = arn.splitn(6, ':').nth(5)?;
    let mut parts = resource.splitn(4, '/');
    let (_api, _stage, method) = (parts.next()?, parts.next()?, parts.next()?);
    Some((
        method.to_owned(),
        format!("/{}", parts.next().unwrap_or_default()),
    ))
}

/// `path` without the `/<stage>` API Gateway puts in front on a named stage.
pub fn without_stage(path: &str, stage: Option<&str>) -> String {
    strip_stage(Cow::Borrowed(path), stage).into_owned()
}

/// The same, keeping a borrowed path borrowed.
fn strip_stage<'a>(path: Cow<'a, str>, stage: Option<&str>) -> Cow<'a, str> {
    let Some(stage) = stage.filter(|s| *s != "$default") else {
        return path;
    };
    match path.strip_prefix('/').and_then(|p| p.strip_prefix(stage)) {
        Some("") => Cow::Borrowed("/"),
        Some(rest) if rest.starts_with('/') => Cow::Owned(rest.to_owned()),
        _ => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_and_stages_give_method_and_path() {
        assert_eq!(
            method_and_path(
                "arn:aws:execute-api:us-east-1:123456789012:abcdef123/prod/GET/agents/ag_1"
            ),
            Some(("GET".into(), "/agents/ag_1".into()))
        );
        assert_eq!(
            method_and_path("arn:aws:execute-api:us-east-1:1:api/test/POST/"),
            Some(("POST".into(), "/".into()))
        );
        assert_eq!(method_and_path("not an arn"), None);
        assert_eq!(without_stage("/prod/agents", Some("prod")), "/agents");
        assert_eq!(without_stage("/agents", Some("$default")), "/agents");
        assert_eq!(
            without_stage("/production/x", Some("prod")),
            "/production/x"
        );
    }

    #[test]
    fn keys_are_matched_escaped_or_not_and_refused_twice() {
        let escaped = br#"{"type": "REQUEST", "version": "2.0", "raw\u0050ath": "/a",
            "requestContext": {"http": {"method": "GET", "sourceIp": "10.0.0.1"}, "x": [1, {"y": null}]}}"#;
        let event = AuthorizerEvent::from_slice(escaped).unwrap();
        let Target::Route { path, method, .. } = &event.presented.target else {
            panic!("an authorizer event is a route request");
        };
        assert_eq!((&**method, &**path), ("GET", "/a"));
        for twice in [
            r#"{"type": "REQUEST", "headers": {}, "headers": {"x-api-key": "k"}}"#,
            r#"{"type": "TOKEN", "type": "REQUEST"}"#,
            r#"{"type": "REQUEST", "requestContext": {"http": {"method": "GET", "method": "POST"}}}"#,
        ] {
            let e = AuthorizerEvent::from_slice(twice.as_bytes()).unwrap_err();
            assert!(e.to_string().contains("duplicate field"), "{twice}: {e}");
        }
        for broken in [
            r#"{"type": "REQUEST", "headers": [1]}"#,
            r#"{"type": 1}"#,
            r#"{"type": "TOKEN""#,
        ] {
            assert!(matches!(
                AuthorizerEvent::from_slice(broken.as_bytes()),
                Err(EventError::Malformed(_))
            ));
        }
        let value: Value = serde_json::from_slice(escaped).unwrap();
        assert_eq!(
            AuthorizerEvent::parse(&value).unwrap().kind,
            EventKind::HttpApi
        );
    }

    #[test]
    fn a_plain_key_is_borrowed_from_the_event_bytes() {
        for header in [
            r#""x-api-key": " kw_a ""#,
            r#""Authorization": "Bearer kw_a""#,
        ] {
            let bytes =
                format!(r#"{{"type": "REQUEST", "version": "2.0", "headers": {{{header}}}}}"#);
            let event = AuthorizerEvent::from_slice(bytes.as_bytes()).unwrap();
            assert!(
                matches!(event.presented.token, Some(Cow::Borrowed("kw_a"))),
                "{header}: {:?}",
                event.presented.token
            );
        }
        assert_eq!(part_of("abc", "x"), None, "not a slice of it");
        let whole = "abcdef";
        assert_eq!(part_of(whole, &whole[2..4]), Some("cd"));
    }

    #[test]
    fn text_is_borrowed_when_it_can_be_and_unescaped_when_it_must_be() {
        let bytes = br#"{"type": "REQUEST", "version": "2.0", "rawPath": "/a\u0062c",
            "headers": {"x-api-key": "k\u0065y", "x-other": "plain"},
            "requestContext": {"http": {"method": "GET", "sourceIp": "10.0.0.1"}}}"#;
        let event = AuthorizerEvent::from_slice(bytes).unwrap();
        assert_eq!(event.kind, EventKind::HttpApi);
        assert_eq!(event.presented.token.as_deref(), Some("key"));
        assert!(
            matches!(event.presented.token, Some(Cow::Owned(_))),
            "an escaped key is copied as unescaped"
        );
        let Target::Route { path, headers, .. } = &event.presented.target else {
            panic!("an authorizer event is a route request");
        };
        assert_eq!(path, "/abc");
        assert!(
            matches!(path, Cow::Owned(_)),
            "an escaped string is unescaped"
        );
        assert!(
            matches!(&headers[1].1, Cow::Borrowed("plain")),
            "a plain string is borrowed from the bytes"
        );
        assert_eq!(event.presented.source_ip, "10.0.0.1".parse().ok());
    }
}
