//! Rate-limit leases: blocks of a budget's minute, granted atomically across every engine.

use async_trait::async_trait;
use keyward_core::rate::{Counter, Grant, Window};

use crate::error::StoreResult;

/// Storage for rate-limit budgets: how much of each counter's window has been granted.
#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Grants up to `want` uses of `counter` in `window`, never more than `limit` in all across
    /// every caller: all of `want`, what is left, or nothing when the window is spent. One
    /// conditional write; what was granted is never given back.
    async fn lease(
        &self,
        counter: &Counter,
        window: Window,
        limit: u32,
        want: u32,
    ) -> StoreResult<Grant>;

    /// How many uses of `counter` were granted in `window` so far (a read, no write).
    async fn leased(&self, counter: &Counter, window: Window) -> StoreResult<u32>;
}
