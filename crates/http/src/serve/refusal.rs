//! What a connection beyond the cap gets: `503 Service Unavailable` with `Retry-After: 1` and
//! `Connection: close`, a problem document saying why, then the close.
//!
//! Why an answer rather than a bare close: a client, a load balancer or a retry library reads a
//! 503 with `Retry-After` as "busy, come back", where a reset looks like a crash. Why it is
//! cheap: the answer is one fixed write that fits any socket buffer; the only cost is a short
//! linger (at most [`REFUSAL_LINGER`]) reading what the client sent, because closing a socket
//! with unread input sends a reset that can destroy the answer before the client reads it.
//! At most [`REFUSING_AT_ONCE`] connections linger; beyond that (a flood), a connection is
//! closed at once, so refusing never holds more than that many descriptors and never slows the
//! accept loop.

use std::sync::Arc;
use std::time::Duration;

use keyward_api::problem::{PROBLEM_JSON, Problem};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use keyward_service::fault::{LOG_INTERVAL, Throttle};

/// Refused connections answered at once, each for at most [`REFUSAL_LINGER`].
pub const REFUSING_AT_ONCE: usize = 64;
/// How long a refused connection is kept to let the client read the answer.
pub const REFUSAL_LINGER: Duration = Duration::from_secs(1);

/// Refuses connections beyond the cap of one listener.
#[derive(Debug)]
pub struct Refusal {
    answer: Arc<[u8]>,
    slots: Arc<Semaphore>,
    /// The cap, for the log.
    max_connections: usize,
    logged: Throttle,
}

/// How a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    /// Answered 503 (written in the background).
    Answered,
    /// Closed at once: too many refusals in progress.
    Closed,
}

impl Refusal {
    pub fn new(max_connections: usize) -> Self {
        let problem = Problem::new(
            503,
            "overloaded",
            "Service unavailable",
            "the server is serving as many connections as it allows; retry after the Retry-After delay",
        );
        let body = serde_json::to_string(&problem).unwrap_or_default();
        let answer = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: {PROBLEM_JSON}\r\n\
             retry-after: 1\r\nconnection: close\r\ncache-control: no-store\r\n\
             content-length: {}\r\n\r\n{body}",
            body.len()
        );
        Self {
            answer: answer.into_bytes().into(),
            slots: Arc::new(Semaphore::new(REFUSING_AT_ONCE)),
            max_connections,
            logged: Throttle::new(LOG_INTERVAL),
        }
    }

    /// Refuses `stream`, and logs the refusals once per interval.
    pub fn refuse(&self, stream: TcpStream) {
        let how = self.answer_or_close(stream);
        if let Some(count) = self.logged.tick() {
            tracing::warn!(
                count,
                max_connections = self.max_connections,
                answered = how == Refused::Answered,
                "at the connection cap and no slot could be freed (every connection busy, or \
                 newcomers arriving faster than slots free up): refusing connections (503, or \
                 closed at once while {REFUSING_AT_ONCE} refusals are in progress)"
            );
        }
    }

    fn answer_or_close(&self, mut stream: TcpStream) -> Refused {
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            return Refused::Closed;
        };
        let answer = self.answer.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let _ = tokio::time::timeout(REFUSAL_LINGER, async {
                stream.write_all(&answer).await?;
                stream.shutdown().await?;
                let mut sink = [0_u8; 1024];
                while stream.read(&mut sink).await? > 0 {}
                Ok::<_, std::io::Error>(())
            })
            .await;
        });
        Refused::Answered
    }

    /// Waits until no refusal lingers (at shutdown).
    pub async fn drained(&self) {
        let all = u32::try_from(REFUSING_AT_ONCE).unwrap_or(u32::MAX);
        let _ = self.slots.acquire_many(all).await;
    }
}
