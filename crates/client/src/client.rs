//! The connection to one deployment, and the one place a request is sent and its answer read.

use std::fmt;
use std::time::Duration;

use keyward_api::Problem;
use keyward_api::listing::Listing;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use ureq::http::Response;

use crate::endpoint::Endpoint;
use crate::error::ClientError;

/// How long one call may take in all, from connecting to the last byte of the answer: far
/// above what the API promises (it answers 503 within 5 s when its store is down), so only a
/// hung endpoint reaches it.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long connecting (resolving included) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest answer read: a full page of 200 keys, each at its size limits, is far below.
const MAX_ANSWER_BYTES: u64 = 16 * 1024 * 1024;

/// How many times a read (`GET`) is tried in all when it meets a passing fault: a connection
/// refused or reset, or a 502, 503 or 504. Writes are tried once: a create retried blindly could
/// make two keys (retry it with an `Idempotency-Key` instead). A timeout is not retried either:
/// it has already taken its whole bound.
pub const READ_ATTEMPTS: u32 = 3;

/// The pause before the second try of a read; it doubles before each next one, and each pause
/// is drawn at random between half of it and all of it, so clients that failed together do not
/// retry together: at most 200 ms, then at most 400 ms.
pub const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// The longest `Retry-After` of a 429 the client waits out before trying again, and the most
/// it waits in all for one call. A 429 is answered before anything is done (the management
/// rate limit is checked first), so any call, a write too, is safe to send again; a large
/// apply slows to the deployment's limit instead of failing half-way.
pub const MAX_THROTTLE_WAIT: Duration = Duration::from_secs(60);
pub const MAX_THROTTLE_TOTAL: Duration = Duration::from_secs(300);

/// Sent as `User-Agent`, so a deployment's logs tell this client's calls apart.
pub const USER_AGENT: &str = concat!("keyward-client/", env!("CARGO_PKG_VERSION"));

