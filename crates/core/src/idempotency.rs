//! `Idempotency-Key` on create: a retried request returns the first result instead of making
//! a second key.
//!
//! The record remembers which key the first request made and a fingerprint of its body, never
//! the secret: a replay answers the same key record with `"secret": null` and a warning (the
//! secret was shown once, in the first response). The same key with a different body is
//! refused, so a client bug cannot silently return an unrelated key.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How long a record is honoured.
pub const IDEMPOTENCY_WINDOW_HOURS: i64 = 24;
/// Longest accepted `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub account: String,
    /// The client's `Idempotency-Key`.
    pub key: String,
    /// SHA-256 of the request body, hex.
    pub fingerprint: String,
    /// The key the first request created.
    pub key_id: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl IdempotencyRecord {
    pub fn new(account: &str, key: &str, body: &[u8], key_id: &str, now: DateTime<Utc>) -> Self {
        Self {
            account: account.to_owned(),
            key: key.to_owned(),
            fingerprint: fingerprint(body),
            key_id: key_id.to_owned(),
            created_at: now,
            expires_at: now + Duration::hours(IDEMPOTENCY_WINDOW_HOURS),
        }
    }

    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.expires_at > now
    }
}

pub fn fingerprint(body: &[u8]) -> String {
    Sha256::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// [`valid_idempotency_key`] as a pattern.
pub fn idempotency_key_pattern() -> String {
    format!(r"^[\x21-\x7e]{{1,{MAX_IDEMPOTENCY_KEY_LEN}}}$")
}

/// A usable `Idempotency-Key`: 1 to [`MAX_IDEMPOTENCY_KEY_LEN`] visible ASCII characters.
pub fn valid_idempotency_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_IDEMPOTENCY_KEY_LEN
        && key.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_expire_and_fingerprint_the_body() {
        let now = Utc::now();
        let r = IdempotencyRecord::new("acc", "retry-1", b"{}", "key_1", now);
        assert!(r.is_live(now) && !r.is_live(now + Duration::hours(25)));
        assert_eq!(r.fingerprint, fingerprint(b"{}"));
        assert_ne!(fingerprint(b"{}"), fingerprint(b"{ }"));
        assert!(valid_idempotency_key("a-b_c.1"));
        assert!(
            !valid_idempotency_key("")
                && !valid_idempotency_key("a b")
                && !valid_idempotency_key(&"x".repeat(256))
        );
    }

    proptest::proptest! {
        #[test]
        fn the_pattern_states_the_rule(s in "[ -~\u{7f}\u{e9}]{0,3}|[!-~]{250,260}") {
            let pattern = crate::pattern::tests::compile(&idempotency_key_pattern());
            proptest::prop_assert_eq!(pattern.is_match(&s), valid_idempotency_key(&s), "{:?}", s);
        }
    }
}
