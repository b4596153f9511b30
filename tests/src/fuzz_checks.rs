//! The fuzz checks: one function per fuzz target, each taking the raw bytes of one input,
//! running a parser of hostile input on them and asserting what must hold of its answer.
//! A failed check panics, which is a crash to libFuzzer and a failed test to the replay.
//!
//! Two callers share these functions, so a crash found by fuzzing stays fixed:
//!
//! - `fuzz/fuzz_targets/<target>.rs`, run by `cargo fuzz run <target>` (see `docs/fuzzing.md`);
//! - `tests/tests/fuzz_corpus.rs`, which replays every input committed under
//!   `fuzz/corpus/<target>/` in the ordinary `cargo test --workspace`.
//!
//! Every check is deterministic: "now" and "today" are fixed, and no check draws randomness,
//! so an input fails the same way wherever it is replayed.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use axum::extract::FromRequestParts;
use axum::http::{HeaderValue, Request, Uri, header};
use chrono::{DateTime, NaiveDate, Utc};
use keyward_api::keys::{CreateKeyRequest, UpdateKeyRequest};
use keyward_api::problem::Problem;
use keyward_api::verify::VerifyRequest;
use keyward_aws::event::{AuthorizerEvent, EventError, EventKind};
use keyward_core::cidr::CidrList;
use keyward_core::credential::KeySource;
use keyward_core::decision::{AccessRequest, Needs};
use keyward_core::id::is_id;
use keyward_core::key::{
    ApiKey, KeyDraft, KeyRules, KeyStatus, MAX_DESCRIPTION_LEN, MAX_GROUPS, MAX_METADATA_BYTES,
    MAX_NAME_LEN, MAX_SCOPES, MAX_WORKSPACES,
};
use keyward_core::permission::{ResourcePattern, Scope, ScopeInput, is_name};
use keyward_core::preset::Presets;
use keyward_core::route::{
    RouteDenied, RoutePolicy, RoutePolicySpec, RouteRequest, RouteSpec, WorkspaceSource,
};
use keyward_core::token::{
    BASE62, CHECKSUM_LEN, MAX_PREFIX_LEN, Prefix, RANDOM_LEN, Token, TokenError, checksum,
};
use keyward_core::validation::FieldError;
use keyward_http::extract::{IfMatch, QueryMap, parse_json};
use keyward_http::keys::etag;
use keyward_service::usage::{DayRange, MAX_USAGE_DAYS};
use keyward_service::verification::request::presented;
use keyward_service::verification::{Presented, Target};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A check: one input's bytes in, a panic when something that must hold does not.
pub type Check = fn(&[u8]);

/// Every target by name: the name of its file in `fuzz/fuzz_targets/` and of its corpus
/// directory in `fuzz/corpus/`.
pub const TARGETS: &[(&str, Check)] = &[
    ("token", token),
    ("authorizer_event", authorizer_event),
    ("route_policy", route_policy),
    ("request_json", request_json),
    ("request_parts", request_parts),
];

/// The fixed "now" of every check (2026-01-01T00:00:00Z), so expiry rules replay the same.
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600, 0).unwrap()
}

fn today() -> NaiveDate {
    now().date_naive()
}

// ---------------------------------------------------------------------------------------------
// token
// ---------------------------------------------------------------------------------------------

/// `Token::parse` and `Token::parse_for` on the input as text, and on the same text with its
/// last six characters replaced by the right checksum (so the fuzzer reaches the accepting path
/// without forging CRC-32s). What parses re-serialises to exactly the input, the answer agrees
/// with an independent model of the format, and `parse_for` agrees with `parse`.
pub fn token(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    check_token(&text);
    if let Some(fixed) = with_checksum(&text) {
        check_token(&fixed);
        // The same token under the default prefixes, which committed seeds must not spell out
        // (secret scanners match them).
        if let Some(body) = fixed.strip_prefix("kw_fuzz_") {
            for prefix in ["kw_live_", "kw_test_"] {
                if let Some(t) = with_checksum(&format!("{prefix}{body}")) {
                    check_token(&t);
                }
            }
        }
    }
}

