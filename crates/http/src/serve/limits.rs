//! The limits of one listener, and their rules. The figures and the reasons for the defaults are
//! written down in docs/serving.md.

use std::fmt;
use std::time::Duration;

use thiserror::Error;

/// What one listener allows a client. Check with [`Limits::check`]; [`serve`](super::serve)
/// refuses limits that fail it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once. Each holds a file descriptor (two through the gateway: its
    /// upstream's too); beyond the cap a connection is answered 503 and closed.
    pub max_connections: usize,
    /// The longest a connection may take to send a complete request head, counted from when it
    /// starts waiting for one: on accept, and again after each response (hyper's clock). This
    /// is what closes a client that sends one request line and then nothing (slowloris).
    pub header_read_timeout: Duration,
    /// How long a kept-alive connection may stay silent after a response before it is closed.
    /// Since hyper's header clock also runs while a connection waits for its next request,
    /// this can only be shorter than the header-read timeout, never longer.
    pub idle_timeout: Duration,
    /// The longest a handler may take to answer (the response head); past it the client gets
    /// 503 with `Retry-After` and the connection is closed.
    pub request_timeout: Duration,
}

impl Limits {
    /// The defaults, and why:
    /// - 1,024 connections: ten times what a busy management API or a developer's gateway
    ///   holds, and both listeners at their caps (a gateway connection needs two descriptors)
    ///   fit the hard limit of 4,096 open files common on Linux, to which `keyward serve`
    ///   raises its soft limit.
    /// - 10 s to send a request head: a client on a poor mobile link sends one in well under a
    ///   second; hyper's own default is 30 s, which lets a slow flood hold slots three times as
    ///   long.
    /// - 5 s idle keep-alive: Apache's and Node's default; a client's pool reconnects cheaply.
    /// - 30 s per request: API Gateway's integration timeout is 29 s; no keyward handler comes
    ///   near it unless the store is failing, and then a clear 503 beats a hung client.
    pub const DEFAULT: Limits = Limits {
        max_connections: 1_024,
        header_read_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(30),
    };

    /// The header-read timeout's ceiling: past 30 s, a flood of silent connections holds every
    /// slot for longer than any honest client needs (hyper's own default is this ceiling).
    pub const MAX_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
    /// The request timeout's ceiling: a management call or a gateway request that takes ten
    /// minutes is a fault, not a workload.
    pub const MAX_REQUEST_TIMEOUT: Duration = Duration::from_secs(600);
    /// The cap's ceiling: far beyond the open files one process gets on any ordinary system.
    pub const MAX_CONNECTIONS: usize = 1_000_000;

    /// Answers the limits if every rule holds, or the first limit that breaks one.
    pub fn check(self) -> Result<Self, LimitError> {
        let fail = |limit, reason: String| Err(LimitError { limit, reason });
        if !(1..=Self::MAX_CONNECTIONS).contains(&self.max_connections) {
            return fail(
                Limit::MaxConnections,
                format!(
                    "{} is not between 1 and {}",
                    self.max_connections,
                    Self::MAX_CONNECTIONS
                ),
            );
        }
        let within = |d: Duration, max: Duration| d >= Duration::from_millis(1) && d <= max;
        if !within(self.header_read_timeout, Self::MAX_HEADER_READ_TIMEOUT) {
            return fail(
                Limit::HeaderReadTimeout,
                format!(
                    "{} ms is not between 1 and {} ms",
                    self.header_read_timeout.as_millis(),
                    Self::MAX_HEADER_READ_TIMEOUT.as_millis()
                ),
            );
        }
        if !within(self.idle_timeout, self.header_read_timeout) {
            return fail(
                Limit::IdleTimeout,
                format!(
                    "{} ms is not between 1 ms and the header-read timeout ({} ms): the header \
                     clock also runs while a connection waits for its next request, so a longer \
                     idle timeout would never be reached",
                    self.idle_timeout.as_millis(),
                    self.header_read_timeout.as_millis()
                ),
            );
        }
        if !within(self.request_timeout, Self::MAX_REQUEST_TIMEOUT) {
            return fail(
                Limit::RequestTimeout,
                format!(
                    "{} ms is not between 1 and {} ms",
                    self.request_timeout.as_millis(),
                    Self::MAX_REQUEST_TIMEOUT.as_millis()
                ),
            );
        }
        Ok(self)
    }

    /// How long a response may wait on a client that does not read it before the connection is
    /// dropped: the header-read timeout, the same patience in the other direction (a client
    /// that stops reading holds its slot as surely as one that stops sending).
    pub fn send_stall_timeout(&self) -> Duration {
        self.header_read_timeout
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Which limit a [`LimitError`] is about (the command names its flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    MaxConnections,
    HeaderReadTimeout,
    IdleTimeout,
    RequestTimeout,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limit::MaxConnections => "max_connections",
            Limit::HeaderReadTimeout => "header_read_timeout",
            Limit::IdleTimeout => "idle_timeout",
            Limit::RequestTimeout => "request_timeout",
        })
    }
}

/// A limit that breaks its rule.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("{limit}: {reason}")]
pub struct LimitError {
    pub limit: Limit,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(f: impl FnOnce(&mut Limits)) -> Result<Limits, LimitError> {
        let mut l = Limits::DEFAULT;
        f(&mut l);
        l.check()
    }

    #[test]
    fn the_defaults_hold() {
        assert_eq!(Limits::default().check(), Ok(Limits::DEFAULT));
    }

    #[test]
    fn each_rule_names_its_limit() {
        let limit = |r: Result<Limits, LimitError>| r.map_err(|e| e.limit);
        assert_eq!(
            limit(with(|l| l.max_connections = 0)),
            Err(Limit::MaxConnections)
        );
        assert_eq!(
            limit(with(|l| l.header_read_timeout = Duration::from_secs(31))),
            Err(Limit::HeaderReadTimeout)
        );
        assert_eq!(
            limit(with(|l| l.header_read_timeout = Duration::ZERO)),
            Err(Limit::HeaderReadTimeout)
        );
        assert_eq!(
            limit(with(|l| l.idle_timeout = Duration::from_secs(11))),
            Err(Limit::IdleTimeout)
        );
        assert_eq!(
            limit(with(|l| l.request_timeout = Duration::ZERO)),
            Err(Limit::RequestTimeout)
        );
        assert!(with(|l| l.idle_timeout = l.header_read_timeout).is_ok());
        assert!(with(|l| l.header_read_timeout = Limits::MAX_HEADER_READ_TIMEOUT).is_ok());
    }
}
