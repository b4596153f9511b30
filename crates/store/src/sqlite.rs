//! The embedded adapter: one SQLite file, used by `keyward serve`.
//!
//! The key record is stored as JSON beside the few columns that are queried or constrained
//! (name, status, expiry, version, hash), so the record's shape has one definition: the domain
//! type. Uniqueness of names per account and of hashes is enforced by the schema itself.
//! rusqlite is synchronous, so each call runs on the blocking pool behind one connection.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use keyward_core::audit::{Account, AuditEntry};
use keyward_core::group::Group;
use keyward_core::hash::KeyHash;
use keyward_core::idempotency::IdempotencyRecord;
use keyward_core::key::{ApiKey, KeyStatus};
use keyward_core::preset::Preset;
use keyward_core::usage::{DayCount, KeyChange, UsageDelta};
use rusqlite::{Connection, ErrorCode, OptionalExtension, Transaction, params};

use crate::cursor;
use crate::error::{StoreError, StoreResult};
use crate::port::{KeyQuery, Page, Store, page_limit};

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

    /// Runs `f` with the connection on the blocking pool.
    async fn with<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| StoreError::Backend("the connection lock was poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("storage task failed: {e}")))?
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

/// Maps a write's constraint failure to its domain meaning.
fn write_error(e: rusqlite::Error, key: &ApiKey) -> StoreError {
    if let rusqlite::Error::SqliteFailure(err, msg) = &e
        && err.code == ErrorCode::ConstraintViolation
    {
        let msg = msg.as_deref().unwrap_or_default();
        if msg.contains("keys.name") || msg.contains("key_name_unique") {
            return StoreError::NameTaken(key.name.clone());
        }
        if msg.contains("keys.account, keys.id") {
            return StoreError::AlreadyExists;
        }
    }
    backend(e)
}

fn insert_audit(tx: &Transaction<'_>, entry: &AuditEntry) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO audit (account, at, id, record) VALUES (?1, ?2, ?3, ?4)",
        params![entry.account, micros(entry.at), entry.id, to_json(entry)?],
    )
    .map_err(backend)?;
    Ok(())
}

/// Records that `hash` stopped meaning what verifiers may have cached, and forgets changes
/// older than a day.
fn record_change(tx: &Transaction<'_>, hash: &[u8]) -> StoreResult<()> {
    let now = Utc::now();
    tx.execute(
        "INSERT INTO key_changes (at, hash) VALUES (?1, ?2)",
        params![micros(now), hash],
    )
    .map_err(backend)?;
    tx.execute(
        "DELETE FROM key_changes WHERE at < ?1",
        params![micros(now - chrono::Duration::days(1))],
    )
    .map_err(backend)?;
    Ok(())
}

/// The lookup hash a key has now.
fn current_hash(tx: &Transaction<'_>, account: &str, id: &str) -> StoreResult<Option<Vec<u8>>> {
    tx.query_row(
        "SELECT hash FROM keys WHERE account = ?1 AND id = ?2",
        params![account, id],
        |r| r.get(0),
    )
    .optional()
    .map_err(backend)
}

