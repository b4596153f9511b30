//! What a connection is doing, as its watchdog sees it: when it last received bytes, how many
//! requests it has in flight (until their response bodies are written), since when it has been
//! idle, and since when its writes have been blocked on a client that does not read.
//!
//! The same state tells the cap ([`Slots`](super::slots::Slots)) which connection has waited
//! longest without a request in flight, and carries its request to close.
//!
//! The socket is wrapped ([`Watched`]) and each request holds an [`InFlight`] guard inside its
//! response body, so the watchdog learns all this without hyper's help. Times are milliseconds
//! since the connection was accepted, in atomics: the IO, the service and the watchdog run in
//! the connection's one task; the cap only reads a snapshot, and the worst a stale one can do
//! is ask a connection that has just begun a request to close after it.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

use super::limits::Limits;

/// The state of one connection. `0` in a time field means "never" / "not now".
#[derive(Debug)]
pub struct Activity {
    accepted: Instant,
    /// Reads that returned bytes.
    reads: AtomicU64,
    in_flight: AtomicUsize,
    /// When the last in-flight request finished (its response fully handed to the socket).
    idle_since: AtomicU64,
    /// `reads` at that moment: any read since means the next request has begun.
    reads_at_idle: AtomicU64,
    /// Since when a write has been waiting for the client to read.
    write_blocked_since: AtomicU64,
    /// Asked to close to make room under the cap.
    evicted: AtomicBool,
    eviction: Notify,
}

/// What the watchdog should do with a connection now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Live,
    /// Kept alive, silent since its last response for the idle timeout: close it gracefully.
    Idle,
    /// A response has waited on a client that does not read for the send-stall timeout: drop it.
    Stalled,
}

