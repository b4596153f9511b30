//! The embedded adapter: one SQLite file, used by `keyward serve`.
//!
//! The key record is stored as JSON beside the few columns that are queried or constrained
//! (name, status, expiry, version, hash), so the record's shape has one definition: the domain
//! type. Uniqueness of names per account and of hashes is enforced by the schema itself: a
//! name is claimed by its folded key (`name_key`, [`keyward_core::name::name_key`]) in a unique
//! index, so look-alike spellings collide atomically while the record keeps the NFC name. The
//! name indexes are partial (`WHERE status != 'revoked'`): a revoke frees the name in the same
//! statement that writes the status, and a revoked row keeps its name for history.
//! rusqlite is synchronous, so each call runs on the blocking pool behind one connection.
//!
//! This file holds the schema, the connection and the helpers every table uses; each port trait
//! is implemented in the file of its concern: `accounts`, `keys` (with idempotency records),
//! `groups`, `presets`, `usage`, `leases`, `changes` (the change feed, and the writer key edits call) and
//! `audit` (the log, and the writer every mutation calls).

mod accounts;
mod audit;
mod changes;
mod groups;
mod keys;
mod leases;
mod presets;
mod usage;

use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use keyward_core::name::name_key;
use rusqlite::{Connection, OptionalExtension, Transaction};

use crate::error::{StoreError, StoreResult};
use crate::port::Page;

/// 1: accounts, keys, audit. 2: idempotency, groups, presets, usage. 3: key changes.
/// 4: `name_key` on keys and groups, unique per account (see [`migrate_names`]).
/// 5: key names are unique only among keys that are not revoked (see
/// [`migrate_revoked_names`]). Versions up to 4 only added tables, columns and indexes; 5
/// rebuilds `keys` once, to drop a table constraint SQLite cannot alter.
/// 6: usage by outcome (`usage_days.count` becomes `valid`, beside `rate_limited` and
/// `denied`), usage records waiting for the aggregator, and rate-limit leases.
/// 7: previous secrets in their grace (`previous_hashes`).
const SCHEMA_VERSION: i64 = 7;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS accounts (
    id         TEXT PRIMARY KEY,
    record     TEXT NOT NULL
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
    name_key   TEXT,
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
-- Per-day verifications by outcome; key_id '' holds the account's day.
CREATE TABLE IF NOT EXISTS usage_days (
    account      TEXT NOT NULL,
    key_id       TEXT NOT NULL,
    day          TEXT NOT NULL,
    valid        INTEGER NOT NULL,
    rate_limited INTEGER NOT NULL DEFAULT 0,
    denied       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account, key_id, day)
);
-- Usage records flushed by engines. Applying one empties it and stamps `applied_at`: the
-- row stays an hour, so a flush retried after its write landed finds it and adds nothing.
CREATE TABLE IF NOT EXISTS usage_records (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    record     TEXT,
    applied_at INTEGER
);
CREATE INDEX IF NOT EXISTS usage_records_applied ON usage_records (applied_at);
-- The previous secret of a key regenerated with a grace: it finds the key until `until`.
CREATE TABLE IF NOT EXISTS previous_hashes (
    hash       BLOB PRIMARY KEY,
    account    TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    until      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS previous_hashes_key ON previous_hashes (account, key_id);
-- Rate-limit budgets: how much of each counter's minute has been leased.
CREATE TABLE IF NOT EXISTS rate_leases (
    counter    TEXT NOT NULL,
    window     INTEGER NOT NULL,
    granted    INTEGER NOT NULL,
    PRIMARY KEY (counter, window)
);
";

/// The longest one store call may take before it answers `Unavailable`: within the 5 s a
/// request that needs the store is promised an answer in (docs/operations.md).
pub const OPERATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(4);

/// The `keys` table under `table` (`keys`, or the copy [`migrate_revoked_names`] builds).
/// Names are not constrained here but by [`NAME_INDEXES`], which only revoked keys escape.
fn keys_table(table: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {table} (
    account    TEXT NOT NULL,
    id         TEXT NOT NULL,
    name       TEXT NOT NULL,
    name_lc    TEXT NOT NULL,
    hash       BLOB NOT NULL UNIQUE,
    status     TEXT NOT NULL,
    expires_at INTEGER,
    version    INTEGER NOT NULL,
    record     TEXT NOT NULL,
    -- The folded name this key claims (NULL: a key written before version 4 that could not
    -- claim its folded name; it keeps the claim on its raw name, keys_live_name).
    name_key   TEXT,
    PRIMARY KEY (account, id)
);"
    )
}

