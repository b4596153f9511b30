//! Key records in the `keys` table (JSON beside the queried columns), idempotency records, and
//! the listing filter in SQL.

use async_trait::async_trait;
use chrono::Utc;
use keyward_core::audit::AuditEntry;
use keyward_core::hash::KeyHash;
use keyward_core::idempotency::IdempotencyRecord;
use keyward_core::key::{ApiKey, KeyMatch, KeyStatus};
use keyward_core::name::name_key;
use rusqlite::{ErrorCode, OptionalExtension, Transaction, params};

use super::audit::insert_audit;
use super::changes::record_change;
use super::{SqliteStore, all, backend, from_json, from_micros, micros, one, page, to_json};
use crate::cursor;
use crate::error::{StoreError, StoreResult};
use crate::port::{KeyQuery, KeyStore, Page, page_limit};

/// Maps a write's constraint failure to its domain meaning.
fn write_error(e: rusqlite::Error, key: &ApiKey) -> StoreError {
    if let rusqlite::Error::SqliteFailure(err, msg) = &e
        && err.code == ErrorCode::ConstraintViolation
    {
        let msg = msg.as_deref().unwrap_or_default();
        // The folded claim (`keys.account, keys.name_key`) or, for a key written before names
        // were folded, the raw one (`keys.account, keys.name`).
        if msg.contains("keys.name_key") || msg.contains("keys.name") {
            return StoreError::NameTaken(key.name.clone());
        }
        if msg.contains("keys.account, keys.id") {
            return StoreError::AlreadyExists;
        }
    }
    backend(e)
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

/// The previous hashes of a key (at most one).
fn previous_hashes_of(tx: &Transaction<'_>, account: &str, id: &str) -> StoreResult<Vec<Vec<u8>>> {
    let mut stmt = tx
        .prepare("SELECT hash FROM previous_hashes WHERE account = ?1 AND key_id = ?2")
        .map_err(backend)?;
    stmt.query_map(params![account, id], |r| r.get(0))
        .map_err(backend)?
        .collect::<Result<_, _>>()
        .map_err(backend)
}

/// Removes the key's previous secret, if it has one, and tells verifiers.
fn drop_previous_secrets(tx: &Transaction<'_>, account: &str, id: &str) -> StoreResult<()> {
    for hash in &previous_hashes_of(tx, account, id)? {
        record_change(tx, hash)?;
    }
    tx.execute(
        "DELETE FROM previous_hashes WHERE account = ?1 AND key_id = ?2",
        params![account, id],
    )
    .map_err(backend)?;
    Ok(())
}

/// After an update of `key`: on a regeneration (`regenerated`) the older previous secret goes
/// and, with a grace, the hash the key had (`old_hash`) becomes its previous one; otherwise a
/// previous secret stays while `key.previous_secret` does, and tells verifiers the key changed.
fn keep_previous_secret(
    tx: &Transaction<'_>,
    key: &ApiKey,
    regenerated: bool,
    old_hash: Option<&[u8]>,
) -> StoreResult<()> {
    let Some(previous) = &key.previous_secret else {
        return drop_previous_secrets(tx, &key.account, &key.id);
    };
    if !regenerated {
        // The grace goes on; cached copies under the previous hash must see the change.
        for hash in &previous_hashes_of(tx, &key.account, &key.id)? {
            record_change(tx, hash)?;
        }
        return Ok(());
    }
    drop_previous_secrets(tx, &key.account, &key.id)?;
    if let Some(old) = old_hash {
        tx.execute(
            "INSERT INTO previous_hashes (hash, account, key_id, until) VALUES (?1, ?2, ?3, ?4)",
            params![old, key.account, key.id, micros(previous.expires_at)],
        )
        .map_err(backend)?;
    }
    Ok(())
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
impl KeyStore for SqliteStore {
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
                "INSERT INTO keys (account, id, name, name_lc, hash, status, expires_at, version, record, name_key)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
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
                    name_key(&key.name),
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

    async fn find_key_by_hash(&self, hash: &KeyHash) -> StoreResult<Option<KeyMatch>> {
        let hash = *hash;
        self.with(move |c| {
            let current: Option<ApiKey> = one(
                c,
                "SELECT record FROM keys WHERE hash = ?1",
                params![hash.as_bytes().as_slice()],
            )?;
            if let Some(key) = current {
                return Ok(Some(KeyMatch::current(key)));
            }
            let previous: Option<(String, i64)> = c
                .query_row(
                    "SELECT k.record, p.until FROM previous_hashes p
                     JOIN keys k ON k.account = p.account AND k.id = p.key_id
                     WHERE p.hash = ?1",
                    params![hash.as_bytes().as_slice()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(backend)?;
            previous
                .map(|(record, until)| {
                    Ok(KeyMatch {
                        key: from_json(&record)?,
                        grace_until: Some(from_micros(until)?),
                    })
                })
                .transpose()
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
                    // A rename claims the folded new name; otherwise the claim stays as it is
                    // (NULL for a key that could not claim its folded name when the store was
                    // upgraded: it keeps its raw one). A revoke moves the row out of the
                    // partial name indexes: the name is free once this commits.
                    "UPDATE keys SET name = ?3, name_lc = ?4, status = ?5, expires_at = ?6,
                         version = ?7, hash = COALESCE(?9, hash),
                         name_key = CASE WHEN name = ?3 THEN name_key ELSE ?11 END,
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
                        name_key(&key.name),
                    ],
                )
                .map_err(|e| write_error(e, &key))?;
            if n == 0 {
                return Err(missing_or_conflict(&tx, &key.account, &key.id));
            }
            if let Some(old) = &old_hash {
                record_change(&tx, old)?;
            }
            if let Some(new) = &new_hash {
                // Verifiers may hold the new secret as unknown (it can be known before it is
                // installed: a Secrets Manager rotation's pending secret).
                record_change(&tx, new.as_bytes())?;
            }
            keep_previous_secret(&tx, &key, new_hash.is_some(), old_hash.as_deref())?;
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
            drop_previous_secrets(&tx, &account, &id)?;
            insert_audit(&tx, &audit)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn list_keys(&self, account: &str, query: &KeyQuery) -> StoreResult<Page<ApiKey>> {
        let (after, after_id) = match &query.cursor {
            Some(c) => {
                let (name, id) = cursor::decode_key(c)?;
                (Some(name), id)
            }
            None => (None, None),
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
                   AND (:after IS NULL OR name > :after
                        OR (name = :after AND :after_id IS NOT NULL AND id > :after_id))
                   AND (:q IS NULL OR instr(COALESCE(name_key, name_lc), :q) > 0)
                   AND (:ws IS NULL OR EXISTS (
                        SELECT 1 FROM json_each(keys.record, '$.workspaces') WHERE value = :ws))
                   AND (:grp IS NULL OR EXISTS (
                        SELECT 1 FROM json_each(keys.record, '$.groups') WHERE value = :grp))
                 ORDER BY name, id LIMIT :limit"
            );
            let mut named: Vec<(&str, &dyn rusqlite::ToSql)> = Vec::new();
            // Folded as names are (a key not yet folded, from an old store, by its lower case).
            let q = query.name_contains.as_deref().map(name_key);
            let fetch = (limit + 1) as i64;
            named.push((":account", &account));
            named.push((":after", &after));
            named.push((":after_id", &after_id));
            named.push((":q", &q));
            named.push((":ws", &query.workspace));
            named.push((":grp", &query.group));
            named.push((":limit", &fetch));
            if status_clause.contains(":now") {
                named.push((":now", &now));
            }
            let keys: Vec<ApiKey> = all(c, &sql, named.as_slice())?;
            let keys = keys.into_iter().map(|k| k.as_of(query.now)).collect();
            Ok(page(keys, limit, |k: &ApiKey| cursor::encode_key(&k.name, &k.id)))
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
}
