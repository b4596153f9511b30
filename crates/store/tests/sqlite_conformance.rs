//! The conformance suite on the embedded SQLite adapter.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed check panics

use keyward_store::SqliteStore;

keyward_store::conformance_tests!(async { SqliteStore::in_memory().unwrap() });

/// The same suite on a file database, as `keyward serve` uses it.
mod on_disk {
    use keyward_store::SqliteStore;

    /// A database in a fresh directory, kept after the test so the open file stays valid.
    async fn store() -> SqliteStore {
        let dir = tempfile::tempdir().unwrap().keep();
        SqliteStore::open(&dir.join("keyward.db")).unwrap()
    }

    keyward_store::conformance_tests!(store());
}