/// A blocking client of one deployment's management API, authenticated by an admin key
/// (`admin` on `keys/**`) sent as `X-API-Key`.
///
/// Each call has a [`REQUEST_TIMEOUT`] of 30 s in all and a [`CONNECT_TIMEOUT`] of 5 s to
/// connect. Reads are tried again after a passing fault ([`READ_ATTEMPTS`], [`RETRY_PAUSE`]);
/// writes are tried once (a create that failed on the way may have happened: retry it with the
/// same `Idempotency-Key`). Redirects are not followed, so the key is only ever sent to the
/// endpoint given. Connections are kept alive between calls; clones share them.
#[derive(Clone)]
pub struct Client {
    endpoint: Endpoint,
    api_key: String,
    agent: ureq::Agent,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.endpoint.as_str())
            .field("api_key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client of the API at `endpoint` (its base URL, such as `http://127.0.0.1:8080` or an
    /// API Gateway stage URL), authenticating with `api_key`. Nothing is sent yet.
    pub fn new(endpoint: &str, api_key: String) -> Result<Self, ClientError> {
        let endpoint = Endpoint::parse(endpoint)?;
        if api_key.is_empty() {
            return Err(ClientError::InvalidApiKey("it is empty"));
        }
        if !api_key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ClientError::InvalidApiKey(
                "it holds spaces, control or non-ASCII characters; an API key is visible ASCII only",
            ));
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .user_agent(USER_AGENT)
            .build()
            .into();
        Ok(Self {
            endpoint,
            api_key,
            agent,
        })
    }

    /// The base URL calls go to.
    /// Whether `key` is the admin key this client authenticates with (its shown `start` and
    /// `last4` are this key's), so a tool can leave the key it runs with alone.
    pub fn authenticates_as(&self, key: &keyward_api::keys::ApiKey) -> bool {
        let own = &self.api_key;
        own.len() > key.start.len() + key.last4.len()
            && own.starts_with(&key.start)
            && own.ends_with(&key.last4)
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Sends `request` and reads its JSON answer.
    pub(crate) fn json<T: DeserializeOwned>(&self, request: Request) -> Result<T, ClientError> {
        let (request, text) = self.exchange(request)?;
        serde_json::from_str(&text).map_err(|e| {
            ClientError::Decode(format!(
                "{} answered {} {} with a body this client cannot read ({}); is it a keyward API of this version?",
                self.endpoint,
                request.method.as_str(),
                request.path,
                redact_quoted(&e.to_string()),
            ))
        })
    }

    /// Sends `request`, whose success answer has no body worth reading (`204`).
    pub(crate) fn empty(&self, request: Request) -> Result<(), ClientError> {
        self.exchange(request).map(|_| ())
    }

    /// Every item of a listing from the page at `first` (`None`: the first page) on, page
    /// after page until `next_cursor` is `null`. `page` fetches the page at a cursor.
    pub(crate) fn every_page<T>(
        &self,
        first: Option<String>,
        mut page: impl FnMut(Option<String>) -> Result<Listing<T>, ClientError>,
    ) -> Result<Vec<T>, ClientError> {
        let mut items = Vec::new();
        let mut cursor = first;
        loop {
            let listing = page(cursor.clone())?;
            items.extend(listing.items);
            match listing.next_cursor {
                None => return Ok(items),
                Some(next) if cursor.as_deref() == Some(next.as_str()) => {
                    return Err(ClientError::Decode(format!(
                        "{} answered the same page cursor twice; stopped to avoid listing forever",
                        self.endpoint
                    )));
                }
                Some(next) => cursor = Some(next),
            }
        }
    }

    /// Sends `request`; answers its body when the status is a success, the error otherwise.
    /// A read (`GET`) that met a passing fault is tried again, [`READ_ATTEMPTS`] times in all.
    fn exchange(&self, request: Request) -> Result<(Request, String), ClientError> {
        let mut attempt = 1;
        let mut waited = Duration::ZERO;
        loop {
            match self.attempt(&request) {
                Ok(text) => return Ok((request, text)),
                Err(Attempt::Throttled(_, wait))
                    if wait <= MAX_THROTTLE_WAIT && waited + wait <= MAX_THROTTLE_TOTAL =>
                {
                    // Up to a second more, at random, so throttled callers do not return at once.
                    let jitter =
                        Duration::from_millis(u64::from(getrandom::u32().unwrap_or(0) % 1000));
                    std::thread::sleep(wait + jitter);
                    waited += wait + jitter;
                }
                Err(Attempt::Throttled(e, _)) => return Err(*e),
                Err(Attempt::Passing(_))
                    if request.method == Method::Get && attempt < READ_ATTEMPTS =>
                {
                    std::thread::sleep(backoff(attempt));
                    attempt += 1;
                }
                Err(Attempt::Passing(e) | Attempt::Final(e)) => return Err(e),
            }
        }
    }

    /// One try of `request`.
    fn attempt(&self, request: &Request) -> Result<String, Attempt> {
        let mut response = self.send(request).map_err(|e| {
            let passing = matches!(e, ureq::Error::Io(_) | ureq::Error::ConnectionFailed);
            let error = self.transport(request, &e);
            if passing {
                Attempt::Passing(error)
            } else {
                Attempt::Final(error)
            }
        })?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header("content-type").unwrap_or_default();
        let location = header("location");
        let retry_after = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok());
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_string()
            .map_err(|e| Attempt::Final(self.transport(request, &e)))?;
        if (200..300).contains(&status) {
            return Ok(text);
        }
        let error = self.refusal(request, status, &content_type, location, &text);
        Err(match (status, retry_after) {
            (429, Some(secs)) => Attempt::Throttled(Box::new(error), Duration::from_secs(secs)),
            (502..=504, _) => Attempt::Passing(error),
            _ => Attempt::Final(error),
        })
    }

    fn send(&self, request: &Request) -> Result<Response<ureq::Body>, ureq::Error> {
        let url = self.endpoint.url(&request.path);
        match request.method {
            Method::Get => self.prepare(self.agent.get(&url), request).call(),
            Method::Delete => self.prepare(self.agent.delete(&url), request).call(),
            Method::Post | Method::Put | Method::Patch => {
                let builder = match request.method {
                    Method::Put => self.agent.put(&url),
                    Method::Patch => self.agent.patch(&url),
                    _ => self.agent.post(&url),
                };
                let builder = self.prepare(builder, request);
                match &request.body {
                    Some(body) => builder
                        .header("Content-Type", "application/json")
                        .send(body.as_slice()),
                    None => builder.send_empty(),
                }
            }
        }
    }

    /// The headers and query every request carries, and this one's own.
    fn prepare<B>(
        &self,
        mut builder: ureq::RequestBuilder<B>,
        request: &Request,
    ) -> ureq::RequestBuilder<B> {
        builder = builder
            .header("X-API-Key", self.api_key.as_str())
            .header("Accept", "application/json, application/problem+json");
        for (name, value) in &request.headers {
            builder = builder.header(*name, value.as_str());
        }
        for (name, value) in &request.query {
            builder = builder.query(*name, value.as_str());
        }
        builder
    }

    /// What went wrong on the way, naming the endpoint. ureq's errors never hold headers, so
    /// the key is not in them.
    fn transport(&self, request: &Request, error: &ureq::Error) -> ClientError {
        use ureq::Timeout;
        let endpoint = &self.endpoint;
        let call = format!("{} {}", request.method.as_str(), request.path);
        ClientError::Transport(match error {
            ureq::Error::Timeout(Timeout::Connect | Timeout::Resolve) => format!(
                "could not connect to {endpoint} within {} s",
                CONNECT_TIMEOUT.as_secs()
            ),
            ureq::Error::Timeout(_) => format!(
                "{endpoint} did not answer {call} within {} s",
                REQUEST_TIMEOUT.as_secs()
            ),
            ureq::Error::HostNotFound => {
                format!("could not reach {endpoint}: its host name does not resolve")
            }
            ureq::Error::ConnectionFailed => format!("could not connect to {endpoint}"),
            ureq::Error::Io(e) => format!("could not reach {endpoint} ({call}): {e}"),
            ureq::Error::BodyExceedsLimit(limit) => format!(
                "{endpoint} answered {call} with more than {limit} bytes; is it a keyward API?"
            ),
            ureq::Error::Tls(_) | ureq::Error::Rustls(_) => {
                format!("TLS with {endpoint} failed: {error}")
            }
            other => format!("{call} to {endpoint} failed: {other}"),
        })
    }

    /// An error status as an error: the problem document when there is one, else what
    /// answered, briefly (the answer is quoted only in part, and never with the key in it).
    fn refusal(
        &self,
        request: &Request,
        status: u16,
        content_type: &str,
        location: Option<String>,
        text: &str,
    ) -> ClientError {
        if content_type.contains("json")
            && let Ok(problem) = serde_json::from_str::<Problem>(text)
        {
            return ClientError::Problem { status, problem };
        }
        let call = format!("{} {}", request.method.as_str(), request.path);
        let what = match (status, location) {
            (300..=399, Some(location)) => format!(
                "a redirect to {location}, which is not followed (the API key goes only to the endpoint given); use the API's own URL as the endpoint"
            ),
            (300..=399, None) => "a redirect, which is not followed".to_owned(),
            _ => {
                let excerpt: String = text
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .chars()
                    .take(200)
                    .collect();
                let excerpt = excerpt.replace(self.api_key.as_str(), "<redacted>");
                if excerpt.is_empty() {
                    "no problem document; is it a keyward API?".to_owned()
                } else {
                    format!("no problem document ({excerpt}); is it a keyward API?")
                }
            }
        };
        ClientError::Status {
            status,
            message: format!("{} answered {status} to {call}: {what}", self.endpoint),
        }
    }
}

