//! API Gateway authorizer events: REST `TOKEN` and `REQUEST`, and HTTP API (payload 2.0),
//! decoded in one pass into the [`Presented`] request every verifying edge hands the decision.

use std::borrow::Cow;
use std::net::IpAddr;

use keyward_core::credential::{self, KeySource};
use keyward_service::verification::{Pairs, Presented, Target};
use serde::Deserialize;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;
use thiserror::Error;

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

/// A JSON string, borrowed from the input when it holds no escapes.
#[derive(Debug, Default)]
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for Visit<'a> {
            type Value = Text<'a>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }

            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(Visit(std::marker::PhantomData))
    }
}

/// An object's key, as the index of the name it is among `names` (none for a key the
/// authorizer skips). Keys are compared as bytes: a key that is none of the names is skipped
/// like the value the authorizer does not read, without being checked as text (which costs
/// about 150 ns over an event's many keys).
struct FieldOf(&'static [&'static [u8]]);

impl<'de> DeserializeSeed<'de> for FieldOf {
    type Value = Option<usize>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_bytes(self)
    }
}

impl Visitor<'_> for FieldOf {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a field name")
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|name| *name == v))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Option<usize>, E> {
        self.visit_bytes(v.as_bytes())
    }
}

/// `Deserialize` for a struct of the event read from a JSON object: the named keys into their
/// fields, every other key skipped unread, a key given twice refused (as serde's derive does).
macro_rules! object {
    ($ty:ident { $($field:ident: $name:literal),* $(,)? }) => {
        impl<'de: 'a, 'a> Deserialize<'de> for $ty<'a> {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                const NAMES: &[&[u8]] = &[$($name),*];
                const _: () = assert!(NAMES.len() <= 32, "`seen` holds 32 fields");
                struct Visit<'a>(std::marker::PhantomData<&'a ()>);
                impl<'de: 'a, 'a> Visitor<'de> for Visit<'a> {
                    type Value = $ty<'a>;

                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("a JSON object")
                    }

                    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<$ty<'a>, A::Error> {
                        let mut read = $ty::default();
                        let mut seen = 0u32;
                        while let Some(field) = map.next_key_seed(FieldOf(NAMES))? {
                            let Some(i) = field else {
                                map.next_value::<IgnoredAny>()?;
                                continue;
                            };
                            if seen & (1 << i) != 0 {
                                return Err(serde::de::Error::custom(format_args!(
                                    "duplicate field `{}`",
                                    String::from_utf8_lossy(NAMES[i])
                                )));
                            }
                            seen |= 1 << i;
                            match NAMES[i] {
                                $($name => read.$field = map.next_value()?,)*
                                _ => map.next_value::<IgnoredAny>().map(drop)?,
                            }
                        }
                        Ok(read)
                    }
                }
                d.deserialize_map(Visit(std::marker::PhantomData))
            }
        }
    };
}

/// The fields any of the three events may carry that the authorizer reads; every other field
/// is skipped unread, so one pass over the bytes decodes any kind.
#[derive(Debug, Default)]
struct RawEvent<'a> {
    kind: Option<Text<'a>>,
    version: Option<Text<'a>>,
    authorization_token: Option<Text<'a>>,
    method_arn: Option<Text<'a>>,
    route_arn: Option<Text<'a>>,
    path: Option<Text<'a>>,
    raw_path: Option<Text<'a>>,
    http_method: Option<Text<'a>>,
    route_key: Option<Text<'a>>,
    identity_source: IdentitySource<'a>,
    headers: RawPairs<'a>,
    query_string_parameters: RawPairs<'a>,
    request_context: Option<RawContext<'a>>,
}

object!(RawEvent {
    kind: b"type",
    version: b"version",
    authorization_token: b"authorizationToken",
    method_arn: b"methodArn",
    route_arn: b"routeArn",
    path: b"path",
    raw_path: b"rawPath",
    http_method: b"httpMethod",
    route_key: b"routeKey",
    identity_source: b"identitySource",
    headers: b"headers",
    query_string_parameters: b"queryStringParameters",
    request_context: b"requestContext",
});

/// A JSON object of strings (or `null`, or absent) read straight into name-value pairs:
/// headers and query parameters, without a map in between. `null` values are skipped.
#[derive(Debug, Default)]
struct RawPairs<'a>(Pairs<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for RawPairs<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for Visit<'a> {
            type Value = RawPairs<'a>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of strings, or null")
            }

            fn visit_unit<E: serde::de::Error>(self) -> Result<RawPairs<'a>, E> {
                Ok(RawPairs::default())
            }

            fn visit_none<E: serde::de::Error>(self) -> Result<RawPairs<'a>, E> {
                Ok(RawPairs::default())
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<RawPairs<'a>, A::Error> {
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some((k, v)) = map.next_entry::<Text<'a>, Option<Text<'a>>>()? {
                    if let Some(v) = v {
                        pairs.push((k.0, v.0));
                    }
                }
                Ok(RawPairs(pairs))
            }
        }
        d.deserialize_any(Visit(std::marker::PhantomData))
    }
}

