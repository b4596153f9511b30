//! Logging a recurring fault once per interval, with the count since the last line: a flood of
//! refusals or a run of failed accepts must not become a flood of log lines.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a recurring fault is logged at most.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Counts the occurrences of one fault and says when to log them.
#[derive(Debug)]
pub struct Throttle {
    interval: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    last_logged: Option<Instant>,
    unlogged: u64,
}

impl Throttle {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            state: Mutex::new(State::default()),
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
}
