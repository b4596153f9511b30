//! Faults logged once per interval, not once per request: while a store is down every request
//! meets the same fault, and a log line each would bury the one that matters (and cost as much
//! as the requests).

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often the same kind of fault is logged at most.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The process's fault log.
pub static FAULTS: FaultLog = FaultLog::new(LOG_INTERVAL);

/// A rate-limited warning: the first fault of an interval is logged with how many were left
/// unlogged since the last line.
#[derive(Debug)]
pub struct FaultLog {
    interval: Duration,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    last: Option<Instant>,
    suppressed: u64,
}

impl FaultLog {
    pub const fn new(interval: Duration) -> Self {
        Self {
            interval,
            state: Mutex::new(State {
                last: None,
                suppressed: 0,
            }),
        }
    }

    /// Records a fault; answers whether it was logged.
    pub fn report(&self, what: &str, error: &dyn std::fmt::Display) -> bool {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state
            .last
            .is_some_and(|last| now.duration_since(last) < self.interval)
        {
            state.suppressed += 1;
            return false;
        }
        let suppressed = std::mem::take(&mut state.suppressed);
        state.last = Some(now);
        drop(state);
        tracing::warn!(
            error = %error,
            suppressed,
            interval_s = self.interval.as_secs(),
            "{what}"
        );
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_storm_of_faults_is_one_line_per_interval() {
        let log = FaultLog::new(Duration::from_millis(200));
        let logged = (0..1000)
            .filter(|_| log.report("store unavailable", &"timeout"))
            .count();
        assert_eq!(logged, 1);
        std::thread::sleep(Duration::from_millis(250));
        assert!(log.report("store unavailable", &"timeout"));
        assert_eq!(
            log.state.lock().unwrap().suppressed,
            0,
            "the count restarts"
        );
    }
}