/// The values of an event's identity sources: a list in payload 2.0, one comma-joined string
/// in payload 1.0 (kept whole), or `null`.
#[derive(Debug, Default)]
struct IdentitySource<'a>(Vec<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for IdentitySource<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for Visit<'a> {
            type Value = IdentitySource<'a>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of strings, a string, or null")
            }

            fn visit_unit<E: serde::de::Error>(self) -> Result<IdentitySource<'a>, E> {
                Ok(IdentitySource::default())
            }

            fn visit_none<E: serde::de::Error>(self) -> Result<IdentitySource<'a>, E> {
                Ok(IdentitySource::default())
            }

            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<IdentitySource<'a>, E> {
                Ok(IdentitySource(vec![Cow::Borrowed(v)]))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<IdentitySource<'a>, E> {
                Ok(IdentitySource(vec![Cow::Owned(v.to_owned())]))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<IdentitySource<'a>, A::Error> {
                let mut values = Vec::with_capacity(seq.size_hint().unwrap_or(2));
                while let Some(v) = seq.next_element::<Option<Text<'a>>>()? {
                    values.extend(v.map(|t| t.0));
                }
                Ok(IdentitySource(values))
            }
        }
        d.deserialize_any(Visit(std::marker::PhantomData))
    }
}

#[derive(Debug, Default)]
struct RawContext<'a> {
    stage: Option<Text<'a>>,
    identity: Option<RawIdentity<'a>>,
    http: Option<RawHttp<'a>>,
}

object!(RawContext {
    stage: b"stage",
    identity: b"identity",
    http: b"http",
});

#[derive(Debug, Default)]
struct RawIdentity<'a> {
    source_ip: Option<Text<'a>>,
}

object!(RawIdentity {
    source_ip: b"sourceIp",
});

#[derive(Debug, Default)]
struct RawHttp<'a> {
    method: Option<Text<'a>>,
    path: Option<Text<'a>>,
    source_ip: Option<Text<'a>>,
}

object!(RawHttp {
    method: b"method",
    path: b"path",
    source_ip: b"sourceIp",
});

fn text(t: Option<Text<'_>>) -> Option<Cow<'_, str>> {
    t.map(|t| t.0)
}

fn address(t: Option<Text<'_>>) -> Option<IpAddr> {
    t.and_then(|t| t.0.parse().ok())
}

impl<'a> AuthorizerEvent<'a> {
    /// Parses an event from its JSON bytes (the hot path: one pass, only what is read, text
    /// borrowed from `bytes`).
    pub fn from_slice(bytes: &'a [u8]) -> Result<Self, EventError> {
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(EventError::Malformed("an event is a JSON object".into()));
        }
        let raw: RawEvent<'a> =
            serde_json::from_slice(bytes).map_err(|e| EventError::Malformed(e.to_string()))?;
        Self::from_raw(raw)
    }

    /// Parses an event already read as a JSON value.
    pub fn parse(event: &'a Value) -> Result<Self, EventError> {
        if !event.is_object() {
            return Err(EventError::Malformed("an event is a JSON object".into()));
        }
        let raw = RawEvent::deserialize(event).map_err(|e| EventError::Malformed(e.to_string()))?;
        Self::from_raw(raw)
    }

    fn from_raw(raw: RawEvent<'a>) -> Result<Self, EventError> {
        let kind = match (text(raw.kind), raw.version.as_ref().map(|v| &*v.0)) {
            (Some(k), _) if k.eq_ignore_ascii_case("TOKEN") => EventKind::Token,
            (Some(k), Some("2.0")) if k.eq_ignore_ascii_case("REQUEST") => EventKind::HttpApi,
            (Some(k), Some("1.0")) if k.eq_ignore_ascii_case("REQUEST") => EventKind::HttpApiV1,
            (Some(k), _) if k.eq_ignore_ascii_case("REQUEST") => EventKind::Request,
            _ => return Err(EventError::Unknown),
        };
        let context = raw.request_context.unwrap_or_default();
        let route_key = text(raw.route_key);
        let identity_source = raw.identity_source.0;
        let (arn, presented) = match kind {
            EventKind::Token => {
                let arn = text(raw.method_arn).unwrap_or_default();
                let (method, path) = method_and_path(&arn).unwrap_or_default();
                let token = text(raw.authorization_token)
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
                let headers = raw.headers.0;
                let (token, source) = token_of(&headers);
                let arn = text(raw.method_arn).unwrap_or_default();
                let (arn_method, arn_path) = method_and_path(&arn).unwrap_or_default();
                let presented = Presented {
                    token,
                    source,
                    source_ip: address(context.identity.and_then(|i| i.source_ip)),
                    target: Target::Route {
                        method: text(raw.http_method).unwrap_or(Cow::Owned(arn_method)),
                        path: text(raw.path).unwrap_or(Cow::Owned(arn_path)),
                        headers,
                        query: raw.query_string_parameters.0,
                    },
                };
                (arn, presented)
            }
            EventKind::HttpApi => {
                let headers = raw.headers.0;
                let (token, source) = token_of(&headers);
                let http = context.http.unwrap_or_default();
                let raw_path = text(raw.raw_path)
                    .or(text(http.path))
                    .unwrap_or(Cow::Borrowed("/"));
                let stage = text(context.stage);
                let presented = Presented {
                    token,
                    source,
                    source_ip: address(http.source_ip),
                    target: Target::Route {
                        method: text(http.method).unwrap_or_default(),
                        path: strip_stage(raw_path, stage.as_deref()),
                        headers,
                        query: raw.query_string_parameters.0,
                    },
                };
                (text(raw.route_arn).unwrap_or_default(), presented)
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
