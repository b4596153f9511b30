//! Serving a Router on a TCP listener within [`Limits`]: the one serving loop of `keyward serve`,
//! for the management API and the local gateway alike.
//!
//! Why not `axum::serve`: it cannot set hyper's header-read timeout and has no connection cap,
//! so ~20,000 connections that each sent one request line held every file descriptor and no
//! client was served until they left. Here:
//!
//! - **One accept loop** takes every connection as it comes and never waits: a connection
//!   within the cap gets its own task (`connection`). At the cap (`slots`), the connection
//!   that has waited longest without a request in flight (a slowloris, an idle keep-alive) is
//!   asked to close and the newcomer takes its slot, so a flood of silent connections cannot
//!   keep out a client that sends its request; only when every connection is busy is a
//!   newcomer refused (`refusal`: 503, `Retry-After`, close), so the backlog never fills with
//!   clients that would only time out. When accepting itself fails (out of file descriptors:
//!   `EMFILE`), the loop backs off (10 ms doubling to 1 s) and logs once per interval
//!   (a `Throttle` of `keyward_service::fault`, the one home of that rule), never spins.
//! - **Each connection** runs hyper's HTTP/1 server with its header-read timeout, each request
//!   under the request timeout, and a watchdog (`activity`) for the idle keep-alive timeout
//!   and for clients that stop reading their answers.
//! - **Shutdown**: the loop stops accepting, each connection finishes its request in flight and
//!   closes, and [`serve`] returns when all are closed, or after the longest a request may take
//!   (request timeout plus header-read timeout), whichever comes first.
//!
//! Handlers read the peer's address from the `ConnectInfo<SocketAddr>` extension, as with
//! `axum::serve(.., into_make_service_with_connect_info)`.

mod activity;
mod connection;
mod limits;
mod refusal;
mod slots;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

pub use limits::{Limit, LimitError, Limits};
pub use refusal::{REFUSAL_LINGER, REFUSING_AT_ONCE};
pub use slots::ROOM_WAIT;

use activity::Activity;
use connection::{Shared, serve_connection};
use keyward_service::fault::{LOG_INTERVAL, Throttle};
use refusal::Refusal;
use slots::Slots;

/// Connections waiting at once for a slot they made room for; beyond it, a connection at a
/// full cap is refused. Each holds a descriptor for at most [`ROOM_WAIT`].
pub const MAKING_ROOM_AT_ONCE: usize = 64;
/// The first pause after a failed accept; it doubles while accepts keep failing.
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
/// The longest pause between accepts while they fail.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Serves `router` on `listener` within `limits` until `shutdown` resolves, then lets the
/// requests in flight finish (see the module's documentation). Fails only if `limits` break
/// their rules.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), LimitError> {
    let limits = limits.check()?;
    let (closing, _) = watch::channel(false);
    let accept = Accept {
        shared: Arc::new(Shared {
            router,
            limits,
            timeouts: Throttle::new(LOG_INTERVAL),
        }),
        slots: Slots::new(limits.max_connections),
        making_room: Arc::new(Semaphore::new(MAKING_ROOM_AT_ONCE)),
        refusal: Arc::new(Refusal::new(limits.max_connections)),
        closing,
    };
    let failing = Throttle::new(LOG_INTERVAL);
    let mut backoff = FIRST_BACKOFF;
    let mut shutdown = pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = FIRST_BACKOFF;
                accept.connection(stream, peer);
            }
            // The one connection failed before it was accepted; the next may be fine.
            Err(e) if is_connection_error(&e) => {}
            Err(e) => {
                if let Some(count) = failing.tick() {
                    tracing::error!(
                        error = %e,
                        count,
                        backoff_ms = backoff.as_millis(),
                        "accepting connections fails (out of file descriptors?); backing off"
                    );
                }
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    drop(listener);
    accept.drain().await;
    Ok(())
}

/// What the accept loop hands each connection.
#[derive(Debug)]
struct Accept {
    shared: Arc<Shared>,
    slots: Arc<Slots>,
    making_room: Arc<Semaphore>,
    refusal: Arc<Refusal>,
    closing: watch::Sender<bool>,
}

impl Accept {
    /// Serves a new connection in its own task, never waiting here: in a free slot; else in
    /// one made by closing a connection without a request in flight; else it is refused.
    fn connection(&self, stream: TcpStream, peer: SocketAddr) {
        let activity = Activity::new();
        let closing = self.closing.subscribe();
        if let Some(slot) = self.slots.try_take(&activity) {
            let shared = self.shared.clone();
            tokio::spawn(serve_connection(
                stream, peer, shared, closing, activity, slot,
            ));
            return;
        }
        let Ok(making_room) = self.making_room.clone().try_acquire_owned() else {
            self.refusal.refuse(stream);
            return;
        };
        let Some(room) = self.slots.make_room() else {
            self.refusal.refuse(stream);
            return;
        };
        let (shared, slots, refusal) = (
            self.shared.clone(),
            self.slots.clone(),
            self.refusal.clone(),
        );
        tokio::spawn(async move {
            let slot = slots.inherit(room, &activity).await;
            drop(making_room);
            match slot {
                Some(slot) => {
                    serve_connection(stream, peer, shared, closing, activity, slot).await;
                }
                None => refusal.refuse(stream),
            }
        });
    }

    /// At shutdown: every connection finishes its request in flight and closes; waits for
    /// them, at most as long as a request may take (request timeout plus header-read timeout).
    async fn drain(&self) {
        let _ = self.closing.send(true);
        let limits = self.shared.limits;
        let drain = limits.request_timeout + limits.header_read_timeout;
        let all = u32::try_from(MAKING_ROOM_AT_ONCE).unwrap_or(u32::MAX);
        let drained = tokio::time::timeout(drain, async {
            let _ = self.making_room.acquire_many(all).await;
            self.slots.drained().await;
            self.refusal.drained().await;
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                open = self.slots.open(),
                drain_ms = drain.as_millis(),
                "connections still open after the drain; closing them"
            );
        }
    }
}

/// Errors of one connection (reset or aborted before it was accepted), as opposed to errors of
/// the listener or the process (out of descriptors or memory).
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}