/// How one try ended, when it did not succeed.
enum Attempt {
    /// A fault that may pass: a read may be tried again.
    Passing(ClientError),
    /// 429 with `Retry-After`: nothing was done, and any call may be sent again after it.
    Throttled(Box<ClientError>, Duration),
    Final(ClientError),
}

/// The pause after try number `attempt` (1 for the first): [`RETRY_PAUSE`] doubled for each
/// try before, jittered down to half.
fn backoff(attempt: u32) -> Duration {
    use std::hash::BuildHasher;
    let full = RETRY_PAUSE.saturating_mul(1 << attempt.saturating_sub(1).min(8));
    let half = full / 2;
    // A random number from the standard library: the hasher's keys are drawn from the OS.
    let random = std::collections::hash_map::RandomState::new().hash_one(attempt);
    let millis = u64::try_from(half.as_millis()).unwrap_or(u64::MAX).max(1);
    half + Duration::from_millis(random % millis)
}

/// The HTTP methods the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    const fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }
}

/// One request before it is sent: the route, and what it carries beyond the key.
#[derive(Debug)]
pub(crate) struct Request {
    method: Method,
    /// Under the endpoint, starting with `/`, variable segments already encoded.
    path: String,
    query: Vec<(&'static str, String)>,
    headers: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
}

impl Request {
    pub(crate) fn new(method: Method, path: String) -> Self {
        Self {
            method,
            path,
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
        }
    }