/// Created once the `name_key` columns exist (a database of version 3 gains them in
/// [`migrate_names`]); NULLs never collide, so rows not yet folded do not stand in the way.
/// A key's name is claimed (folded, and raw for rows written before version 4) only while it
/// is not revoked: a revoked key keeps its name for history but frees it. `keys_by_name` serves
/// the listing's order, which the partial indexes cannot.
const NAME_INDEXES: &str = "
CREATE UNIQUE INDEX IF NOT EXISTS keys_live_name_key ON keys (account, name_key)
    WHERE status != 'revoked';
CREATE UNIQUE INDEX IF NOT EXISTS keys_live_name ON keys (account, name)
    WHERE status != 'revoked';
CREATE INDEX IF NOT EXISTS keys_by_name ON keys (account, name);
CREATE UNIQUE INDEX IF NOT EXISTS groups_name_key ON groups (account, name_key);
";

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
        let mut conn = conn;
        let tx = conn.transaction().map_err(backend)?;
        if version < 6 {
            usage::migrate_outcomes(&tx)?;
        }
        tx.execute_batch(&keys_table("keys")).map_err(backend)?;
        tx.execute_batch(SCHEMA).map_err(backend)?;
        if version < 4 {
            add_name_key_columns(&tx)?;
        }
        if version < 5 {
            migrate_revoked_names(&tx)?;
        }
        tx.execute_batch(NAME_INDEXES).map_err(backend)?;
        if version < 4 {
            migrate_names(&tx)?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
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

/// Version 4: names are claimed by their folded key. A database written before has keys and
/// groups claimed by their raw spelling (`UNIQUE (account, name)`): each gains the `name_key`
/// column, and each row, oldest first, claims its folded name unless an older row already holds
/// it. A row that cannot (an old store may hold look-alikes such as `CI` and `ci`) keeps
/// `name_key` NULL: it goes on working under its raw name, which `keys_live_name` still guards
/// (for groups, the old constraint), until it is renamed (which claims the folded new name) or
/// deleted.
///
/// Runs after [`migrate_revoked_names`], so revoked rows take no folded claim from a live one.
fn migrate_names(tx: &Transaction<'_>) -> StoreResult<()> {
    for table in ["keys", "groups"] {
        fold_unclaimed_names(tx, table)?;
    }
    Ok(())
}

/// The `name_key` columns of version 4, on a database that predates them.
fn add_name_key_columns(tx: &Transaction<'_>) -> StoreResult<()> {
    for table in ["keys", "groups"] {
        let has_column = tx
            .prepare(&format!(
                "SELECT 1 FROM pragma_table_info('{table}') WHERE name = 'name_key'"
            ))
            .and_then(|mut s| s.exists([]))
            .map_err(backend)?;
        if !has_column {
            tx.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN name_key TEXT"))
                .map_err(backend)?;
        }
    }
    Ok(())
}

/// Version 5: a revoked key frees its name. Before, `keys` claimed names for every row, revoked
/// or not: by the table constraint `key_name_unique UNIQUE (account, name)` and the index
/// `keys_name_key`. SQLite cannot make a table constraint partial, so a table that has it is
/// rebuilt without it (copy, drop, rename, in the caller's transaction: all or nothing), and
/// the full index is dropped; [`NAME_INDEXES`] then claims both names only for rows that are not
/// revoked. Keys revoked before the upgrade free their names with it.
fn migrate_revoked_names(tx: &Transaction<'_>) -> StoreResult<()> {
    let old_table: Option<String> = tx
        .query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'keys'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(backend)?;
    if old_table.is_some_and(|sql| sql.contains("key_name_unique")) {
        const COLUMNS: &str =
            "account, id, name, name_lc, hash, status, expires_at, version, record, name_key";
        tx.execute_batch(&format!(
            "{}
             INSERT INTO keys_v5 (rowid, {COLUMNS}) SELECT rowid, {COLUMNS} FROM keys;
             DROP TABLE keys;
             ALTER TABLE keys_v5 RENAME TO keys;",
            keys_table("keys_v5")
        ))
        .map_err(backend)?;
    }
    tx.execute_batch("DROP INDEX IF EXISTS keys_name_key")
        .map_err(backend)
}

/// Gives every row of `table` without a `name_key` its folded name unless another row of the
/// account holds it (the unique index refuses it): names already in folded form first (their
/// raw claim was their folded one all along), then the others, oldest first. Answers how many
/// rows were left on their raw name.
pub(crate) fn fold_unclaimed_names(tx: &Transaction<'_>, table: &str) -> StoreResult<usize> {
    let mut rows: Vec<(i64, String)> = {
        let mut stmt = tx
            .prepare(&format!(
                "SELECT rowid, name FROM {table} WHERE name_key IS NULL ORDER BY rowid"
            ))
            .map_err(backend)?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(backend)?
            .collect::<Result<_, _>>()
            .map_err(backend)?
    };
    let mut folded: Vec<(i64, String, bool)> = rows
        .drain(..)
        .map(|(rowid, name)| {
            let key = name_key(&name);
            let already = key == name;
            (rowid, key, already)
        })
        .collect();
    folded.sort_by_key(|(rowid, _, already)| (!already, *rowid));
    let mut left = 0;
    for (rowid, key, _) in folded {
        let n = tx
            .execute(
                &format!("UPDATE OR IGNORE {table} SET name_key = ?1 WHERE rowid = ?2"),
                rusqlite::params![key, rowid],
            )
            .map_err(backend)?;
        left += usize::from(n == 0);
    }
    Ok(left)
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

fn from_micros(us: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| StoreError::Backend(format!("corrupt time {us}")))
}

/// Writing records exactly as keyward did before names were folded (schema 3: no `name_key`),
/// for the conformance check that such a database keeps working.
#[cfg(feature = "conformance")]
mod legacy {
    use async_trait::async_trait;
    use keyward_core::audit::AuditEntry;
    use keyward_core::group::Group;
    use keyward_core::hash::KeyHash;
    use keyward_core::key::ApiKey;
    use rusqlite::params;

    use super::audit::insert_audit;
    use super::{SqliteStore, backend, fold_unclaimed_names, micros, to_json};
    use crate::conformance::LegacyNames;
    use crate::error::{StoreError, StoreResult};

    fn taken(e: rusqlite::Error, name: &str) -> StoreError {
        match &e {
            rusqlite::Error::SqliteFailure(err, _)
                if err.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                StoreError::NameTaken(name.to_owned())
            }
            _ => backend(e),
        }
    }

    #[async_trait]
    impl LegacyNames for SqliteStore {
        async fn insert_legacy_key(
            &self,
            key: &ApiKey,
            hash: &KeyHash,
            audit: &AuditEntry,
        ) -> StoreResult<()> {
            let (key, hash, audit) = (key.clone(), *hash, audit.clone());
            self.with(move |c| {
                let tx = c.transaction().map_err(backend)?;
                tx.execute(
                    "INSERT INTO keys (account, id, name, name_lc, hash, status, expires_at, version, record)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![
                        key.account,
                        key.id,
                        key.name,
                        key.name.to_lowercase(),
                        hash.as_bytes().as_slice(),
                        key.status.as_str(),
                        key.expires_at.map(micros),
                        key.version,
                        to_json(&key)?,
                    ],
                )
                .map_err(|e| taken(e, &key.name))?;
                insert_audit(&tx, &audit)?;
                tx.commit().map_err(backend)
            })
            .await
        }

        async fn insert_legacy_group(&self, group: &Group, audit: &AuditEntry) -> StoreResult<()> {
            let (group, audit) = (group.clone(), audit.clone());
            self.with(move |c| {
                let tx = c.transaction().map_err(backend)?;
                tx.execute(
                    "INSERT INTO groups (account, id, name, record) VALUES (?1, ?2, ?3, ?4)",
                    params![group.account, group.id, group.name, to_json(&group)?],
                )
                .map_err(|e| taken(e, &group.name))?;
                insert_audit(&tx, &audit)?;
                tx.commit().map_err(backend)
            })
            .await
        }

        async fn revoke_legacy_key(
            &self,
            revoked: &ApiKey,
            expected_version: u64,
            audit: &AuditEntry,
        ) -> StoreResult<()> {
            // The statement is the one keyward always ran; what frees the name is the schema.
            let (key, audit) = (revoked.clone(), audit.clone());
            self.with(move |c| {
                let tx = c.transaction().map_err(backend)?;
                let n = tx
                    .execute(
                        "UPDATE keys SET status = ?3, version = ?4, record = ?5
                         WHERE account = ?1 AND id = ?2 AND version = ?6",
                        params![
                            key.account,
                            key.id,
                            key.status.as_str(),
                            key.version,
                            to_json(&key)?,
                            expected_version,
                        ],
                    )
                    .map_err(backend)?;
                if n == 0 {
                    return Err(StoreError::VersionConflict);
                }
                insert_audit(&tx, &audit)?;
                tx.commit().map_err(backend)
            })
            .await
        }

        async fn upgrade_legacy_names(&self) -> StoreResult<()> {
            self.with(|c| {
                let tx = c.transaction().map_err(backend)?;
                fold_unclaimed_names(&tx, "keys")?;
                fold_unclaimed_names(&tx, "groups")?;
                tx.commit().map_err(backend)
            })
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyward_core::audit::AuditEntry;

    /// The tables of schema 3 that names live in, as keyward created them then.
    const SCHEMA_3_NAMED: &str = "
        CREATE TABLE keys (
            account TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL, name_lc TEXT NOT NULL,
            hash BLOB NOT NULL UNIQUE, status TEXT NOT NULL, expires_at INTEGER,
            version INTEGER NOT NULL, record TEXT NOT NULL,
            PRIMARY KEY (account, id), CONSTRAINT key_name_unique UNIQUE (account, name));
        CREATE TABLE groups (
            account TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL, record TEXT NOT NULL,
            PRIMARY KEY (account, id), CONSTRAINT group_name_unique UNIQUE (account, name));
        PRAGMA user_version = 3;";

    /// An audit entry about `id` in the test account.
    fn audit(id: &str) -> AuditEntry {
        AuditEntry::new(
            "acc",
            "t",
            "x",
            Some(id),
            None,
            serde_json::json!({}),
            Utc::now(),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_version_3_database_is_migrated_to_folded_names_on_open() {
        use crate::conformance::sample_key;
        use crate::port::{GroupStore, KeyStore};

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyward.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(SCHEMA_3_NAMED).unwrap();
        // Written as schema 3 did: "Build-Bot" first, then its look-alike "build-bot".
        let mut keys = Vec::new();
        for name in ["Build-Bot", "build-bot", "cafe\u{301}"] {
            let (mut key, hash) = sample_key("acc", serde_json::json!({"name": "x"}));
            key.name = name.to_owned();
            conn.execute(
                "INSERT INTO keys (account, id, name, name_lc, hash, status, expires_at, version, record)
                 VALUES ('acc', ?1, ?2, ?3, ?4, 'active', NULL, 1, ?5)",
                rusqlite::params![
                    key.id,
                    key.name,
                    key.name.to_lowercase(),
                    hash.as_bytes().as_slice(),
                    serde_json::to_string(&key).unwrap()
                ],
            )
            .unwrap();
            keys.push(key);
        }
        conn.execute(
            "INSERT INTO groups (account, id, name, record) VALUES ('acc', 'grp_1', 'Ops',
             '{\"id\":\"grp_1\",\"account\":\"acc\",\"name\":\"Ops\",\"description\":\"\",\"created_at\":\"2025-01-01T00:00:00Z\",\"created_by\":\"t\"}')",
            [],
        )
        .unwrap();
        drop(conn);

        let store = SqliteStore::open(&path).unwrap();
        let folded: Vec<(String, Option<String>)> = store
            .with(|c| {
                let mut stmt = c
                    .prepare("SELECT name, name_key FROM keys ORDER BY rowid")
                    .map_err(backend)?;
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map_err(backend)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(backend)
            })
            .await
            .unwrap();
        assert_eq!(
            folded,
            [
                ("Build-Bot".to_owned(), None),
                ("build-bot".to_owned(), Some("build-bot".to_owned())),
                ("cafe\u{301}".to_owned(), Some("caf\u{e9}".to_owned())),
            ],
            "a name already folded keeps its claim; its look-alike stays on its raw name"
        );
        // The old records load; new look-alikes collide; the group's name is folded too.
        assert_eq!(
            store.get_key("acc", &keys[0].id).await.unwrap(),
            Some(keys[0].clone())
        );
        let (mut look_alike, hash) = sample_key("acc", serde_json::json!({"name": "x"}));
        look_alike.name = "CAF\u{c9}".into();
        let err = store
            .insert_key(&look_alike, &hash, &audit(&look_alike.id), None)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NameTaken(_)), "{err:?}");
        let group = keyward_core::group::CreateGroupRequest {
            name: Some("OPS".into()),
            description: None,
        }
        .into_group("acc", "t", Utc::now())
        .unwrap()
        .unwrap();
        let err = store
            .insert_group(&group, &audit(&group.id))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NameTaken(_)), "{err:?}");
        drop(store);
        // Opening again changes nothing.
        let again = SqliteStore::open(&path).unwrap();
        assert_eq!(
            again.get_key("acc", &keys[1].id).await.unwrap(),
            Some(keys[1].clone())
        );
    }

    /// A database of `version` (3 or 4) holding a revoked key named `name`, with `name_key`
    /// where version 4 had it, and a live key named `live`; at `path`.
    fn old_database_with_a_revoked_key(
        path: &Path,
        version: i64,
    ) -> (keyward_core::key::ApiKey, keyward_core::key::ApiKey) {
        use crate::conformance::sample_key;
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(SCHEMA_3_NAMED).unwrap();
        if version == 4 {
            conn.execute_batch(
                "ALTER TABLE keys ADD COLUMN name_key TEXT;
                 ALTER TABLE groups ADD COLUMN name_key TEXT;
                 CREATE UNIQUE INDEX keys_name_key ON keys (account, name_key);
                 CREATE UNIQUE INDEX groups_name_key ON groups (account, name_key);
                 PRAGMA user_version = 4;",
            )
            .unwrap();
        }
        let mut out = Vec::new();
        for (name, status) in [("Retired-Bot", "revoked"), ("live", "active")] {
            let (mut key, hash) = sample_key("acc", serde_json::json!({"name": "x"}));
            key.name = name.to_owned();
            key.status = keyward_core::key::KeyStatus::parse(status).unwrap();
            let columns = if version == 4 { ", name_key" } else { "" };
            let folded = if version == 4 { ", ?6" } else { "" };
            let mut params: Vec<Box<dyn rusqlite::ToSql>> = vec![
                Box::new(key.id.clone()),
                Box::new(key.name.clone()),
                Box::new(key.name.to_lowercase()),
                Box::new(hash.as_bytes().to_vec()),
                Box::new(serde_json::to_string(&key).unwrap()),
            ];
            if version == 4 {
                params.push(Box::new(name_key(&key.name)));
            }
            conn.execute(
                &format!(
                    "INSERT INTO keys (account, id, name, name_lc, hash, status, expires_at, version, record{columns})
                     VALUES ('acc', ?1, ?2, ?3, ?4, '{status}', NULL, 1, ?5{folded})"
                ),
                rusqlite::params_from_iter(params.iter().map(|p| p.as_ref())),
            )
            .unwrap();
            out.push(key);
        }
        let live = out.pop().unwrap();
        (out.pop().unwrap(), live)
    }

    /// Versions 3 and 4 claimed names for revoked keys too (a table constraint on the raw name,
    /// a full index on the folded one); opening such a database frees them, keeps every row,
    /// and still guards the names of live keys.
    #[tokio::test]
    async fn opening_an_old_database_frees_the_names_of_revoked_keys() {
        use crate::conformance::sample_key;
        use crate::port::KeyStore;
        use keyward_core::key::{ApiKey, KeyStatus};

        for version in [3, 4] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("keyward.db");
            let (retired, live) = old_database_with_a_revoked_key(&path, version);
            let store = SqliteStore::open(&path).unwrap();
            let named = |name: &str| {
                let (mut key, hash) = sample_key("acc", serde_json::json!({"name": "x"}));
                key.name = name.to_owned();
                (key, hash)
            };
            // The revoked key's name is free, in its own spelling and in a look-alike.
            for name in ["Retired-Bot", "RETIRED-BOT"] {
                let (key, hash) = named(name);
                store
                    .insert_key(&key, &hash, &audit(&key.id), None)
                    .await
                    .unwrap_or_else(|e| panic!("version {version}, {name}: {e:?}"));
                let revoked = ApiKey {
                    status: KeyStatus::Revoked,
                    version: 2,
                    ..key.clone()
                };
                store
                    .update_key(&revoked, 1, None, &audit(&key.id))
                    .await
                    .unwrap();
            }
            // A live key's name is still guarded, raw and folded.
            for name in ["live", "LIVE"] {
                let (key, hash) = named(name);
                let err = store
                    .insert_key(&key, &hash, &audit(&key.id), None)
                    .await
                    .unwrap_err();
                assert!(
                    matches!(err, StoreError::NameTaken(_)),
                    "{version}: {err:?}"
                );
            }
            // Every row is kept as it was.
            assert_eq!(
                store.get_key("acc", &retired.id).await.unwrap(),
                Some(retired.clone())
            );
            assert_eq!(
                store.get_key("acc", &live.id).await.unwrap(),
                Some(live.clone())
            );
            let (sql, version_now): (String, i64) = store
                .with(|c| {
                    let sql = c
                        .query_row(
                            "SELECT group_concat(sql, ';') FROM sqlite_master WHERE tbl_name = 'keys'",
                            [],
                            |r| r.get(0),
                        )
                        .map_err(backend)?;
                    let v = c
                        .pragma_query_value(None, "user_version", |r| r.get(0))
                        .map_err(backend)?;
                    Ok((sql, v))
                })
                .await
                .unwrap();
            assert_eq!(version_now, SCHEMA_VERSION);
            assert!(!sql.contains("key_name_unique"), "{sql}");
            assert!(!sql.contains("keys_name_key "), "{sql}");
            drop(store);
            // Opening again changes nothing.
            let again = SqliteStore::open(&path).unwrap();
            assert_eq!(
                again.get_key("acc", &retired.id).await.unwrap(),
                Some(retired)
            );
        }
    }

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
