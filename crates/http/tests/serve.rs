//! The serving loop against raw sockets: the cap, the room it makes and its 503, the
//! header-read, idle, request and send-stall timeouts, the peer's address, and graceful
//! shutdown. Short limits keep it quick;
//! the bounds checked are loose (a busy machine is slow, never fast).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed check panics

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::{get, post};
use keyward_http::{ClientIp, Limits, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

const GET: &[u8] = b"GET / HTTP/1.1\r\nhost: t\r\n\r\n";

fn app() -> Router {
    Router::new()
        .route(
            "/",
            get(|ClientIp(ip): ClientIp| async move {
                format!("peer {}", ip.map(|ip| ip.to_string()).unwrap_or_default())
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(400)).await;
                "slow done"
            }),
        )
        .route("/big", get(|| async { vec![b'x'; 32 * 1024 * 1024] }))
        .route("/echo", post(|body: String| async move { body }))
}

/// A request whose body never comes: in flight until the request timeout.
const BUSY: &[u8] = b"POST /echo HTTP/1.1\r\nhost: t\r\ncontent-length: 10\r\n\r\n";

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("serve returns after shutdown")
            .unwrap();
    }
}

async fn start(limits: Limits) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        serve(listener, app(), limits, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    Running {
        addr,
        stop: Some(stop),
        task,
    }
}

fn limits(max_connections: usize) -> Limits {
    Limits {
        max_connections,
        header_read_timeout: Duration::from_millis(600),
        idle_timeout: Duration::from_millis(200),
        request_timeout: Duration::from_secs(5),
    }
}

/// Reads one response (head and a Content-Length body) from `s`.
async fn response(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0_u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_owned)
                })
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return text;
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
            .await
            .expect("a response within 5 s")
            .unwrap();
        assert!(
            n > 0,
            "closed before a whole response: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// How long until the server closes `s` (reads return 0 or fail), reading and dropping what
/// it sends; `None` if it is still open after `within`.
async fn closed_after(s: &mut TcpStream, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut chunk = [0_u8; 4096];
    loop {
        match tokio::time::timeout_at((start + within).into(), s.read(&mut chunk)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn handlers_learn_the_peer_address() {
    let server = start(limits(4)).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(GET).await.unwrap();
    let r = response(&mut s).await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(r.ends_with("peer 127.0.0.1"), "{r}");
    server.stop().await;
}

#[tokio::test]
async fn at_the_cap_the_longest_silent_connection_makes_room() {
    // A header timeout long enough that "served at once" cannot be mistaken for a slot freed
    // by it, even on a loaded machine.
    let server = start(Limits {
        header_read_timeout: Duration::from_secs(5),
        ..limits(2)
    })
    .await;
    let mut oldest = TcpStream::connect(server.addr).await.unwrap();
    oldest.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut newer = TcpStream::connect(server.addr).await.unwrap();
    newer.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;

    let start = Instant::now();
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(GET).await.unwrap();
    assert!(response(&mut s).await.starts_with("HTTP/1.1 200"));
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "served at once, not when the header timeout frees a slot"
    );
    assert!(
        closed_after(&mut oldest, Duration::from_millis(200))
            .await
            .is_some(),
        "the connection silent the longest gave up its slot"
    );
    assert!(
        closed_after(&mut newer, Duration::from_millis(100))
            .await
            .is_none(),
        "the newer one keeps its slot"
    );
    server.stop().await;
}

#[tokio::test]
async fn at_the_cap_with_every_connection_busy_a_connection_gets_503_and_a_freed_slot_is_reused() {
    let server = start(Limits {
        request_timeout: Duration::from_millis(1_500),
        ..limits(2)
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(BUSY).await.unwrap();
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = TcpStream::connect(server.addr).await.unwrap();
    third.write_all(GET).await.unwrap();
    let r = response(&mut third).await;
    let head = r.to_ascii_lowercase();
    assert!(r.starts_with("HTTP/1.1 503"), "{r}");
    for h in [
        "retry-after: 1",
        "connection: close",
        "content-type: application/problem+json",
    ] {
        assert!(head.contains(h), "{h} missing in {r}");
    }
    assert!(
        closed_after(&mut third, Duration::from_secs(2))
            .await
            .is_some(),
        "a refused connection is closed"
    );
    drop(held.pop());
    let mut s;
    let start = Instant::now();
    loop {
        s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(GET).await.unwrap();
        let r = response(&mut s).await;
        if r.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "the dropped connection's slot came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn a_slow_request_head_is_cut_at_the_header_timeout() {
    let server = start(limits(4)).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    let start = Instant::now();
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let after = closed_after(&mut s, Duration::from_secs(5))
        .await
        .expect("closed");
    assert!(after >= Duration::from_millis(400), "not before: {after:?}");
    let silent_after = closed_after(&mut silent, Duration::from_secs(5))
        .await
        .expect("a connection that sends nothing is closed too");
    assert!(start.elapsed() < Duration::from_secs(3), "{silent_after:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_kept_alive_connection_is_closed_when_idle() {
    let server = start(limits(4)).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(GET).await.unwrap();
    assert!(response(&mut s).await.starts_with("HTTP/1.1 200"));
    s.write_all(GET).await.unwrap();
    assert!(
        response(&mut s).await.starts_with("HTTP/1.1 200"),
        "kept alive"
    );
    let after = closed_after(&mut s, Duration::from_secs(5))
        .await
        .expect("closed");
    assert!(
        after >= Duration::from_millis(150) && after < Duration::from_millis(550),
        "at the idle timeout (200 ms), before the header timeout (600 ms): {after:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_request_past_its_timeout_gets_503_and_the_connection_closes() {
    let server = start(Limits {
        request_timeout: Duration::from_millis(100),
        ..limits(4)
    })
    .await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"GET /slow HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .unwrap();
    let r = response(&mut s).await;
    let head = r.to_ascii_lowercase();
    assert!(r.starts_with("HTTP/1.1 503"), "{r}");
    assert!(
        head.contains("retry-after: 1") && head.contains("problem:timeout"),
        "{r}"
    );
    assert!(closed_after(&mut s, Duration::from_secs(2)).await.is_some());
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_stops_reading_loses_its_slot() {
    let server = start(limits(1)).await;
    let mut stalled = TcpStream::connect(server.addr).await.unwrap();
    stalled
        .write_all(b"GET /big HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let start = Instant::now();
    loop {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(GET).await.unwrap();
        if response(&mut s).await.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(4),
            "the stalled connection still holds the only slot"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(stalled);
    server.stop().await;
}

#[tokio::test]
async fn shutdown_finishes_the_request_in_flight_and_stops_accepting() {
    let server = start(limits(4)).await;
    let addr = server.addr;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /slow HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopping = tokio::spawn(server.stop());
    let r = response(&mut s).await;
    assert!(
        r.starts_with("HTTP/1.1 200") && r.ends_with("slow done"),
        "{r}"
    );
    stopping.await.unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}
