//! The rate limiter: where "at most N in each UTC minute, across every engine" is enforced.
//!
//! Each budget (a key's verifications, or its management calls; kept with the key's other
//! state in the engine, see the `key_state` module) is spent from a block leased
//! from the store ([`LeaseStore::lease`](keyward_store::LeaseStore::lease)): the store never
//! grants more than the limit in a window, so however many engines share a key, no more than N
//! requests are admitted. Spending is in memory; a lease is one conditional write, taken when
//! the block runs out, sized by the core ([`keyward_core::rate::next_block`]) to what the rate
//! this engine saw (the uses asked for since the last lease, over the time since it) expects
//! in the rest of the minute, so a key used steadily costs about one lease a minute. Once the
//! store says the window is spent, the engine refuses until the next minute without asking
//! again. When the store cannot grant a lease, the request is refused
//! ([`Spend::Unavailable`]): never admitted on credit.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use chrono::{DateTime, Utc};
use keyward_core::rate::{Counter, Purpose, Window, first_block, next_block};
use keyward_store::{Store, StoreError};

use super::lock;
use crate::error::ServiceError;
use crate::fault::FAULTS;

/// The answer for one request's share of a budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spend {
    /// Admitted: one use of the budget spent.
    Granted,
    /// The window's budget is spent: refused until the next minute.
    Limited { retry_after_secs: u32 },
    /// No lease could be had (the store is unavailable): refused, never admitted on credit.
    Unavailable,
}

/// One budget's state in this engine.
#[derive(Debug, Default)]
struct State {
    /// The minute `tokens` and `spent` are of (none before the first use).
    window: Option<Window>,
    /// Uses leased and not yet spent, in `window`.
    tokens: u32,
    /// The store said `window` is spent.
    spent: bool,
    /// The uses asked for since the last lease (spent from it, or refused for the limit) and
    /// when it was taken: the rate the next lease is sized from. Kept across minutes (unlike
    /// `tokens`), so a block the minute's turn cut short counts only what was spent of it.
    uses: u32,
    leased_at: Option<Instant>,
}

/// One key's budget for one purpose.
#[derive(Debug, Default)]
pub(crate) struct Budget {
    state: Mutex<State>,
    /// Held while a lease is asked for, so concurrent requests wait for one lease, not each
    /// take their own.
    leasing: tokio::sync::Mutex<()>,
}

impl Budget {
    /// Spends a token held in memory, if the answer needs no store call.
    fn spend_local(&self, window: Window, at: DateTime<Utc>) -> Option<Spend> {
        let mut s = lock(&self.state);
        if s.window != Some(window) {
            s.window = Some(window);
            s.tokens = 0;
            s.spent = false;
        }
        if s.tokens > 0 {
            s.tokens -= 1;
            s.uses = s.uses.saturating_add(1);
            Some(Spend::Granted)
        } else if s.spent {
            s.uses = s.uses.saturating_add(1);
            Some(Spend::Limited {
                retry_after_secs: Window::retry_after_secs(at),
            })
        } else {
            None
        }
    }
}

/// Leases blocks of budgets from the store.
#[derive(Debug, Default)]
pub(crate) struct Limiter {
    /// Lease requests sent to the store, for `keyward bench` and tests.
    pub(crate) leases: AtomicU64,
}

impl Limiter {
    /// Spends one use of `budget`, the `purpose` budget of key `key_id` (limited to `limit` a
    /// minute), at `at`: from memory when a lease has tokens left, otherwise by leasing the
    /// next block (unless `store_down()`: the engine saw the store fail a moment ago, and a
    /// lease would only wait for its timeout).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn spend(
        &self,
        budget: &Budget,
        store: &dyn Store,
        account: &str,
        key_id: &str,
        purpose: Purpose,
        limit: u32,
        at: DateTime<Utc>,
        store_down: &(dyn Fn() -> bool + Sync),
    ) -> Result<Spend, ServiceError> {
        let window = Window::of(at);
        if let Some(answer) = budget.spend_local(window, at) {
            return Ok(answer);
        }
        if store_down() {
            return Ok(Spend::Unavailable);
        }
        let _leasing = budget.leasing.lock().await;
        // Another request may have leased while this one waited, the store may have failed it,
        // and the minute may have turned: this request is decided as of now.
        let at = at.max(Utc::now());
        let window = Window::of(at);
        if let Some(answer) = budget.spend_local(window, at) {
            return Ok(answer);
        }
        if store_down() {
            return Ok(Spend::Unavailable);
        }
        let want = {
            let s = lock(&budget.state);
            match s.leased_at {
                Some(then) => next_block(limit, s.uses, then.elapsed(), Window::time_left(at)),
                None => first_block(limit),
            }
        };
        let counter = Counter {
            account: account.to_owned(),
            key_id: key_id.to_owned(),
            purpose,
        };
        self.leases.fetch_add(1, Ordering::Relaxed);
        let grant = match store.lease(&counter, window, limit, want).await {
            Ok(grant) => grant,
            Err(StoreError::Unavailable(cause)) => {
                FAULTS.report("the store is unavailable to rate limiting", &cause);
                return Ok(Spend::Unavailable);
            }
            Err(e) => return Err(e.into()),
        };
        let limited = Spend::Limited {
            retry_after_secs: Window::retry_after_secs(at),
        };
        let mut s = lock(&budget.state);
        if s.window != Some(window) {
            // The minute turned while the lease was asked for: the grant belongs to the old
            // window, which this request is in; the rest of it is over and not kept.
            return Ok(if grant.granted > 0 {
                Spend::Granted
            } else {
                limited
            });
        }
        if grant.granted == 0 {
            // Spent, when the store says the whole limit is granted; otherwise the lease lost
            // every race for what is left, and the next request asks again.
            s.spent = grant.total >= limit;
            s.uses = s.uses.saturating_add(1);
            return Ok(limited);
        }
        s.tokens = grant.granted - 1;
        s.uses = 1;
        s.leased_at = Some(Instant::now());
        Ok(Spend::Granted)
    }

    /// What is left of a budget this minute as the store knows it, without spending any:
    /// leases held by running engines count as spent, so this is "at most".
    pub(crate) async fn left(
        &self,
        store: &dyn Store,
        counter: &Counter,
        limit: u32,
        at: DateTime<Utc>,
    ) -> Result<u32, ServiceError> {
        let leased = store.leased(counter, Window::of(at)).await?;
        Ok(limit.saturating_sub(leased))
    }
}
