//! The console's sessions: what the browser holds after signing in with an admin key, instead of
//! the key. Pure: the http crate sets and reads the cookie, the service judges the key.
//!
//! - A **session** names the key that signed in (account and id), when, and which of its
//!   secrets was current (its `start` and `last4`): regenerating the key ends its sessions.
//! - The cookie is the session sealed with HMAC-SHA256 under a key derived from the pepper, so
//!   every instance of a deployment (each issuer Lambda) reads it without shared storage. It
//!   is not encrypted: it holds only ids, which the console shows anyway. It is never the key.
//! - A session lasts [`SESSION_TTL_SECS`], and every request still reads the key from the store
//!   and judges it as an admin call: a revoked or deactivated key's session stops at once.
//! - **CSRF**: every form carries a token that is an HMAC of the session cookie, compared in
//!   constant time; the sign-in form's token is an HMAC of a nonce held in its own cookie.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::hash::{Pepper, decode_hex, encode_hex};

/// How long a console session lasts, in seconds.
pub const SESSION_TTL_SECS: i64 = 3600;

/// The pepper-derived key's label.
const LABEL: &str = "console session v1";

/// Who signed in, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub account: String,
    pub key_id: String,
    pub issued_at: DateTime<Utc>,
    /// The signed-in key's `start` and `last4` then: a new secret ends the session.
    pub fingerprint: String,
}

impl Session {
    /// The fingerprint of a key's current secret.
    pub fn fingerprint_of(start: &str, last4: &str) -> String {
        format!("{start}…{last4}")
    }
}

/// Seals and opens sessions, and makes and checks CSRF tokens. `Debug` hides the key.
#[derive(Clone)]
pub struct Sessions {
    key: [u8; 32],
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sessions(..)")
    }
}

impl Sessions {
    pub fn new(pepper: &Pepper) -> Self {
        Self {
            key: pepper.derive(LABEL),
        }
    }

    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        // A 32-byte key always makes an HMAC.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            return [0; 32];
        };
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// The cookie value for `session`: its fields and their MAC, in hex.
    pub fn seal(&self, session: &Session) -> String {
        let payload = format!(
            "{}\n{}\n{}\n{}",
            session.account,
            session.key_id,
            session.issued_at.timestamp(),
            session.fingerprint
        );
        let mac = self.mac(&[b"session", payload.as_bytes()]);
        format!("{}.{}", encode_hex(payload.as_bytes()), encode_hex(&mac))
    }

    /// The session a cookie holds, if it is ours, intact and not expired at `now`.
    pub fn open(&self, cookie: &str, now: DateTime<Utc>) -> Option<Session> {
        let (payload_hex, mac_hex) = cookie.split_once('.')?;
        let payload = decode_hex(payload_hex)?;
        let given = decode_hex(mac_hex)?;
        let expected = self.mac(&[b"session", &payload]);
        if !bool::from(given.as_slice().ct_eq(&expected)) {
            return None;
        }
        let text = String::from_utf8(payload).ok()?;
        let mut fields = text.splitn(4, '\n');
        let account = fields.next()?.to_owned();
        let key_id = fields.next()?.to_owned();
        let issued: i64 = fields.next()?.parse().ok()?;
        let fingerprint = fields.next()?.to_owned();
        let issued_at = DateTime::from_timestamp(issued, 0)?;
        let age = now.signed_duration_since(issued_at).num_seconds();
        (0..SESSION_TTL_SECS).contains(&age).then_some(Session {
            account,
            key_id,
            issued_at,
            fingerprint,
        })
    }

    /// The CSRF token of the forms of the session whose cookie is `cookie`.
    pub fn csrf(&self, cookie: &str) -> String {
        encode_hex(&self.mac(&[b"csrf", cookie.as_bytes()]))
    }

    /// Whether `token` is the CSRF token of `cookie`, compared in constant time.
    pub fn csrf_ok(&self, cookie: &str, token: &str) -> bool {
        bool::from(self.csrf(cookie).as_bytes().ct_eq(token.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::Duration;

    use super::*;

    fn sessions() -> Sessions {
        Sessions::new(&Pepper::from_bytes(vec![7; 32]).unwrap())
    }

    fn session(now: DateTime<Utc>) -> Session {
        Session {
            account: "acc".into(),
            key_id: "key_1".into(),
            issued_at: DateTime::from_timestamp(now.timestamp(), 0).unwrap(),
            fingerprint: Session::fingerprint_of("kw_live_ab12", "wxyz"),
        }
    }

    #[test]
    fn a_sealed_session_opens_until_it_expires() {
        let now = Utc::now();
        let s = sessions();
        let cookie = s.seal(&session(now));
        assert_eq!(s.open(&cookie, now), Some(session(now)));
        assert!(
            s.open(&cookie, now + Duration::seconds(SESSION_TTL_SECS - 1))
                .is_some()
        );
        assert!(
            s.open(&cookie, now + Duration::seconds(SESSION_TTL_SECS))
                .is_none()
        );
        // Issued in the future: refused.
        assert!(s.open(&cookie, now - Duration::seconds(5)).is_none());
    }

    #[test]
    fn a_changed_cookie_or_another_deployments_is_refused() {
        let now = Utc::now();
        let s = sessions();
        let cookie = s.seal(&session(now));
        let mut forged = session(now);
        forged.key_id = "key_2".into();
        let (_, mac) = cookie.split_once('.').unwrap();
        let (payload, _) = s
            .seal(&forged)
            .split_once('.')
            .map(|(p, m)| (p.to_owned(), m.to_owned()))
            .unwrap();
        assert!(s.open(&format!("{payload}.{mac}"), now).is_none());
        let other = Sessions::new(&Pepper::from_bytes(vec![8; 32]).unwrap());
        assert!(other.open(&cookie, now).is_none());
        for junk in ["", ".", "zz.zz", "abc", &cookie[1..]] {
            assert!(s.open(junk, now).is_none(), "{junk}");
        }
    }

    #[test]
    fn csrf_tokens_belong_to_their_session() {
        let now = Utc::now();
        let s = sessions();
        let cookie = s.seal(&session(now));
        let token = s.csrf(&cookie);
        assert!(s.csrf_ok(&cookie, &token));
        assert!(!s.csrf_ok(&cookie, ""));
        let mut later = session(now);
        later.issued_at += Duration::seconds(1);
        assert!(!s.csrf_ok(&s.seal(&later), &token));
    }
}
