//! Opaque paging cursors, the same format in every adapter: the parts that locate the last
//! item of a page, hex-encoded so a cursor is URL-safe and obviously not meant to be edited.
//!
//! There is one pair of functions per kind of cursor, so an adapter never counts parts itself:
//! [`encode_one`]/[`decode_one`] for listings ordered by one unique field (groups by id),
//! [`encode_key`]/[`decode_key`] for keys (name, then id), [`encode_audit`]/[`decode_audit`]
//! for the audit log (time, then id).

use crate::error::{StoreError, StoreResult};

const SEPARATOR: char = '\u{1f}';

fn encode(parts: &[&str]) -> String {
    let joined = parts.join(&SEPARATOR.to_string());
    let mut out = String::with_capacity(joined.len() * 2);
    for b in joined.bytes() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Decodes a cursor of exactly `parts` parts; anything else is `InvalidCursor`.
fn decode(cursor: &str, parts: usize) -> StoreResult<Vec<String>> {
    if cursor.is_empty() || !cursor.len().is_multiple_of(2) || cursor.len() > 4096 {
        return Err(StoreError::InvalidCursor);
    }
    let bytes = (0..cursor.len())
        .step_by(2)
        .map(|i| {
            cursor
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or(StoreError::InvalidCursor)?;
    let text = String::from_utf8(bytes).map_err(|_| StoreError::InvalidCursor)?;
    let out: Vec<String> = text.split(SEPARATOR).map(str::to_owned).collect();
    if out.len() == parts && out.iter().all(|p| !p.is_empty()) {
        Ok(out)
    } else {
        Err(StoreError::InvalidCursor)
    }
}

/// A cursor of one part: the sort field of a page's last item.
pub fn encode_one(last: &str) -> String {
    encode(&[last])
}

/// The one part of a cursor from [`encode_one`]; anything else is `InvalidCursor`.
pub fn decode_one(cursor: &str) -> StoreResult<String> {
    decode(cursor, 1)?.pop().ok_or(StoreError::InvalidCursor)
}

/// The cursor after a key in a listing ordered by name: its name, then its id (names are not
/// unique among revoked keys, so the id places the page boundary exactly).
pub fn encode_key(name: &str, id: &str) -> String {
    encode(&[name, id])
}

/// A key listing's cursor: the last key's name, and its id (absent in a cursor written before
/// ids were part of it: the page then resumes after every key of that name).
pub fn decode_key(cursor: &str) -> StoreResult<(String, Option<String>)> {
    if let Ok(mut parts) = decode(cursor, 2) {
        let id = parts.pop();
        return Ok((parts.pop().unwrap_or_default(), id));
    }
    Ok((decode_one(cursor)?, None))
}

/// The cursor after an audit entry: its time in microseconds, then its id (the log's order).
pub fn encode_audit(at_micros: i64, id: &str) -> String {
    encode(&[&at_micros.to_string(), id])
}

/// An audit cursor: the entry's time in microseconds and its id.
pub fn decode_audit(cursor: &str) -> StoreResult<(i64, String)> {
    let mut parts = decode(cursor, 2)?;
    let id = parts.pop().unwrap_or_default();
    let at = parts[0].parse().map_err(|_| StoreError::InvalidCursor)?;
    Ok((at, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_cursors_carry_the_id_and_read_old_ones() {
        let c = encode_key("deploy", "key_a");
        assert_eq!(
            decode_key(&c).unwrap(),
            ("deploy".into(), Some("key_a".into()))
        );
        assert_eq!(
            decode_key(&encode_one("deploy")).unwrap(),
            ("deploy".into(), None)
        );
        assert!(decode_key("zz").is_err());
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = encode(&["ab", "c\u{e9}"]);
        assert_eq!(decode(&c, 2).unwrap(), ["ab", "c\u{e9}"]);
        assert_eq!(
            decode_audit(&encode(&["12", "aud_x"])).unwrap(),
            (12, "aud_x".into())
        );
        for bad in ["zz", "abc", "", "6162", &encode(&["", "x"])] {
            assert!(decode(bad, 2).is_err(), "{bad}");
        }
        assert!(decode_audit(&encode(&["soon", "aud_x"])).is_err());
    }

    #[test]
    fn each_kind_reads_back_what_it_wrote_and_nothing_else() {
        assert_eq!(decode_one(&encode_one("b\u{e9}ta")).unwrap(), "b\u{e9}ta");
        assert_eq!(
            decode_audit(&encode_audit(1_700_000_000_000_000, "aud_x")).unwrap(),
            (1_700_000_000_000_000, "aud_x".into())
        );
        assert!(decode_one(&encode_audit(12, "aud_x")).is_err());
        assert!(decode_audit(&encode_one("aud_x")).is_err());
        assert!(decode_one("").is_err());
    }
}
