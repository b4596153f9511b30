//! The embedded adapter: one SQLite file, used by `keyward serve`.
//!
//! The key record is stored as JSON beside the few columns that are queried or constrained
//! (name, status, expiry, version, hash), so the record's shape has one definition: the domain
//! type. Uniqueness of names per account and of hashes is enforced by the schema itself.
//! rusqlite is synchronous, so each call runs on the blocking pool behind one connection.
//!
//! This file holds the schema, the connection and the helpers every table uses; each port trait
//! is implemented in the file of its concern: `accounts`, `keys` (with idempotency records),
//! `groups`, `presets`, `usage`, `changes` (the change feed, and the writer key edits call) and
//! `audit` (the log, and the writer every mutation calls).

mod accounts;
mod audit;
mod changes;
mod groups;
mod keys;
mod presets;
mod usage;

use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension};

use crate::error::{StoreError, StoreResult};
use crate::port::Page;

/// 1: accounts, keys, audit. 2: idempotency, groups, presets, usage. 3: key changes.
/// Each version only adds tables, created in place.
const SCHEMA_VERSION: i64 = 3;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS accounts (
    id         TEXT PRIMARY KEY,
    record     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS keys (
    account    TEXT NOT NULL,
    id         TEXT NOT NULL,
    name       TEXT NOT NULL,
    name_lc    TEXT NOT NULL,
    hash       BLOB NOT NULL UNIQUE,
    status     TEXT NOT NULL,
    expires_at INTEGER,
    version    INTEGER NOT NULL,
    record     TEXT NOT NULL,
    PRIMARY KEY (account, id),
    CONSTRAINT key_name_unique UNIQUE (account, name)
);
CREATE TABLE IF NOT EXISTS audit (
    account    TEXT NOT NULL,
    at         INTEGER NOT NULL,
    id         TEXT NOT NULL,
    record     TEXT NOT NULL,
    PRIMARY KEY (account, at, id)
);
CREATE TABLE IF NOT EXISTS idempotency (
    account    TEXT NOT NULL,
    key        TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    record     TEXT NOT NULL,
    PRIMARY KEY (account, key)
);
CREATE TABLE IF NOT EXISTS groups (
    account    TEXT NOT NULL,
    id         TEXT NOT NULL,
    name       TEXT NOT NULL,
    record     TEXT NOT NULL,
    PRIMARY KEY (account, id),
    CONSTRAINT group_name_unique UNIQUE (account, name)
);
CREATE TABLE IF NOT EXISTS presets (
    account    TEXT NOT NULL,
    name       TEXT NOT NULL,
    record     TEXT NOT NULL,
    PRIMARY KEY (account, name)
);
-- The hashes verifiers must drop from their caches, by time of change.
CREATE TABLE IF NOT EXISTS key_changes (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    hash       BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS key_changes_at ON key_changes (at);
-- Per-day request counts; key_id '' holds the account's total.
CREATE TABLE IF NOT EXISTS usage_days (
    account    TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    day        TEXT NOT NULL,
    count      INTEGER NOT NULL,
    PRIMARY KEY (account, key_id, day)
);
";

/// The longest one store call may take before it answers `Unavailable`: within the 5 s a
/// request that needs the store is promised an answer in (docs/operations.md).
pub const OPERATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(4);

/// The SQLite adapter. Cheap to clone; clones share one connection.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> StoreResult<Self> {
        Self::init(Connection::open(path).map_err(backend)?)
    }

    /// A private in-memory database, for tests.
    pub fn in_memory() -> StoreResult<Self> {
        Self::init(Connection::open_in_memory().map_err(backend)?)
    }

    fn init(conn: Connection) -> StoreResult<Self> {
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(backend)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(backend)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(backend)?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(backend)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::Backend(format!(
                "the database has schema version {version}, newer than this keyward ({SCHEMA_VERSION}); upgrade keyward"
            )));
        }
        conn.execute_batch(SCHEMA).map_err(backend)?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(backend)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` with the connection on the blocking pool, answering `Unavailable` when it
    /// does not finish within [`OPERATION_TIMEOUT`] (a disk that hangs, a lock held too long;
    /// the call itself still runs to its end).
    async fn with<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let task = tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| StoreError::Backend("the connection lock was poisoned".into()))?;
            f(&mut guard)
        });
        match tokio::time::timeout(OPERATION_TIMEOUT, task).await {
            Ok(done) => {
                done.map_err(|e| StoreError::Backend(format!("storage task failed: {e}")))?
            }
            Err(_) => Err(StoreError::Unavailable(format!(
                "the database did not answer within {OPERATION_TIMEOUT:?}"
            ))),
        }
    }
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn to_json<T: serde::Serialize>(v: &T) -> StoreResult<String> {
    serde_json::to_string(v).map_err(backend)
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> StoreResult<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Backend(format!("corrupt record: {e}")))
}

/// The record of the one row `sql` selects, if any.
fn one<T: serde::de::DeserializeOwned>(
    c: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> StoreResult<Option<T>> {
    let record: Option<String> = c
        .query_row(sql, params, |r| r.get(0))
        .optional()
        .map_err(backend)?;
    record.as_deref().map(from_json).transpose()
}

/// The records of every row `sql` selects, in its order.
fn all<T: serde::de::DeserializeOwned>(
    c: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> StoreResult<Vec<T>> {
    let mut stmt = c.prepare(sql).map_err(backend)?;
    let rows = stmt
        .query_map(params, |r| r.get::<_, String>(0))
        .map_err(backend)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(backend)?;
    rows.iter().map(|r| from_json(r)).collect()
}

/// A page from up to `limit + 1` items read: a cursor only when there was more.
fn page<T>(mut items: Vec<T>, limit: usize, cursor_of: impl Fn(&T) -> String) -> Page<T> {
    let more = items.len() > limit;
    items.truncate(limit);
    let next_cursor = if more {
        items.last().map(cursor_of)
    } else {
        None
    };
    Page { items, next_cursor }
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_database_from_a_newer_keyward() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = SqliteStore::open(&path).unwrap_err();
        assert!(err.to_string().contains("newer than this keyward"));
    }
}