/// `s` with its last six bytes replaced by the checksum of the rest.
fn with_checksum(s: &str) -> Option<String> {
    let signed = s.get(..s.len().checked_sub(CHECKSUM_LEN)?)?;
    Some(format!("{signed}{}", checksum(signed.as_bytes())))
}

/// The format, written again from its description: `<prefix>_<32 + 6 base62>`, the prefix
/// 1..=24 lowercase letters or digits in one or two `_`-separated parts.
fn model_shape_ok(s: &str) -> bool {
    let body = 1 + RANDOM_LEN + CHECKSUM_LEN;
    let b = s.as_bytes();
    if !s.is_ascii() || b.len() <= body || b.len() - body > MAX_PREFIX_LEN {
        return false;
    }
    let (prefix, rest) = b.split_at(b.len() - body);
    let parts: Vec<&[u8]> = prefix.split(|c| *c == b'_').collect();
    let prefix_ok = parts.len() <= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        });
    prefix_ok && rest[0] == b'_' && rest[1..].iter().all(|c| BASE62.contains(c))
}

fn check_token(s: &str) {
    let parsed = Token::parse(s);
    let expected = if !model_shape_ok(s) {
        Err(TokenError::BadShape)
    } else if checksum(&s.as_bytes()[..s.len() - CHECKSUM_LEN]) == s[s.len() - CHECKSUM_LEN..] {
        Ok(())
    } else {
        Err(TokenError::BadChecksum)
    };
    assert_eq!(
        parsed.as_ref().map(|_| ()).map_err(Clone::clone),
        expected,
        "Token::parse disagrees with the format on {s:?}"
    );
    if let Ok(t) = &parsed {
        assert_eq!(t.expose(), s, "a parsed token re-serialises to its input");
        let prefix = t.prefix();
        assert!(
            Prefix::parse(prefix).is_ok(),
            "its prefix is a valid prefix"
        );
        assert_eq!(s.as_bytes().get(prefix.len()), Some(&b'_'));
        assert_eq!(
            Token::parse(t.expose()).as_ref(),
            Ok(t),
            "parsing is stable"
        );
        let (start, last4) = (t.start(), t.last4());
        assert!(s.starts_with(&start) && start.len() == prefix.len() + 5);
        assert!(s.ends_with(&last4) && last4.len() == 4);
        let shown = format!("{t:?}");
        assert!(
            !shown.contains(&s[prefix.len() + 1..]),
            "Debug must not show the secret: {shown}"
        );
    }
    let own = parsed
        .as_ref()
        .ok()
        .and_then(|t| Prefix::parse(t.prefix()).ok());
    for prefix in [Some(Prefix::live()), Some(Prefix::test()), own]
        .into_iter()
        .flatten()
    {
        match (&parsed, Token::parse_for(s, &prefix)) {
            (Ok(t), Ok(u)) => assert!(t == &u && u.prefix() == prefix.as_str()),
            (Ok(t), Err(TokenError::WrongPrefix)) => assert_ne!(t.prefix(), prefix.as_str()),
            (Err(e), Err(f)) => assert_eq!(e, &f, "parse_for fails as parse does"),
            (p, f) => panic!("parse {p:?} and parse_for({prefix}) {f:?} disagree on {s:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// authorizer_event
// ---------------------------------------------------------------------------------------------

/// `AuthorizerEvent::from_slice` on arbitrary bytes. Its reader is keyward's own (for speed),
/// so it is held to serde_json: what it accepts, serde_json reads as a `Value` (but for a
/// number too large for an `f64`, which the reader skips unread), and on any JSON without a
/// repeated key, raw or as serde_json writes it again, it gives what the plain model over the
/// `Value` (`AuthorizerEvent::parse`) gives, the same event or the same kind of error. An event
/// it accepts never holds more text than it was given, presents a trimmed key whose source
/// matches the event kind, and yields a request the route policy can answer.
pub fn authorizer_event(data: &[u8]) {
    let read = AuthorizerEvent::from_slice(data);
    if let Ok(event) = &read {
        check_event(event, data.len());
    }
    // serde_json reads an object whose key is one of its private tokens
    // (`$serde_json::private::RawValue`, ...) as something else than JSON says: no reference.
    if data.windows(22).any(|w| w == b"$serde_json::private::") {
        return;
    }
    let value = serde_json::from_slice::<Value>(data);
    if let (Ok(_), Err(e)) = (&read, &value) {
        assert!(
            e.to_string().starts_with("number out of range"),
            "from_slice accepted what serde_json refuses: {e}"
        );
    }
    let Ok(value) = value else {
        return;
    };
    let model = AuthorizerEvent::parse(&value);
    let same = |read: &Result<AuthorizerEvent<'_>, EventError>, what: &str| match (read, &model) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "from_slice ({what}) and parse disagree"),
        (Err(a), Err(b)) => assert_eq!(
            std::mem::discriminant(a),
            std::mem::discriminant(b),
            "from_slice ({what}) refuses with {a:?}, parse with {b:?}"
        ),
        (a, b) => panic!("from_slice ({what}) {a:?} and parse {b:?} disagree"),
    };
    // The raw input, as sent (escapes, whitespace and all), unless it repeats a key: the reader
    // keeps or refuses a repeated one, a `Value` keeps the last.
    if !repeats_a_key(data) {
        same(&read, "the input");
    }
    let bytes = serde_json::to_vec(&value).unwrap();
    same(&AuthorizerEvent::from_slice(&bytes), "serde_json's rewrite");
}

/// Whether JSON text gives a key twice within one object.
fn repeats_a_key(data: &[u8]) -> bool {
    struct Unique;
    impl<'de> serde::Deserialize<'de> for Unique {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(Unique)
        }
    }
    impl<'de> serde::de::Visitor<'de> for Unique {
        type Value = Unique;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("any JSON")
        }
        fn visit_bool<E>(self, _: bool) -> Result<Unique, E> {
            Ok(Unique)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Unique, E> {
            Ok(Unique)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Unique, E> {
            Ok(Unique)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Unique, E> {
            Ok(Unique)
        }
        fn visit_str<E>(self, _: &str) -> Result<Unique, E> {
            Ok(Unique)
        }
        fn visit_unit<E>(self) -> Result<Unique, E> {
            Ok(Unique)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Unique, A::Error> {
            while seq.next_element::<Unique>()?.is_some() {}
            Ok(Unique)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Unique, A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                if !seen.insert(key) {
                    return Err(serde::de::Error::custom("a repeated key"));
                }
                map.next_value::<Unique>()?;
            }
            Ok(Unique)
        }
    }
    serde_json::from_slice::<Unique>(data).is_err()
}

fn check_event(event: &AuthorizerEvent<'_>, len: usize) {
    let Presented {
        token,
        source,
        source_ip,
        target,
    } = &event.presented;
    let Target::Route {
        method,
        path,
        headers,
        query,
    } = target
    else {
        panic!("an authorizer event is a request to a route: {event:?}");
    };
    let texts = [
        token.as_deref(),
        Some(&*event.arn),
        Some(method),
        Some(path),
    ];
    let pairs = headers.iter().chain(query).flat_map(|(k, v)| [k, v]);
    for t in texts.into_iter().flatten().chain(pairs.map(|c| &**c)) {
        assert!(t.len() <= len, "{} bytes of text from {len}", t.len());
    }
    if let Some(t) = token {
        assert_eq!(t.trim(), t, "a presented key is trimmed");
        let _ = Token::parse(t);
    }
    match event.kind {
        EventKind::Token => {
            assert_eq!(*source, KeySource::AuthorizationToken);
            assert!(token.as_deref() != Some(""), "an empty token is no token");
            assert!(headers.is_empty() && query.is_empty() && source_ip.is_none());
            let from_arn = path.is_empty() || path.starts_with('/');
            assert!(
                from_arn,
                "a path from the ARN is absolute (or none): {path}"
            );
        }
        EventKind::Request | EventKind::HttpApiV1 | EventKind::HttpApi => match source {
            KeySource::ApiKeyHeader | KeySource::BearerHeader => {
                let t = token.as_deref().unwrap();
                assert!(
                    headers.iter().any(|(_, v)| v.contains(t)),
                    "key from a header"
                );
            }
            KeySource::Nowhere => assert!(token.is_none()),
            KeySource::Repeated => {
                assert!(token.is_none(), "a key header given twice gives no key");
                let named = |n: &str| {
                    headers
                        .iter()
                        .filter(|(k, _)| k.eq_ignore_ascii_case(n))
                        .count()
                };
                assert!(named("x-api-key") > 1 || named("authorization") > 1);
            }
            other => panic!("a {:?} event's key from {other:?}", event.kind),
        },
    }
    // What the authorizer does next: the route policy reads the request.
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (&**k, &**v)).collect();
    let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (&**k, &**v)).collect();
    let request = RouteRequest {
        method,
        path,
        headers: &headers,
        query: &query,
        source_ip: *source_ip,
    };
    if let Ok((access, _)) = sample_policy().access(&request) {
        check_access(&access, &request);
    }
}

/// A policy with every kind of segment and workspace source.
fn sample_policy() -> &'static RoutePolicy {
    static POLICY: std::sync::OnceLock<RoutePolicy> = std::sync::OnceLock::new();
    POLICY.get_or_init(|| {
        let spec: RoutePolicySpec = serde_json::from_value(serde_json::json!({"routes": [
            {"method": "GET", "path": "/agents/{id}", "action": "read", "resource": "agents/{id}"},
            {"method": "POST", "path": "/workspaces/{ws}/runs", "action": "execute",
             "resource": "workspaces/{ws}/runs", "workspace": {"path": "ws"}},
            {"method": "*", "path": "/files/{key+}", "action": "read", "resource": "files/{key}",
             "workspace": {"header": "X-Workspace"}},
            {"method": "ANY", "path": "/q/{x}", "action": "write", "resource": "q/{x}",
             "workspace": {"query": "ws"}},
            {"method": "GET", "path": "/", "action": "discover"},
        ]}))
        .unwrap();
        RoutePolicy::compile(&spec).unwrap()
    })
}

/// What an allowed route request needs is a resource a scope can name, and a workspace that
/// is a name.
fn check_access(access: &AccessRequest, request: &RouteRequest<'_>) {
    assert_eq!(access.source_ip, request.source_ip);
    let Needs::Permission(_, resource) = &access.needs else {
        panic!("a matched route needs a permission: {access:?}");
    };
    assert!(
        resource.is_empty() || resource.split('/').all(is_name),
        "a resource of names: {resource:?}"
    );
    if let Ok(pattern) = ResourcePattern::parse(resource) {
        assert!(
            pattern.matches(resource),
            "{resource:?} is covered by itself"
        );
    }
    if let Some(w) = &access.workspace {
        assert!(is_name(w), "a workspace is a name: {w:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// route_policy
// ---------------------------------------------------------------------------------------------

/// A route policy spec as JSON, compiled, then asked about requests. The input is the JSON
/// document, optionally followed by a request in the shape of HTTP/1.1's first lines:
///
/// ```text
/// {"routes": [...]}
/// GET /agents/ag_1?ws=ws_1
/// x-workspace: ws_1
/// ```
///
/// Every route answers a request made from its own template; no request panics; what is
/// allowed is a resource a scope can name.
pub fn route_policy(data: &[u8]) {
    let mut stream = serde_json::Deserializer::from_slice(data).into_iter::<RoutePolicySpec>();
    let Some(Ok(spec)) = stream.next() else {
        return;
    };
    let rest = &data[stream.byte_offset()..];
    let policy = match RoutePolicy::compile(&spec) {
        Ok(policy) => policy,
        Err(e) => {
            assert!(!e.0.is_empty(), "a refused policy says why");
            for f in &e.0 {
                assert!(f.field.starts_with("routes"), "errors name a place: {f:?}");
            }
            return;
        }
    };
    assert_eq!(RoutePolicy::compile(&spec).as_ref(), Ok(&policy));
    let (headers, query) = workspace_inputs(&spec.routes);
    let headers: Vec<(&str, &str)> = headers.iter().map(|n| (n.as_str(), "ws_1")).collect();
    let query: Vec<(&str, &str)> = query.iter().map(|n| (n.as_str(), "ws_1")).collect();
    for (i, route) in spec.routes.iter().enumerate() {
        let (method, path) = instantiate(route);
        let request = RouteRequest {
            method: &method,
            path: &path,
            headers: &headers,
            query: &query,
            source_ip: None,
        };
        match policy.access(&request) {
            Ok((access, template)) => {
                check_access(&access, &request);
                assert!(
                    spec.routes[..=i].iter().any(|r| template_of(r) == template),
                    "{method} {path} is decided by route {i} or one before it, not {template}"
                );
            }
            // A workspace taken from a `{param+}` is one segment only when the rest is.
            Err(RouteDenied::NoWorkspace(t))
                if spec.routes[..=i]
                    .iter()
                    .any(|r| template_of(r) == t && rest_workspace(r)) => {}
            Err(e) => panic!("{method} {path}, made from route {i}, is refused: {e}"),
        }
    }
    let text = String::from_utf8_lossy(rest);
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    if let Some(first) = lines.next() {
        let (method, target) = first.trim().split_once(' ').unwrap_or((first, "/"));
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let query: Vec<(&str, &str)> = query
            .split('&')
            .map(|p| p.split_once('=').unwrap_or((p, "")))
            .collect();
        let headers: Vec<(&str, &str)> = lines
            .map(|l| l.split_once(':').unwrap_or((l, "")))
            .map(|(k, v)| (k.trim(), v.trim()))
            .collect();
        let request = RouteRequest {
            method,
            path,
            headers: &headers,
            query: &query,
            source_ip: None,
        };
        if let Ok((access, _)) = policy.access(&request) {
            check_access(&access, &request);
        }
    }
}

/// The `METHOD path` a compiled route names itself by.
fn template_of(r: &RouteSpec) -> String {
    format!("{} {}", r.method.to_ascii_uppercase(), r.path)
}

/// Whether the route takes its workspace from a `{param+}`, which spans segments.
fn rest_workspace(r: &RouteSpec) -> bool {
    matches!(&r.workspace, Some(WorkspaceSource::Path(p)) if r.path.contains(&format!("{{{p}+}}")))
}

/// Every header and query parameter any route takes its workspace from.
fn workspace_inputs(routes: &[RouteSpec]) -> (Vec<String>, Vec<String>) {
    let (mut headers, mut query) = (Vec::new(), Vec::new());
    for r in routes {
        match &r.workspace {
            Some(WorkspaceSource::Header(h)) => headers.push(h.clone()),
            Some(WorkspaceSource::Query(q)) => query.push(q.clone()),
            _ => {}
        }
    }
    (headers, query)
}

/// A request the route's own template matches: `{param}`s become `v1`, a `{param+}` `a/b`.
fn instantiate(route: &RouteSpec) -> (String, String) {
    let method = match route.method.as_str() {
        "*" | "ANY" | "any" => "GET".to_owned(),
        m => m.to_owned(),
    };
    let segs: Vec<&str> = route
        .path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(
            |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(p) if p.ends_with('+') => "a/b",
                Some(_) => "v1",
                None => s,
            },
        )
        .collect();
    (method, format!("/{}", segs.join("/")))
}

// ---------------------------------------------------------------------------------------------
// request_json
// ---------------------------------------------------------------------------------------------

/// The input as the body of each management request that a rule of the core validates:
/// `parse_json` answers a problem document or the same value serde_json reads; what parses
/// goes through its validation (create, edit, verify), whose answers keep every rule.
pub fn request_json(data: &[u8]) {
    if let Some(req) = parsed::<CreateKeyRequest>(data) {
        check_create(req);
    }
    if let Some(req) = parsed::<UpdateKeyRequest>(data) {
        check_update(req);
    }
    if let Some(req) = parsed::<VerifyRequest>(data) {
        check_verify(req);
    }
}

/// `parse_json::<T>`, checked against serde_json itself.
fn parsed<T: DeserializeOwned + PartialEq + std::fmt::Debug>(data: &[u8]) -> Option<T> {
    match parse_json::<T>(data) {
        Ok(v) => {
            let first = data.iter().find(|b| !b.is_ascii_whitespace());
            assert_eq!(first, Some(&b'{'), "a body is a JSON object");
            let plain = serde_json::from_slice::<T>(data);
            assert_eq!(
                plain.as_ref().ok(),
                Some(&v),
                "parse_json reads what serde reads"
            );
            Some(v)
        }
        Err(problem) => {
            check_problem(&problem, 400);
            assert_eq!(problem.kind, "urn:keyward:problem:invalid-request");
            assert_eq!(problem.errors.len(), 1, "one error: where parsing stopped");
            None
        }
    }
}

/// A problem document is complete and serialisable.
fn check_problem(p: &Problem, status: u16) {
    assert_eq!(p.status, status, "{p:?}");
    assert!(p.kind.starts_with("urn:keyward:problem:"));
    assert!(!p.title.is_empty() && !p.detail.is_empty());
    assert!(!p.errors.is_empty(), "a 400 names its fields: {p:?}");
    for e in &p.errors {
        assert!(!e.message.is_empty(), "{e:?}");
        // Only an unknown query parameter may name an empty field: `?=x` sends one named "".
        assert!(
            !e.field.is_empty() || e.message.starts_with("unknown query parameter"),
            "{e:?}"
        );
    }
    let json = serde_json::to_vec(p).unwrap();
    assert_eq!(&serde_json::from_slice::<Problem>(&json).unwrap(), p);
}

fn invalid(errors: Vec<FieldError>) {
    check_problem(&Problem::invalid(errors), 400);
}

fn check_create(req: CreateKeyRequest) {
    let rules = KeyRules::default();
    match KeyDraft::from_request(req, &rules, &Presets::builtin(), now()) {
        Ok((draft, _warnings)) => {
            let name = &draft.name;
            assert!(!name.is_empty() && name.trim() == name);
            assert!(name.chars().count() <= MAX_NAME_LEN && !name.chars().any(char::is_control));
            assert!(draft.description.chars().count() <= MAX_DESCRIPTION_LEN);
            assert!((1..=MAX_SCOPES).contains(&draft.scopes.len()));
            assert!(all_distinct(draft.scopes.iter().map(|s| &s.scope)));
            assert!(draft.workspaces.len() <= MAX_WORKSPACES && draft.groups.len() <= MAX_GROUPS);
            for ids in [&draft.workspaces, &draft.groups] {
                assert!(ids.iter().all(|id| is_id(id)) && all_distinct(ids.iter()));
            }
            assert!(all_distinct(draft.allowed_cidrs.ranges().iter()));
            let rate = draft.rate_limit_per_minute;
            assert!((rules.rate_limit_min..=rules.rate_limit_max).contains(&rate));
            assert!(draft.expires_at.is_none_or(|e| e > now()));
            assert!(serde_json::to_vec(&draft.metadata).unwrap().len() <= MAX_METADATA_BYTES);
            let key = ApiKey {
                name: draft.name,
                description: draft.description,
                scopes: draft.scopes,
                workspaces: draft.workspaces,
                groups: draft.groups,
                allowed_cidrs: draft.allowed_cidrs,
                rate_limit_per_minute: draft.rate_limit_per_minute,
                expires_at: draft.expires_at,
                metadata: draft.metadata,
                ..sample_key().clone()
            };
            round_trips(&key);
        }
        Err(e) => invalid(e.0),
    }
}

fn check_update(req: UpdateKeyRequest) {
    let key = sample_key();
    let rules = KeyRules::default();
    let active = req.active;
    match req.apply(key, &rules, now()) {
        Ok(edited) => {
            let next = &edited.key;
            assert_eq!(
                (&next.id, &next.account, next.version, next.created_at),
                (&key.id, &key.account, key.version, key.created_at),
                "an edit keeps the key's identity and leaves the version to the store"
            );
            assert_eq!(
                edited.changed.is_empty(),
                next == key,
                "changed names every change"
            );
            for field in ["scopes", "allowed_cidrs"] {
                if edited.changed.contains(&field) {
                    assert!(edited.warnings.iter().any(|w| w.field == field));
                }
            }
            let rate = next.rate_limit_per_minute;
            assert!((rules.rate_limit_min..=rules.rate_limit_max).contains(&rate));
            match active {
                Some(true) => assert_eq!(next.status, KeyStatus::Active),
                Some(false) => assert_eq!(next.status, KeyStatus::Inactive),
                None => assert_eq!(next.status, key.status),
            }
            round_trips(next);
        }
        Err(e) => invalid(e.0),
    }
}

fn check_verify(req: VerifyRequest) {
    match presented(req.clone()) {
        Ok(p) => {
            assert_eq!(p.token.as_deref(), req.key.as_deref());
            assert_eq!(p.source, KeySource::Body);
            assert_eq!(
                p.source_ip,
                req.source_ip.as_deref().map(|s| s.parse().unwrap())
            );
            let Target::Stated { needs, workspace } = p.target else {
                panic!("a verify body states what it needs");
            };
            assert_eq!(workspace, req.workspace);
            assert!(workspace.as_deref().is_none_or(is_id));
            match (needs, req.action) {
                (Needs::KeyOnly, None) => assert!(req.resource.is_none()),
                (Needs::Permission(a, resource), Some(action)) => {
                    assert_eq!(a.as_str(), action);
                    assert_eq!(resource, req.resource.unwrap_or_default());
                    let pattern = ResourcePattern::parse(&resource).unwrap();
                    assert!(pattern.matches(&resource), "{resource:?} covers itself");
                }
                (needs, action) => panic!("{action:?} became {needs:?}"),
            }
        }
        Err(e) => {
            for f in &e.0 {
                let known = ["action", "resource", "workspace", "source_ip"];
                assert!(known.contains(&f.field.as_str()), "{f:?}");
            }
            invalid(e.0);
        }
    }
}

/// The key every edit is applied to: active, one scope, no expiry.
fn sample_key() -> &'static ApiKey {
    static KEY: std::sync::OnceLock<ApiKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| ApiKey {
        id: "key_fuzz".into(),
        account: "default".into(),
        name: "fuzz".into(),
        description: String::new(),
        start: "kw_fuzz_abcd".into(),
        last4: "wxyz".into(),
        status: KeyStatus::Active,
        scopes: vec![Scope::parse(&ScopeInput::from("agent:editor")).unwrap()],
        workspaces: vec!["ws_1".into()],
        allowed_cidrs: CidrList::default(),
        rate_limit_per_minute: 60,
        expires_at: None,
        groups: Vec::new(),
        metadata: serde_json::Map::new(),
        created_at: now(),
        created_by: "key_root".into(),
        updated_at: now(),
        last_used_at: None,
        last_used_ip: None,
        request_count: 0,
        version: 3,
        previous_secret: None,
        expiry_warned_for: None,
        secrets_manager_secret_id: None,
        managed_by: None,
        generation: 1,
        applied_version: None,
    })
}

/// A stored record reads back as it was written (both stores keep it as JSON or JSON-like).
fn round_trips<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: &T) {
    let json = serde_json::to_vec(value).unwrap();
    let back: T = serde_json::from_slice(&json).unwrap();
    assert_eq!(
        &back,
        value,
        "JSON round trip of {}",
        String::from_utf8_lossy(&json)
    );
}

