//! What an engine keeps for each key it has seen, in one entry: the key's rate budgets (see
//! the `limiter` module) and its uses not yet written (see the `usage` module).
//!
//! The cache entry of each of a key's secrets holds the key's entry, so a cache hit spends its
//! budget and counts its use without another map lookup or a lock shared by every key. The
//! entry outlives cache entries (a change evicts those, not the budget leased or the uses
//! counted): [`KeyStates`] holds every entry by key id, and forgets one only when nothing else
//! holds it.

use std::sync::{Arc, Mutex};

use keyward_core::rate::Purpose;

use super::limiter::Budget;
use super::usage::Pending;
use super::{FastMap, lock};

/// One key's state in an engine.
#[derive(Debug, Default)]
pub(crate) struct KeyState {
    /// By purpose: verifications, management calls.
    budgets: [Budget; 2],
    /// The key's uses counted and not yet taken by a usage flush. `Some` exactly while the
    /// usage buffer's list of keys to flush holds this entry.
    pub(crate) usage: Mutex<Option<Pending>>,
}

impl KeyState {
    pub(crate) fn budget(&self, purpose: Purpose) -> &Budget {
        &self.budgets[match purpose {
            Purpose::Verify => 0,
            Purpose::Manage => 1,
        }]
    }
}

/// Every key's state, by key id (looked up by `&str`: no allocation once a key is known).
#[derive(Debug)]
pub(crate) struct KeyStates {
    states: Mutex<States>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct States {
    by_id: FastMap<String, Arc<KeyState>>,
    /// The size at which entries nothing else holds are forgotten: at least the capacity, and
    /// twice what the last sweep kept, so sweeps cost O(1) per key added however many are held.
    sweep_at: usize,
}

impl KeyStates {
    /// Holds about `capacity` keys' state: more only while cache entries, usage not yet
    /// written or requests under way hold them (each of which is bounded).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            states: Mutex::new(States {
                by_id: FastMap::default(),
                sweep_at: capacity,
            }),
            capacity,
        }
    }

    /// The state of key `key_id`, made on first sight.
    pub(crate) fn of(&self, key_id: &str) -> Arc<KeyState> {
        let mut states = lock(&self.states);
        if let Some(state) = states.by_id.get(key_id) {
            return Arc::clone(state);
        }
        if states.by_id.len() >= states.sweep_at {
            // Forget what only this map holds: no cache entry, no uses to write, no request
            // under way (each of those holds a clone, and a new clone is made only here, under
            // this lock). All it can hold is a lease's unspent uses, which the store counts as
            // spent: forgetting them admits nothing over the limit.
            states.by_id.retain(|_, state| Arc::strong_count(state) > 1);
            states.sweep_at = self.capacity.max(2 * states.by_id.len());
        }
        let state = Arc::new(KeyState::default());
        states.by_id.insert(key_id.to_owned(), Arc::clone(&state));
        state
    }

    /// How many keys' state is held, for tests.
    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.states).by_id.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_has_one_state_however_often_it_is_asked_for() {
        let states = KeyStates::new(4);
        assert!(Arc::ptr_eq(&states.of("key_a"), &states.of("key_a")));
        assert!(!Arc::ptr_eq(&states.of("key_a"), &states.of("key_b")));
    }

    #[test]
    fn past_the_capacity_only_state_nothing_else_holds_is_forgotten() {
        let states = KeyStates::new(2);
        let held = states.of("key_held");
        states.of("key_idle");
        assert_eq!(states.len(), 2);
        // At capacity: the idle key's state goes, the held one stays (the same entry).
        states.of("key_new");
        assert_eq!(states.len(), 2);
        assert!(Arc::ptr_eq(&held, &states.of("key_held")));
    }

    #[test]
    fn held_state_grows_the_map_and_sweeps_stay_amortised() {
        let states = KeyStates::new(2);
        let held: Vec<_> = (0..10).map(|i| states.of(&format!("key_{i}"))).collect();
        // Nothing could be forgotten: every entry is held, and none is lost.
        assert_eq!(states.len(), 10);
        for (i, state) in held.iter().enumerate() {
            assert!(Arc::ptr_eq(state, &states.of(&format!("key_{i}"))));
        }
        drop(held);
        // The next sweep (at twice what the last one kept) forgets them all.
        for i in 10..17 {
            states.of(&format!("key_{i}"));
        }
        assert!(states.len() < 10, "{}", states.len());
    }
}
