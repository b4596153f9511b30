//! `keyward serve` under a connection flood, as the hostile tester ran it: many connections that
//! send one request line and then nothing. With a small cap and short timeouts (the defaults are
//! 1,024 connections and 10 s; docs/serving.md), it shows that
//! - a normal client is served at once while four times the cap of such connections are open:
//!   at the cap, the connection silent the longest gives up its slot;
//! - the ones left are closed at the header timeout, a kept-alive one at the idle timeout;
//! - when every connection has a request in flight, a connection beyond the cap is refused at
//!   once with 503, `Retry-After` and `Connection: close`, and served again once the requests
//!   in flight end (here at the request timeout);
//! - the local gateway has the same limits, with its own cap;
//! - SIGTERM still stops the server cleanly with connections open.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed check panics

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use keyward_e2e::Server;

const CAP: usize = 64;
const HEADER_TIMEOUT: Duration = Duration::from_millis(5_000);
/// "At once" during a flood: well before the flood's connections reach their header timeout,
/// which is when they would free their slots if the cap did not make them give way. Not a
/// latency goal (a loaded CI machine takes a second or more to open the flood and retry).
const WHILE_THE_FLOOD_IS_OPEN: Duration = Duration::from_millis(3_500);
const IDLE_TIMEOUT: Duration = Duration::from_millis(500);
const REQUEST_TIMEOUT: Duration = Duration::from_millis(3_000);
/// One request line and nothing more: what the flood sent.
const REQUEST_LINE: &[u8] = b"GET /healthz HTTP/1.1\r\n";

fn limit_flags() -> Vec<String> {
    vec![
        "--max-connections".into(),
        CAP.to_string(),
        "--header-timeout-ms".into(),
        HEADER_TIMEOUT.as_millis().to_string(),
        "--idle-timeout-ms".into(),
        IDLE_TIMEOUT.as_millis().to_string(),
        "--request-timeout-ms".into(),
        REQUEST_TIMEOUT.as_millis().to_string(),
    ]
}

fn host_port(base: &str) -> String {
    base.trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

/// A connection that sent one request line and waits.
fn slowloris(addr: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(REQUEST_LINE).unwrap();
    s
}

/// What the server did with a connection within `within`: the bytes it sent, and whether it
/// closed the connection (EOF or reset), with when.
fn outcome(s: &mut TcpStream, within: Duration) -> (String, Option<Duration>) {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut chunk = [0_u8; 4096];
    loop {
        let left = within.saturating_sub(start.elapsed());
        if left.is_zero() {
            return (String::from_utf8_lossy(&got).into_owned(), None);
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut chunk) {
            Ok(0) => {
                return (
                    String::from_utf8_lossy(&got).into_owned(),
                    Some(start.elapsed()),
                );
            }
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return (String::from_utf8_lossy(&got).into_owned(), None);
            }
            Err(_) => {
                return (
                    String::from_utf8_lossy(&got).into_owned(),
                    Some(start.elapsed()),
                );
            }
        }
    }
}

/// A normal client's request on a fresh connection (`Connection: close`): the status line.
fn request(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    // At the cap the server may answer 503 and close before the request is written (a broken
    // pipe here): what it answered, if anything, is read all the same.
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: keyward\r\nConnection: close\r\n\r\n"
    );
    let (text, _) = outcome(&mut s, Duration::from_secs(10));
    text.lines().next().unwrap_or_default().to_owned()
}