fn all_distinct<T: PartialEq>(items: impl Iterator<Item = T>) -> bool {
    let items: Vec<T> = items.collect();
    items
        .iter()
        .enumerate()
        .all(|(i, a)| items[i + 1..].iter().all(|b| a != b))
}

// ---------------------------------------------------------------------------------------------
// request_parts
// ---------------------------------------------------------------------------------------------

/// The extractors that read a request's head, on a request built from the input: the first
/// line is the query string, the second the `If-Match` value. The query goes through what the
/// listing and usage handlers take from it (ids, `limit`, `status`, `from`/`to`); every refusal
/// is a 400 problem naming its fields.
pub fn request_parts(data: &[u8]) {
    let (query, if_match) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let mut uri = b"/v1/keys?".to_vec();
    uri.extend_from_slice(query);
    let mut builder = Request::builder().uri(Uri::try_from(uri).unwrap_or_default());
    let header = if_match.and_then(|v| HeaderValue::from_bytes(v).ok());
    if let Some(v) = &header {
        builder = builder.header(header::IF_MATCH, v);
    }
    let (mut parts, ()) = builder.body(()).unwrap().into_parts();

    match ready(IfMatch::from_request_parts(&mut parts, &())) {
        Ok(IfMatch(None)) => {
            let text = header
                .as_ref()
                .map(|v| v.to_str().unwrap_or_default().trim());
            assert!(text.is_none_or(|t| t == "*"), "no version from {text:?}");
        }
        Ok(IfMatch(Some(v))) => {
            let text = header.as_ref().unwrap().to_str().unwrap().trim();
            assert!(text.ends_with('"'), "a version from {text:?}");
            // The ETag this API writes for that version reads back as it.
            let key = ApiKey {
                version: v,
                ..sample_key().clone()
            };
            let request = Request::builder()
                .header(header::IF_MATCH, etag(&key))
                .body(());
            let (mut etag_parts, ()) = request.unwrap().into_parts();
            let again = ready(IfMatch::from_request_parts(&mut etag_parts, &()));
            assert!(matches!(again, Ok(IfMatch(Some(w))) if w == v));
        }
        Err(e) => {
            let p = e.problem();
            check_problem(&p, 400);
            assert_eq!(p.errors[0].field, "If-Match");
        }
    }

    let map = match ready(QueryMap::from_request_parts(&mut parts, &())) {
        Ok(map) => map,
        Err(e) => return check_problem(&e.problem(), 400),
    };
    // `GET /v1/keys`.
    let mut q = QueryMap(map.0.clone());
    let mut errors = Vec::new();
    let status = q.take("status");
    if let Some(s) = status.as_deref().filter(|s| *s != "all")
        && KeyStatus::parse(s).is_none()
    {
        errors.push(FieldError::new("status", "one of ..."));
    }
    for name in ["workspace", "group"] {
        if let Some(id) = q.take_id(name, &mut errors) {
            assert!(is_id(&id) && map.0.get(name) == Some(&id));
        }
    }
    let _ = (q.take("q"), q.take("cursor"));
    let limit = q.limit(&mut errors);
    assert!((1..=keyward_store::port::MAX_PAGE_SIZE).contains(&limit));
    finish(q, errors, "status, workspace, group, q, cursor, limit");
    // `GET /v1/usage` and `GET /v1/keys/{id}/usage`.
    let mut q = QueryMap(map.0);
    let (from, to) = (q.take("from"), q.take("to"));
    match DayRange::parse(from.as_deref(), to.as_deref(), today()) {
        Ok(range) => {
            assert!(range.from <= range.to && (range.to - range.from).num_days() < MAX_USAGE_DAYS);
            finish(q, Vec::new(), "from, to");
        }
        Err(e) => finish(q, e.0, "from, to"),
    }
}

/// `QueryMap::finish`, checked: it refuses exactly when something is wrong.
fn finish(q: QueryMap, errors: Vec<FieldError>, known: &str) {
    let clean = errors.is_empty() && q.0.is_empty();
    match q.finish(errors, known) {
        Ok(()) => assert!(clean),
        Err(e) => {
            assert!(!clean);
            let p = e.problem();
            check_problem(&p, 400);
            assert!(p.errors.iter().all(|e| e.field.chars().count() <= 64));
            assert!(p.errors.windows(2).all(|w| w[0].field <= w[1].field));
        }
    }
}

/// Polls a future that cannot wait (these extractors read only the request head) to its end.
fn ready<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("an extractor of the request head waited"),
    }
}