/// Why a conditional write touched no row: the key is gone, or it moved on.
fn missing_or_conflict(tx: &Transaction<'_>, account: &str, id: &str) -> StoreError {
    let exists = tx
        .query_row(
            "SELECT 1 FROM keys WHERE account = ?1 AND id = ?2",
            params![account, id],
            |_| Ok(()),
        )
        .optional();
    match exists {
        Ok(Some(())) => StoreError::VersionConflict,
        Ok(None) => StoreError::NotFound,
        Err(e) => backend(e),
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_account(&self, account: &Account) -> StoreResult<bool> {
        let (id, record) = (account.id.clone(), to_json(account)?);
        self.with(move |c| {
            let n = c
                .execute(
                    "INSERT INTO accounts (id, record) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING",
                    params![id, record],
                )
                .map_err(backend)?;
            Ok(n == 1)
        })
        .await
    }

    async fn get_account(&self, id: &str) -> StoreResult<Option<Account>> {
        let id = id.to_owned();
        self.with(move |c| one(c, "SELECT record FROM accounts WHERE id = ?1", params![id]))
            .await
    }

    async fn insert_key(
        &self,
        key: &ApiKey,
        hash: &KeyHash,
        audit: &AuditEntry,
        idempotency: Option<&IdempotencyRecord>,
    ) -> StoreResult<()> {
        let (key, hash, audit) = (key.clone(), *hash, audit.clone());
        let idempotency = idempotency.cloned();
        self.with(move |c| {
            let tx = c.transaction().map_err(backend)?;
            if let Some(record) = &idempotency {
                // Take the key unless a live record holds it.
                let n = tx
                    .execute(
                        "INSERT INTO idempotency (account, key, expires_at, record) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (account, key) DO UPDATE
                           SET expires_at = excluded.expires_at, record = excluded.record
                           WHERE idempotency.expires_at <= ?5",
                        params![
                            record.account,
                            record.key,
                            micros(record.expires_at),
                            to_json(record)?,
                            micros(Utc::now()),
                        ],
                    )
                    .map_err(backend)?;
                if n == 0 {
                    return Err(StoreError::IdempotencyKeyUsed);
                }
            }
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
            .map_err(|e| write_error(e, &key))?;
            insert_audit(&tx, &audit)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn get_key(&self, account: &str, id: &str) -> StoreResult<Option<ApiKey>> {
        let (account, id) = (account.to_owned(), id.to_owned());
        self.with(move |c| {
            one(
                c,
                "SELECT record FROM keys WHERE account = ?1 AND id = ?2",
                params![account, id],
            )
        })
        .await
    }

    async fn find_key_by_hash(&self, hash: &KeyHash) -> StoreResult<Option<ApiKey>> {
        let hash = *hash;
        self.with(move |c| {
            one(
                c,
                "SELECT record FROM keys WHERE hash = ?1",
                params![hash.as_bytes().as_slice()],
            )
        })
        .await
    }

    async fn update_key(
        &self,
        key: &ApiKey,
        expected_version: u64,
        new_hash: Option<&KeyHash>,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let (key, new_hash, audit) = (key.clone(), new_hash.copied(), audit.clone());
        self.with(move |c| {
            let tx = c.transaction().map_err(backend)?;
            let old_hash = current_hash(&tx, &key.account, &key.id)?;
            let n = tx
                .execute(
                    "UPDATE keys SET name = ?3, name_lc = ?4, status = ?5, expires_at = ?6,
                         version = ?7, hash = COALESCE(?9, hash),
                         record = json_set(?8,
                             '$.request_count', json_extract(record, '$.request_count'),
                             '$.last_used_at', json_extract(record, '$.last_used_at'),
                             '$.last_used_ip', json_extract(record, '$.last_used_ip'))
                     WHERE account = ?1 AND id = ?2 AND version = ?10",
                    params![
                        key.account,
                        key.id,
                        key.name,
                        key.name.to_lowercase(),
                        key.status.as_str(),
                        key.expires_at.map(micros),
                        key.version,
                        to_json(&key)?,
                        new_hash.as_ref().map(|h| h.as_bytes().to_vec()),
                        expected_version,
                    ],
                )
                .map_err(|e| write_error(e, &key))?;
            if n == 0 {
                return Err(missing_or_conflict(&tx, &key.account, &key.id));
            }
            if let Some(old) = old_hash {
                record_change(&tx, &old)?;
            }
            insert_audit(&tx, &audit)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn delete_key(
        &self,
        account: &str,
        id: &str,
        expected_version: Option<u64>,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let (account, id, audit) = (account.to_owned(), id.to_owned(), audit.clone());
        self.with(move |c| {
            let tx = c.transaction().map_err(backend)?;
            let old_hash = current_hash(&tx, &account, &id)?;
            let n = tx
                .execute(
                    "DELETE FROM keys WHERE account = ?1 AND id = ?2 AND (?3 IS NULL OR version = ?3)",
                    params![account, id, expected_version],
                )
                .map_err(backend)?;
            if n == 0 {
                return Err(missing_or_conflict(&tx, &account, &id));
            }
            if let Some(old) = old_hash {
                record_change(&tx, &old)?;
            }
            insert_audit(&tx, &audit)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn list_keys(&self, account: &str, query: &KeyQuery) -> StoreResult<Page<ApiKey>> {
        let after = match &query.cursor {
            Some(c) => cursor::decode(c, 1)?.pop(),
            None => None,
        };
        let account = account.to_owned();
        let query = query.clone();
        let limit = page_limit(query.limit);
        self.with(move |c| {
            let now = micros(query.now);
            // Status as of `now`, the same rule as ApiKey::status_at, in SQL.
            let status_clause = match query.status {
                None => "1",
                Some(KeyStatus::Revoked) => "status = 'revoked'",
                Some(KeyStatus::Expired) => {
                    "(status = 'expired' OR (status IN ('active', 'inactive') AND expires_at IS NOT NULL AND expires_at <= :now))"
                }
                Some(KeyStatus::Active) => {
                    "(status = 'active' AND (expires_at IS NULL OR expires_at > :now))"
                }
                Some(KeyStatus::Inactive) => {
                    "(status = 'inactive' AND (expires_at IS NULL OR expires_at > :now))"
                }
            };
            let sql = format!(
                "SELECT record FROM keys
                 WHERE account = :account AND {status_clause}
                   AND (:after IS NULL OR name > :after)
                   AND (:q IS NULL OR instr(name_lc, :q) > 0)
                   AND (:ws IS NULL OR EXISTS (
                        SELECT 1 FROM json_each(keys.record, '$.workspaces') WHERE value = :ws))
                   AND (:grp IS NULL OR EXISTS (
                        SELECT 1 FROM json_each(keys.record, '$.groups') WHERE value = :grp))
                 ORDER BY name LIMIT :limit"
            );
            let mut named: Vec<(&str, &dyn rusqlite::ToSql)> = Vec::new();
            let q = query.name_contains.as_ref().map(|q| q.to_lowercase());
            let fetch = (limit + 1) as i64;
            named.push((":account", &account));
            named.push((":after", &after));
            named.push((":q", &q));
            named.push((":ws", &query.workspace));
            named.push((":grp", &query.group));
            named.push((":limit", &fetch));
            if status_clause.contains(":now") {
                named.push((":now", &now));
            }
            let keys: Vec<ApiKey> = all(c, &sql, named.as_slice())?;
            let keys = keys.into_iter().map(|k| k.as_of(query.now)).collect();
            Ok(page(keys, limit, |k: &ApiKey| cursor::encode(&[&k.name])))
        })
        .await
    }

    async fn get_idempotency(
        &self,
        account: &str,
        key: &str,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        let (account, key) = (account.to_owned(), key.to_owned());
        self.with(move |c| {
            one(
                c,
                "SELECT record FROM idempotency WHERE account = ?1 AND key = ?2",
                params![account, key],
            )
        })
        .await
    }

    async fn insert_group(&self, group: &Group, audit: &AuditEntry) -> StoreResult<()> {
        let (group, audit) = (group.clone(), audit.clone());
        self.with(move |c| {
            let tx = c.transaction().map_err(backend)?;
            tx.execute(
                "INSERT INTO groups (account, id, name, record) VALUES (?1, ?2, ?3, ?4)",
                params![group.account, group.id, group.name, to_json(&group)?],
            )
            .map_err(|e| match &e {
                rusqlite::Error::SqliteFailure(err, _)
                    if err.code == ErrorCode::ConstraintViolation =>
                {
                    StoreError::NameTaken(group.name.clone())
                }
                _ => backend(e),
            })?;
            insert_audit(&tx, &audit)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn get_group(&self, account: &str, id: &str) -> StoreResult<Option<Group>> {
        let (account, id) = (account.to_owned(), id.to_owned());
        self.with(move |c| {
            one(
                c,
                "SELECT record FROM groups WHERE account = ?1 AND id = ?2",
                params![account, id],
            )
        })
        .await
    }

    async fn list_groups(
        &self,
        account: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<Group>> {
        let after = cursor
            .map(|c| cursor::decode(c, 1))
            .transpose()?
            .and_then(|mut p| p.pop());
        let account = account.to_owned();
        let limit = page_limit(limit);
        self.with(move |c| {
            let groups = all(
                c,
                "SELECT record FROM groups WHERE account = ?1 AND (?2 IS NULL OR id > ?2)
                 ORDER BY id LIMIT ?3",
                params![account, after, (limit + 1) as i64],
            )?;
            Ok(page(groups, limit, |g: &Group| cursor::encode(&[&g.id])))
        })
        .await
    }

    async fn delete_group(&self, account: &str, id: &str, audit: &AuditEntry) -> StoreResult<()> {
        let (account, id, audit) = (account.to_owned(), id.to_owned(), audit.clone());
        self.with(move |c| {
            let tx = c.transaction().map_err(backend)?;
            let n = tx
                .execute(
                    "DELETE FROM groups WHERE account = ?1 AND id = ?2",
                    params![account, id],
                )
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            insert_audit(&tx, &audit)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn put_preset(
        &self,
        account: &str,
        preset: &Preset,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let (account, preset, audit) = (account.to_owned(), preset.clone(), audit.clone());
        self.with(move |c| {
            let tx = c.transaction().map_err(backend)?;
            tx.execute(
                "INSERT INTO presets (account, name, record) VALUES (?1, ?2, ?3)
                 ON CONFLICT (account, name) DO UPDATE SET record = excluded.record",
                params![account, preset.name, to_json(&preset)?],
            )
            .map_err(backend)?;
            insert_audit(&tx, &audit)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn list_presets(&self, account: &str) -> StoreResult<Vec<Preset>> {
        let account = account.to_owned();
        self.with(move |c| {
            all(
                c,
                "SELECT record FROM presets WHERE account = ?1 ORDER BY name",
                params![account],
            )
        })
        .await
    }

    async fn delete_preset(
        &self,
        account: &str,
        name: &str,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let (account, name, audit) = (account.to_owned(), name.to_owned(), audit.clone());
        self.with(move |c| {
            let tx = c.transaction().map_err(backend)?;
            let n = tx
                .execute(
                    "DELETE FROM presets WHERE account = ?1 AND name = ?2",
                    params![account, name],
                )
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            insert_audit(&tx, &audit)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn record_usage(&self, deltas: &[UsageDelta]) -> StoreResult<()> {
        let deltas = deltas.to_vec();
        self.with(move |c| {
            let tx = c.transaction().map_err(backend)?;
            for d in &deltas {
                let count = i64::try_from(d.count).unwrap_or(i64::MAX);
                let updated = tx
                    .execute(
                        "UPDATE keys SET record = json_set(record,
                             '$.request_count', json_extract(record, '$.request_count') + ?3,
                             '$.last_used_at', ?4,
                             '$.last_used_ip', ?5)
                         WHERE account = ?1 AND id = ?2",
                        params![
                            d.account,
                            d.key_id,
                            count,
                            to_json(&d.last_used_at)?.trim_matches('"'),
                            d.last_used_ip.map(|ip| ip.to_string()),
                        ],
                    )
                    .map_err(backend)?;
                if updated == 0 {
                    continue; // the key is gone; its uses go with it
                }
                let day = d.last_used_at.date_naive().to_string();
                for key_id in [d.key_id.as_str(), ""] {
                    tx.execute(
                        "INSERT INTO usage_days (account, key_id, day, count) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (account, key_id, day) DO UPDATE SET count = count + excluded.count",
                        params![d.account, key_id, day, count],
                    )
                    .map_err(backend)?;
                }
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn usage_days(
        &self,
        account: &str,
        key_id: Option<&str>,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<DayCount>> {
        let (account, key_id) = (account.to_owned(), key_id.unwrap_or_default().to_owned());
        self.with(move |c| {
            let mut stmt = c
                .prepare(
                    "SELECT day, count FROM usage_days
                     WHERE account = ?1 AND key_id = ?2 AND day >= ?3 AND day <= ?4 ORDER BY day",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(
                    params![account, key_id, from.to_string(), to.to_string()],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
                )
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            rows.into_iter()
                .map(|(day, count)| {
                    Ok(DayCount {
                        date: day
                            .parse()
                            .map_err(|_| StoreError::Backend(format!("corrupt day '{day}'")))?,
                        count: u64::try_from(count).unwrap_or_default(),
                    })
                })
                .collect()
        })
        .await
    }

    async fn changes_since(&self, since: DateTime<Utc>) -> StoreResult<Vec<KeyChange>> {
        self.with(move |c| {
            let mut stmt = c
                .prepare("SELECT at, hash FROM key_changes WHERE at >= ?1 ORDER BY seq")
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![micros(since)], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
                })
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            rows.into_iter()
                .map(|(at, hash)| {
                    let hash: [u8; 32] = hash
                        .try_into()
                        .map_err(|_| StoreError::Backend("corrupt change hash".into()))?;
                    Ok(KeyChange {
                        hash: KeyHash::from_bytes(hash),
                        at: DateTime::from_timestamp_micros(at).unwrap_or_default(),
                    })
                })
                .collect()
        })
        .await
    }

    async fn list_audit(
        &self,
        account: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<AuditEntry>> {
        let (at, id) = match cursor.map(cursor::decode_audit).transpose()? {
            Some((at, id)) => (Some(at), Some(id)),
            None => (None, None),
        };
        let account = account.to_owned();
        let limit = page_limit(limit);
        self.with(move |c| {
            let entries = all(
                c,
                "SELECT record FROM audit WHERE account = ?1
                   AND (?2 IS NULL OR at < ?2 OR (at = ?2 AND id < ?3))
                 ORDER BY at DESC, id DESC LIMIT ?4",
                params![account, at, id, (limit + 1) as i64],
            )?;
            Ok(page(entries, limit, |e: &AuditEntry| {
                cursor::encode(&[&micros(e.at).to_string(), &e.id])
            }))
        })
        .await
    }
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
