//! One accepted connection: hyper's HTTP/1 server with its header-read timeout, each request
//! under the request timeout and told the peer's address, and a watchdog that closes the
//! connection when it idles or stalls, when the cap needs its slot, or when the server shuts
//! down.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, header};
use axum::response::Response;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use keyward_api::problem::Problem;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tower::ServiceExt;

use super::activity::{Activity, InFlight, Verdict, Watched};
use super::limits::Limits;
use super::slots::Slot;
use crate::problem::respond;
use keyward_service::fault::Throttle;

/// What every connection of one listener shares.
#[derive(Debug)]
pub struct Shared {
    pub router: Router,
    pub limits: Limits,
    /// Requests that ran out of time, logged once per interval.
    pub timeouts: Throttle,
}

/// Serves one connection until it ends, holding its slot of the cap (`_slot`) until then.
pub async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut closing: watch::Receiver<bool>,
    activity: Arc<Activity>,
    _slot: Slot,
) {
    // Answers are small and written whole: waiting to coalesce them only adds latency.
    let _ = stream.set_nodelay(true);
    let io = TokioIo::new(Watched::new(stream, activity.clone()));
    let service = {
        let shared = shared.clone();
        let activity = activity.clone();
        service_fn(move |request| handle(shared.clone(), activity.clone(), peer, request))
    };
    let limits = shared.limits;
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let mut conn = pin!(builder.serve_connection(io, service));
    let mut shutting_down = false;
    loop {
        // Once closing, only a stalled client is left to watch for.
        let check = activity.next_check(&limits, !shutting_down);
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    // Header timeouts, resets and malformed requests: the client's business.
                    tracing::debug!(%peer, error = %e, "connection ended");
                }
                return;
            }
            _ = closing.wait_for(|closing| *closing), if !shutting_down => {
                // Finish the request in flight, if any, then close; an idle one closes now.
                shutting_down = true;
                conn.as_mut().graceful_shutdown();
            }
            () = activity.evicted(), if !shutting_down => {
                // The cap needs this slot: it had no request in flight. One that never sent a
                // whole request head is dropped now; one that did may still be flushing its
                // last answer, so it closes once that is written.
                if activity.never_requested() {
                    tracing::debug!(%peer, "closed to make room: no request head yet");
                    return;
                }
                shutting_down = true;
                conn.as_mut().graceful_shutdown();
            }
            () = tokio::time::sleep_until(check) => match activity.verdict(&limits) {
                Verdict::Idle if !shutting_down => {
                    shutting_down = true;
                    conn.as_mut().graceful_shutdown();
                }
                Verdict::Live | Verdict::Idle => {}
                Verdict::Stalled => {
                    tracing::debug!(%peer, "the client stopped reading its response; dropping the connection");
                    return;
                }
            },
        }
    }
}

/// One request: its peer address for [`ClientIp`](crate::ClientIp), the request timeout, and
/// the in-flight guard carried by the response body until it is written.
async fn handle(
    shared: Arc<Shared>,
    activity: Arc<Activity>,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Result<Response, Infallible> {
    let in_flight = InFlight::begin(activity);
    let mut request = request.map(Body::new);
    request.extensions_mut().insert(ConnectInfo(peer));
    let limit = shared.limits.request_timeout;
    let response = match tokio::time::timeout(limit, shared.router.clone().oneshot(request)).await {
        Ok(Ok(response)) => response,
        Ok(Err(never)) => match never {},
        Err(_) => {
            if let Some(count) = shared.timeouts.tick() {
                tracing::warn!(
                    count,
                    limit_ms = limit.as_millis(),
                    "requests ran out of time and were answered 503"
                );
            }
            timed_out(limit)
        }
    };
    Ok(response.map(|body| {
        Body::new(Guarded {
            body,
            _in_flight: in_flight,
        })
    }))
}

/// A response body that holds its request's [`InFlight`] guard until hyper drops it (written
/// in full, or abandoned with the connection), and is otherwise the body itself: its size hint
/// keeps `Content-Length` answers as they were.
struct Guarded {
    body: Body,
    _in_flight: InFlight,
}

impl HttpBody for Guarded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The answer to a request that ran out of time. The connection closes after it: the request's
/// body may be half read.
fn timed_out(limit: Duration) -> Response {
    let mut response = respond(Problem::new(
        503,
        "timeout",
        "Service unavailable",
        format!(
            "the request was not answered within {} ms; retry after the Retry-After delay",
            limit.as_millis()
        ),
    ));
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
