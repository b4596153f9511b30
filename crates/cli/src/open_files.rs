//! The open-file budget of `keyward serve`: every connection is a file descriptor, and a cap
//! the process cannot reach is no cap. Past the limit, accepting fails (`EMFILE`) before the
//! cap is full, so the cap never makes room for a newcomer and clients wait in the backlog.
//!
//! So the soft limit is raised to the hard one (as Go's runtime does: the soft limit is often
//! 1,024, below one listener at its default cap), and a cap that still does not fit is lowered
//! to what does, with a warning that says how to keep it.

use keyward_http::serve::{Limits, MAKING_ROOM_AT_ONCE, REFUSING_AT_ONCE};
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Open files the process keeps besides its connections: the store, the log, the runtime, the
/// listeners, the standard streams.
const RESERVED: u64 = 64;

/// Which listeners run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listeners {
    Api,
    /// The management API and the local gateway, each with the cap; a gateway connection holds
    /// its upstream connection too.
    ApiAndGateway,
}

impl Listeners {
    /// Descriptors per unit of the cap, and listeners.
    fn shape(self) -> (u64, u64) {
        match self {
            Listeners::Api => (1, 1),
            Listeners::ApiAndGateway => (3, 2),
        }
    }
}

/// Descriptors `listeners` need with `cap`: the connections, the refusals and the newcomers
/// waiting for room on each listener, and the reserve.
fn needed(cap: u64, listeners: Listeners) -> u64 {
    let (per_cap, count) = listeners.shape();
    let transient = u64::try_from(REFUSING_AT_ONCE + MAKING_ROOM_AT_ONCE).unwrap_or(u64::MAX);
    cap.saturating_mul(per_cap)
        .saturating_add(transient.saturating_mul(count))
        .saturating_add(RESERVED)
}

/// The largest cap whose needs fit `allowed` descriptors (at least 1).
fn largest_cap(allowed: u64, listeners: Listeners) -> u64 {
    let (per_cap, _) = listeners.shape();
    let fixed = needed(0, listeners);
    (allowed.saturating_sub(fixed) / per_cap).max(1)
}

/// Raises the soft open-file limit to the hard one, and answers `limits` with the cap lowered
/// if it still does not fit.
pub fn fit(limits: Limits, listeners: Listeners) -> Limits {
    let nofile = getrlimit(Resource::Nofile);
    if let (Some(soft), Some(hard)) = (nofile.current, nofile.maximum)
        && soft < hard
    {
        let raised = Rlimit {
            current: Some(hard),
            maximum: Some(hard),
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::debug!(error = %e, soft, hard, "could not raise the open-file limit");
        }
    }
    // `None` is no limit at all.
    let Some(allowed) = getrlimit(Resource::Nofile).current else {
        return limits;
    };
    let cap = u64::try_from(limits.max_connections).unwrap_or(u64::MAX);
    if needed(cap, listeners) <= allowed {
        return limits;
    }
    let lowered = largest_cap(allowed, listeners);
    tracing::warn!(
        open_file_limit = allowed,
        needed = needed(cap, listeners),
        max_connections = cap,
        lowered_to = lowered,
        "the open-file limit (ulimit -n) is below what --max-connections needs; the cap is \
         lowered to fit. Raise the limit (e.g. LimitNOFILE= in a systemd unit, ulimit -n) to \
         keep the cap"
    );
    Limits {
        max_connections: usize::try_from(lowered).unwrap_or(1),
        ..limits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_fit_the_common_hard_limit_of_4096() {
        let cap = u64::try_from(Limits::DEFAULT.max_connections).unwrap_or(u64::MAX);
        assert!(needed(cap, Listeners::ApiAndGateway) <= 4_096);
        assert!(needed(cap, Listeners::Api) > 1_024, "but not a soft 1,024");
    }

    #[test]
    fn a_lowered_cap_fits() {
        for listeners in [Listeners::Api, Listeners::ApiAndGateway] {
            for allowed in [1_024, 4_096, 20_000] {
                let cap = largest_cap(allowed, listeners);
                assert!(needed(cap, listeners) <= allowed, "{listeners:?} {allowed}");
                assert!(
                    needed(cap + 1, listeners) > allowed,
                    "{listeners:?} {allowed}"
                );
            }
        }
        assert_eq!(largest_cap(10, Listeners::Api), 1, "never zero");
    }
}