    pub(crate) fn get(path: String) -> Self {
        Self::new(Method::Get, path)
    }

    pub(crate) fn query(mut self, query: Vec<(&'static str, String)>) -> Self {
        self.query.extend(query);
        self
    }

    /// `If-Match: "<version>"` when a version is given: the change happens only if the
    /// record is still at that version (412 otherwise).
    pub(crate) fn if_match(mut self, version: Option<u64>) -> Self {
        if let Some(version) = version {
            self.headers.push(("If-Match", format!("\"{version}\"")));
        }
        self
    }

    pub(crate) fn header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    /// `body` as its type serialises it. The wire types leave out what a request does not
    /// set, and write `null` only where it means "clear" (a `PATCH`'s `expires_at`); that they
    /// read back as written is tested beside them (`keyward_core::edit`).
    pub(crate) fn json<T: Serialize>(self, body: &T) -> Result<Self, ClientError> {
        Ok(self.json_value(encode(body)?))
    }

    fn json_value(mut self, body: Value) -> Self {
        self.body = Some(body.to_string().into_bytes());
        self
    }
}

fn encode(body: &impl Serialize) -> Result<Value, ClientError> {
    serde_json::to_value(body)
        .map_err(|e| ClientError::InvalidRequest(format!("could not encode the request: {e}")))
}

/// A serde error message with every quoted value replaced by `"…"`: a message about an
/// answer that held a secret must not quote it. Field names (in backticks) stay.
fn redact_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut inside = false;
    for c in message.chars() {
        if c == '"' {
            if inside {
                out.push_str("…\"");
            } else {
                out.push('"');
            }
            inside = !inside;
        } else if !inside {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed check panics

    use super::*;

    #[test]
    fn debug_never_shows_the_key() {
        let client = Client::new("http://127.0.0.1:8080", "kw_test_sEcReT".into()).unwrap();
        let debug = format!("{client:?}");
        assert!(!debug.contains("sEcReT"), "{debug}");
        assert!(debug.contains("http://127.0.0.1:8080"), "{debug}");
    }

    #[test]
    fn a_key_that_cannot_be_a_header_is_refused_without_quoting_it() {
        for key in ["", "kw_test_a b", "kw_test_\n", "kw_tést"] {
            let e = Client::new("http://127.0.0.1:8080", key.into()).unwrap_err();
            assert!(matches!(e, ClientError::InvalidApiKey(_)), "{e}");
            assert!(key.is_empty() || !e.to_string().contains(key), "{e}");
        }
    }

    #[test]
    fn quoted_values_are_redacted_from_decode_errors() {
        assert_eq!(
            redact_quoted(
                "invalid type: string \"kw_live_abc\", expected u64 at line 1 column 9 for `secret`"
            ),
            "invalid type: string \"…\", expected u64 at line 1 column 9 for `secret`"
        );
    }

    #[test]
    fn a_patch_sends_what_it_sets_and_null_only_to_clear() {
        use chrono::TimeZone;
        use keyward_api::keys::UpdateKeyRequest;
        use serde_json::json;

        assert_eq!(encode(&UpdateKeyRequest::default()).unwrap(), json!({}));
        let rename = UpdateKeyRequest {
            name: Some("ci".into()),
            active: Some(false),
            ..UpdateKeyRequest::default()
        };
        assert_eq!(
            encode(&rename).unwrap(),
            json!({"name": "ci", "active": false})
        );
        let clear = UpdateKeyRequest {
            expires_at: Some(None),
            secrets_manager_secret_id: Some(None),
            ..UpdateKeyRequest::default()
        };
        assert_eq!(
            encode(&clear).unwrap(),
            json!({"expires_at": null, "secrets_manager_secret_id": null})
        );
        let at = chrono::Utc.with_ymd_and_hms(2030, 1, 2, 3, 4, 5).unwrap();
        let mixed = UpdateKeyRequest {
            expires_at: Some(Some(at)),
            secrets_manager_secret_id: Some(None),
            ..UpdateKeyRequest::default()
        };
        assert_eq!(
            encode(&mixed).unwrap(),
            json!({"expires_at": "2030-01-02T03:04:05Z", "secrets_manager_secret_id": null})
        );
    }

    /// A server on the loopback that answers each connection with the next of `answers`
    /// (status line and body) and closes it; it counts the requests it read.
    fn scripted_server(
        answers: Vec<(&'static str, &'static str)>,
    ) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::io::{BufRead, BufReader, Write};
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let count = std::sync::Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        std::thread::spawn(move || {
            for (status, body) in answers {
                let Ok((stream, _)) = listener.accept() else {
                    return;
                };
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    line.clear();
                }
                seen.fetch_add(1, Ordering::SeqCst);
                let mut stream = reader.into_inner();
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        (base, count)
    }

    #[test]
    fn a_read_is_tried_again_after_a_passing_fault_and_a_write_is_not() {
        use std::sync::atomic::Ordering;
        let listing = r#"{"items": [], "next_cursor": null}"#;
        let (base, count) = scripted_server(vec![
            ("503 Service Unavailable", "{}"),
            ("502 Bad Gateway", "{}"),
            ("200 OK", listing),
        ]);
        let client = Client::new(&base, "kw_test_x".into()).unwrap();
        let page = client.list_keys(&crate::KeyFilter::default()).unwrap();
        assert!(page.items.is_empty());
        assert_eq!(count.load(Ordering::SeqCst), 3);

        let (base, count) = scripted_server(vec![("503 Service Unavailable", "{}"); 3]);
        let client = Client::new(&base, "kw_test_x".into()).unwrap();
        let e = client.revoke_key("key_1", None).unwrap_err();
        assert_eq!(e.status(), Some(503), "{e}");
        assert!(e.to_string().contains("is it a keyward API?"), "{e}");
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(count.load(Ordering::SeqCst), 1, "a write is tried once");
    }

    #[test]
    fn a_throttled_call_waits_out_retry_after_even_a_write() {
        use std::sync::atomic::Ordering;
        let (base, count) = scripted_server(vec![
            ("429 Too Many Requests\r\nRetry-After: 1", "{}"),
            ("200 OK", "{}"),
        ]);
        let client = Client::new(&base, "kw_test_x".into()).unwrap();
        let started = std::time::Instant::now();
        client.delete_key("key_1", Some(3)).unwrap();
        assert!(started.elapsed() >= Duration::from_secs(1));
        assert_eq!(count.load(Ordering::SeqCst), 2);

        // A wait beyond the bound is not waited out: the caller hears of it.
        let (base, count) =
            scripted_server(vec![("429 Too Many Requests\r\nRetry-After: 3600", "{}")]);
        let client = Client::new(&base, "kw_test_x".into()).unwrap();
        let e = client.delete_key("key_1", None).unwrap_err();
        assert_eq!(e.status(), Some(429));
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn retry_pauses_are_jittered_and_grow() {
        for _ in 0..50 {
            let first = backoff(1);
            assert!(
                first >= RETRY_PAUSE / 2 && first <= RETRY_PAUSE,
                "{first:?}"
            );
            let second = backoff(2);
            assert!(
                second >= RETRY_PAUSE && second <= RETRY_PAUSE * 2,
                "{second:?}"
            );
        }
    }

    #[test]
    fn if_match_is_a_quoted_version() {
        let r = Request::get("/v1/keys/k".into()).if_match(Some(7));
        assert_eq!(r.headers, vec![("If-Match", "\"7\"".to_owned())]);
        assert!(Request::get("/x".into()).if_match(None).headers.is_empty());
    }

    #[test]
    fn an_unreachable_endpoint_is_named_in_the_error() {
        // Port 1 on the loopback: nothing listens there, so the connection is refused at once.
        let client = Client::new("http://127.0.0.1:1", "kw_test_x".into()).unwrap();
        let e = client.get_key("key_1").unwrap_err();
        assert!(matches!(e, ClientError::Transport(_)), "{e:?}");
        assert!(e.to_string().contains("http://127.0.0.1:1"), "{e}");
        assert!(!e.to_string().contains("kw_test_x"), "{e}");
    }
}