/// Retries a normal request, as a client honouring 503 would (sooner than `Retry-After: 1`, to
/// measure closely), until it is answered with `want`, failing if that takes `bound` or more.
fn served_within(addr: &str, path: &str, want: &str, bound: Duration) {
    let start = Instant::now();
    loop {
        let status = request(addr, path);
        if status.starts_with(want) {
            return;
        }
        assert!(
            status.is_empty() || status.starts_with("HTTP/1.1 503"),
            "only a 503 or a close while at the cap, not {status:?}"
        );
        assert!(
            start.elapsed() < bound,
            "a normal client was not served within {bound:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Opens `4 × CAP` flood connections and shows a normal client is served at once meanwhile;
/// answers the flood connections the server kept, and when the flood began.
fn flood_and_serve(addr: &str, path: &str, want: &str) -> (Vec<TcpStream>, Instant) {
    let began = Instant::now();
    let mut flood: Vec<TcpStream> = (0..4 * CAP).map(|_| slowloris(addr)).collect();
    // A normal client is served while the 4 × CAP silent connections are open.
    served_within(addr, path, want, WHILE_THE_FLOOD_IS_OPEN);
    // At most CAP of them are still open: the others gave up their slots at once (or, arriving
    // faster than slots could be freed, were refused with 503).
    std::thread::sleep(Duration::from_millis(200));
    let mut kept = Vec::new();
    for mut s in flood.drain(..) {
        s.set_nonblocking(true).unwrap();
        let mut got = [0_u8; 512];
        match s.read(&mut got) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                s.set_nonblocking(false).unwrap();
                kept.push(s);
            }
            Ok(n) => {
                let text = String::from_utf8_lossy(&got[..n]);
                assert!(
                    n == 0 || text.starts_with("HTTP/1.1 503"),
                    "no answer to half a request but a refusal: {text:?}"
                );
            }
            Err(_) => {}
        }
    }
    assert!(
        kept.len() <= CAP && kept.len() + 8 >= CAP,
        "about the cap's worth are kept: {}",
        kept.len()
    );
    (kept, began)
}

/// The kept flood connections are closed at the header timeout, not before.
fn cut_at_the_header_timeout(kept: &mut [TcpStream], began: Instant) {
    for s in kept.iter_mut() {
        let (_, closed) = outcome(s, HEADER_TIMEOUT + Duration::from_secs(3));
        assert!(closed.is_some(), "a slowloris connection is closed");
    }
    let cut = began.elapsed();
    assert!(
        cut >= HEADER_TIMEOUT - Duration::from_millis(500),
        "not before the header timeout: {cut:?}"
    );
}

#[test]
fn a_flood_of_idle_connections_is_capped_refused_and_timed_out() {
    let tmp = tempfile::tempdir().unwrap();
    let flags = limit_flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = Server::start(&tmp.path().join("d"), &tmp.path().join("log"), &flags);
    let addr = host_port(&server.base);

    let (mut kept, began) = flood_and_serve(&addr, "/healthz", "HTTP/1.1 200");
    cut_at_the_header_timeout(&mut kept, began);

    // A kept-alive connection is closed at the idle timeout, well before the header timeout.
    let mut alive = TcpStream::connect(&addr).unwrap();
    alive
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: keyward\r\n\r\n")
        .unwrap();
    let (text, closed) = outcome(&mut alive, HEADER_TIMEOUT + Duration::from_secs(2));
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let closed = closed.expect("an idle kept-alive connection is closed");
    assert!(
        closed >= IDLE_TIMEOUT - Duration::from_millis(200) && closed < HEADER_TIMEOUT,
        "at the idle timeout ({IDLE_TIMEOUT:?}): {closed:?}"
    );

    // Every slot busy (a request whose body never comes): refused at once, gracefully.
    let busy_began = Instant::now();
    let mut busy: Vec<TcpStream> = (0..CAP)
        .map(|_| {
            let mut s = TcpStream::connect(&addr).unwrap();
            s.write_all(
                b"POST /v1/verify HTTP/1.1\r\nHost: keyward\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
            )
            .unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut answered_503 = 0;
    let mut refused = Vec::new();
    for _ in 0..CAP / 2 {
        let mut s = slowloris(&addr);
        let (text, closed) = outcome(&mut s, Duration::from_millis(1_500));
        assert!(closed.is_some(), "refused at once, not held: {text:?}");
        if text.starts_with("HTTP/1.1 503") {
            let head = text.to_ascii_lowercase();
            for h in [
                "retry-after: 1",
                "connection: close",
                "content-type: application/problem+json",
            ] {
                assert!(head.contains(h), "{h} missing in {text}");
            }
            answered_503 += 1;
        } else {
            assert!(text.is_empty(), "a 503 or a close: {text:?}");
        }
        refused.push(s);
    }
    assert_eq!(answered_503, CAP / 2, "each refusal is answered 503");
    // Served again when the requests in flight end (at the request timeout, with 503).
    served_within(
        &addr,
        "/healthz",
        "HTTP/1.1 200",
        REQUEST_TIMEOUT + Duration::from_secs(3),
    );
    assert!(busy_began.elapsed() >= REQUEST_TIMEOUT - Duration::from_millis(500));
    let (text, _) = outcome(&mut busy[0], Duration::from_secs(2));
    assert!(
        text.starts_with("HTTP/1.1 503") && text.contains("problem:timeout"),
        "a request past its timeout is answered 503: {text}"
    );

    drop(refused);
    let stopped = server.stop();
    for line in ["at the connection cap", "requests ran out of time"] {
        let count = stopped.log.matches(line).count();
        assert!(
            (1..=2).contains(&count),
            "'{line}' is logged once per interval, not per connection: {count}"
        );
    }
}

#[test]
fn the_gateway_has_the_same_limits_with_its_own_cap() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = tmp.path().join("routes.json");
    std::fs::write(
        &policy,
        r#"{"routes": [{"method": "GET", "path": "/agents/{id}", "action": "read", "resource": "agents/{id}"}]}"#,
    )
    .unwrap();
    let mut flags = limit_flags();
    flags.extend(
        [
            "--upstream",
            "http://127.0.0.1:9",
            "--policy",
            policy.to_str().unwrap(),
            "--gateway-listen",
            "127.0.0.1:0",
        ]
        .map(str::to_owned),
    );
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = Server::start(&tmp.path().join("d"), &tmp.path().join("log"), &flags);
    let gateway = server
        .stdout
        .iter()
        .find_map(|l| l.strip_prefix("keyward: gateway listening on http://"))
        .and_then(|l| l.split(',').next())
        .expect("the gateway says where it listens")
        .to_owned();
    let api = host_port(&server.base);

    // The gateway answers a request without a key itself (401), at once during a flood.
    let (mut kept, began) = flood_and_serve(&gateway, "/agents/ag_1", "HTTP/1.1 401");
    // The management API has its own cap: served while the gateway's flood is open.
    served_within(&api, "/healthz", "HTTP/1.1 200", WHILE_THE_FLOOD_IS_OPEN);
    cut_at_the_header_timeout(&mut kept, began);
    server.stop();
}
