//! Faults logged once per interval, not once per request: while a store is down every request
//! meets the same fault, and during a connection flood every connection meets the same
//! refusal; a log line each would bury the one that matters (and cost as much as the requests).
//! Every recurring fault of the process is counted by a [`Throttle`].

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a recurring fault is logged at most.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The process's log of store faults.
pub static FAULTS: FaultLog = FaultLog(Throttle::new(LOG_INTERVAL));

/// Counts the occurrences of one fault and says when to log them.
#[derive(Debug)]
pub struct Throttle {
    interval: Duration,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    last_logged: Option<Instant>,
    unlogged: u64,
}

impl Throttle {
    pub const fn new(interval: Duration) -> Self {
        Self {
            interval,
            state: Mutex::new(State {
                last_logged: None,
                unlogged: 0,
            }),
        }
    }

    /// Counts one occurrence. When a line is due (the first occurrence, then at most once per
    /// interval) answers how many occurred since the last line, this one included.
    pub fn tick(&self) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.unlogged += 1;
        let due = state
            .last_logged
            .is_none_or(|at| at.elapsed() >= self.interval);
        if due {
            state.last_logged = Some(Instant::now());
            Some(std::mem::take(&mut state.unlogged))
        } else {
            None
        }
    }
}

/// A rate-limited warning for faults of the store.
#[derive(Debug)]
pub struct FaultLog(Throttle);

impl FaultLog {
    /// Records a fault; answers whether it was logged (with the count since the last line).
    pub fn report(&self, what: &str, error: &dyn std::fmt::Display) -> bool {
        let Some(count) = self.0.tick() else {
            return false;
        };
        tracing::warn!(
            error = %error,
            count,
            interval_s = self.0.interval.as_secs(),
            "{what}"
        );
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_is_logged_then_one_line_per_interval_with_the_count() {
        let t = Throttle::new(Duration::from_millis(50));
        assert_eq!(t.tick(), Some(1));
        assert_eq!(t.tick(), None);
        assert_eq!(t.tick(), None);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(t.tick(), Some(3));
        assert_eq!(t.tick(), None);
    }

    #[test]
    fn a_storm_of_faults_is_one_line_per_interval() {
        let log = FaultLog(Throttle::new(Duration::from_millis(200)));
        let logged = (0..1000)
            .filter(|_| log.report("store unavailable", &"timeout"))
            .count();
        assert_eq!(logged, 1);
        std::thread::sleep(Duration::from_millis(250));
        assert!(log.report("store unavailable", &"timeout"));
    }
}