impl Activity {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            accepted: Instant::now(),
            reads: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            reads_at_idle: AtomicU64::new(0),
            write_blocked_since: AtomicU64::new(0),
            evicted: AtomicBool::new(false),
            eviction: Notify::new(),
        })
    }

    /// Since when the connection has waited without a request in flight (for its first request
    /// head, or idle after a response), unless it was already asked to close.
    pub fn waiting_since(&self) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) != 0 || self.evicted.load(Ordering::Acquire) {
            return None;
        }
        Some(match self.idle_since.load(Ordering::Acquire) {
            0 => self.accepted,
            since => self.at(since),
        })
    }

    /// Whether the connection has yet to complete its first request head. hyper's graceful
    /// shutdown would wait for that request (up to the header-read timeout); such a connection
    /// owes nothing and is dropped at once instead.
    pub fn never_requested(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0 && self.idle_since.load(Ordering::Acquire) == 0
    }

    /// Asks the connection to close (after its request in flight, if one has just begun).
    pub fn evict(&self) {
        self.evicted.store(true, Ordering::Release);
        self.eviction.notify_one();
    }

    /// Resolves once [`evict`](Self::evict) was called.
    pub async fn evicted(&self) {
        self.eviction.notified().await;
    }

    /// Milliseconds since accept, plus one so that no moment reads as "never".
    fn stamp(&self) -> u64 {
        u64::try_from(self.accepted.elapsed().as_millis())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
    }

    fn at(&self, stamp: u64) -> Instant {
        self.accepted + Duration::from_millis(stamp.saturating_sub(1))
    }

    /// The idle clock's start if the connection is idle: nothing in flight, at least one
    /// response finished, and not a byte received since. (A brand-new connection is governed by
    /// hyper's header-read timeout instead.)
    fn idle_from(&self) -> Option<u64> {
        let since = self.idle_since.load(Ordering::Acquire);
        let idle = self.in_flight.load(Ordering::Acquire) == 0
            && since != 0
            && self.reads.load(Ordering::Acquire) == self.reads_at_idle.load(Ordering::Acquire);
        idle.then_some(since)
    }

    pub fn verdict(&self, limits: &Limits) -> Verdict {
        let now = self.stamp();
        let blocked = self.write_blocked_since.load(Ordering::Acquire);
        if blocked != 0 && elapsed(now, blocked) >= limits.send_stall_timeout() {
            return Verdict::Stalled;
        }
        match self.idle_from() {
            Some(since) if elapsed(now, since) >= limits.idle_timeout => Verdict::Idle,
            _ => Verdict::Live,
        }
    }

    /// When the watchdog should look again: at the next deadline it knows of (the idle one only
    /// while `idle` is watched), and at least every idle timeout, since requests start and end
    /// without waking it.
    pub fn next_check(&self, limits: &Limits, idle: bool) -> tokio::time::Instant {
        let now = self.stamp();
        let mut next = now.saturating_add(millis(limits.idle_timeout));
        if let Some(since) = self.idle_from().filter(|_| idle) {
            next = next.min(since.saturating_add(millis(limits.idle_timeout)));
        }
        let blocked = self.write_blocked_since.load(Ordering::Acquire);
        if blocked != 0 {
            next = next.min(blocked.saturating_add(millis(limits.send_stall_timeout())));
        }
        tokio::time::Instant::from_std(self.at(next.max(now)))
    }

    fn received(&self) {
        self.reads.fetch_add(1, Ordering::AcqRel);
    }

    fn wrote(&self, blocked: bool) {
        if blocked {
            let _ = self.write_blocked_since.compare_exchange(
                0,
                self.stamp(),
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        } else {
            self.write_blocked_since.store(0, Ordering::Release);
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn elapsed(now: u64, since: u64) -> Duration {
    Duration::from_millis(now.saturating_sub(since))
}

/// One request in flight, from its head until its response body is dropped (written in full, or
/// abandoned with the connection). The last one out starts the idle clock.
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl InFlight {
    pub fn begin(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        Self(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.0;
        if a.in_flight.load(Ordering::Acquire) == 1 {
            a.idle_since.store(a.stamp(), Ordering::Release);
            a.reads_at_idle
                .store(a.reads.load(Ordering::Acquire), Ordering::Release);
        }
        a.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A socket that reports to its [`Activity`] what it reads and when its writes block.
#[derive(Debug)]
pub struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Watched<S> {
    pub fn new(inner: S, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.received();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.activity.wrote(polled.is_pending());
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.activity.wrote(polled.is_pending());
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.activity.wrote(polled.is_pending());
        polled
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(idle_ms: u64) -> Limits {
        Limits {
            idle_timeout: Duration::from_millis(idle_ms),
            ..Limits::DEFAULT
        }
    }

    #[test]
    fn a_new_connection_is_left_to_the_header_clock() {
        let a = Activity::new();
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(a.verdict(&limits(10)), Verdict::Live);
    }

    #[test]
    fn idle_after_the_last_response_until_a_byte_arrives() {
        let a = Activity::new();
        let first = InFlight::begin(a.clone());
        let second = InFlight::begin(a.clone());
        drop(first);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(a.verdict(&limits(10)), Verdict::Live, "one still in flight");
        drop(second);
        assert_eq!(a.verdict(&limits(10)), Verdict::Live, "just finished");
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(a.verdict(&limits(10)), Verdict::Idle);
        a.received();
        assert_eq!(
            a.verdict(&limits(10)),
            Verdict::Live,
            "the next request has begun"
        );
    }

    #[test]
    fn the_cap_may_evict_only_a_connection_without_a_request_in_flight() {
        let a = Activity::new();
        assert_eq!(
            a.waiting_since(),
            Some(a.accepted),
            "waiting for its first head"
        );
        let request = InFlight::begin(a.clone());
        assert_eq!(a.waiting_since(), None);
        drop(request);
        assert!(a.waiting_since().is_some_and(|t| t >= a.accepted), "idle");
        a.evict();
        assert_eq!(a.waiting_since(), None, "asked once");
    }

    #[test]
    fn a_blocked_write_stalls_after_the_send_stall_timeout() {
        let a = Activity::new();
        let l = Limits {
            header_read_timeout: Duration::from_millis(20),
            idle_timeout: Duration::from_millis(20),
            ..Limits::DEFAULT
        };
        a.wrote(true);
        assert_eq!(a.verdict(&l), Verdict::Live);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(a.verdict(&l), Verdict::Stalled);
        a.wrote(false);
        assert_eq!(a.verdict(&l), Verdict::Live, "the client read again");
    }
}
