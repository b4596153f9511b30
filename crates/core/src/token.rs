//! The token format, a public contract: `<prefix>_<random><checksum>`.
//!
//! - prefix: lowercase letters and digits with at most one inner `_` (default `kw_live`);
//! - random: 32 base62 characters drawn uniformly from the OS CSPRNG (~190 bits);
//! - checksum: CRC-32 (ISO-HDLC) of the ASCII bytes of `<prefix>_<random>`, written as 6 base62
//!   digits, most significant first, left-padded with `0`.
//!
//! Parsing checks shape and checksum only, so a typo or a hostile string is rejected before any
//! store is touched. The checksum is not a secret and needs no constant-time comparison.

use std::fmt;

use thiserror::Error;

/// `0-9A-Za-z`, in that order.
pub const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Characters of randomness after the prefix.
pub const RANDOM_LEN: usize = 32;
/// Characters of checksum after the randomness.
pub const CHECKSUM_LEN: usize = 6;
/// Longest accepted prefix, so a token always fits a header and a log-free error.
pub const MAX_PREFIX_LEN: usize = 24;
/// Longest string [`Token::parse`] will look at.
pub const MAX_TOKEN_LEN: usize = MAX_PREFIX_LEN + 1 + RANDOM_LEN + CHECKSUM_LEN;
/// The regex secret scanners use for the default prefixes.
pub const SCANNER_REGEX: &str = r"\bkw_(live|test)_[0-9A-Za-z]{38}\b";

/// The shape [`Token::parse`] checks before the checksum, as a pattern (with [`MAX_TOKEN_LEN`]
/// as a separate length rule): the prefix, `_`, and the random and checksum characters.
pub fn token_pattern() -> String {
    format!(
        "^[a-z0-9]+(?:_[a-z0-9]+)?_[0-9A-Za-z]{{{}}}$",
        RANDOM_LEN + CHECKSUM_LEN
    )
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TokenError {
    #[error(
        "a token prefix is 1 to {MAX_PREFIX_LEN} lowercase letters or digits with at most one inner '_'"
    )]
    BadPrefix,
    #[error("the token is not of the form <prefix>_<38 base62 characters>")]
    BadShape,
    #[error("the token's checksum does not match")]
    BadChecksum,
    #[error("the token belongs to another deployment (prefix differs)")]
    WrongPrefix,
    #[error("the operating system's random source failed")]
    Entropy,
}

/// A validated token prefix such as `kw_live`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Prefix(String);

impl Prefix {
    pub fn parse(s: &str) -> Result<Self, TokenError> {
        let bytes = s.as_bytes();
        let ok_len = !bytes.is_empty() && bytes.len() <= MAX_PREFIX_LEN;
        let ok_chars = bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_');
        let underscores = bytes.iter().filter(|b| **b == b'_').count();
        let inner = bytes.first() != Some(&b'_') && bytes.last() != Some(&b'_');
        if ok_len && ok_chars && underscores <= 1 && inner {
            Ok(Self(s.to_owned()))
        } else {
            Err(TokenError::BadPrefix)
        }
    }

    pub fn live() -> Self {
        Self("kw_live".to_owned())
    }

    pub fn test() -> Self {
        Self("kw_test".to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Prefix {
    fn default() -> Self {
        Self::live()
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A full secret token. Its `Debug` shows only the display prefix, so it cannot leak through a
/// log line or an error by accident; [`Token::expose`] is the one explicit way to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    value: String,
    prefix_len: usize,
}

impl Token {
    /// A fresh token with 32 uniformly drawn base62 characters from the OS CSPRNG.
    pub fn generate(prefix: &Prefix) -> Result<Self, TokenError> {
        let random = random_base62(RANDOM_LEN)?;
        Ok(Self::assemble(prefix, &random))
    }

    fn assemble(prefix: &Prefix, random: &str) -> Self {
        let mut value = String::with_capacity(prefix.0.len() + 1 + RANDOM_LEN + CHECKSUM_LEN);
        value.push_str(&prefix.0);
        value.push('_');
        value.push_str(random);
        let sum = checksum(value.as_bytes());
        value.push_str(&sum);
        Self {
            value,
            prefix_len: prefix.0.len(),
        }
    }

    /// Checks shape and checksum. No I/O; safe on hostile input of any length.
    pub fn parse(s: &str) -> Result<Self, TokenError> {
        let body_len = 1 + RANDOM_LEN + CHECKSUM_LEN;
        if s.len() > MAX_TOKEN_LEN || s.len() <= body_len || !s.is_ascii() {
            return Err(TokenError::BadShape);
        }
        let prefix_len = s.len() - body_len;
        let (prefix, rest) = s.split_at(prefix_len);
        Prefix::parse(prefix).map_err(|_| TokenError::BadShape)?;
        let rest = rest.as_bytes();
        if rest[0] != b'_' || !rest[1..].iter().all(u8::is_ascii_alphanumeric) {
            return Err(TokenError::BadShape);
        }
        let (signed, sum) = s.split_at(s.len() - CHECKSUM_LEN);
        if checksum(signed.as_bytes()) != sum {
            return Err(TokenError::BadChecksum);
        }
        Ok(Self {
            value: s.to_owned(),
            prefix_len,
        })
    }

    /// Parses and also requires the deployment's prefix.
    pub fn parse_for(s: &str, prefix: &Prefix) -> Result<Self, TokenError> {
        let token = Self::parse(s)?;
        if token.prefix() == prefix.as_str() {
            Ok(token)
        } else {
            Err(TokenError::WrongPrefix)
        }
    }

    pub fn prefix(&self) -> &str {
        &self.value[..self.prefix_len]
    }

    /// The secret itself. Call only to hash it or to hand it to its owner once.
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// Prefix plus the first 4 random characters, kept for display.
    pub fn start(&self) -> String {
        self.value[..self.prefix_len + 1 + 4].to_owned()
    }

    /// The last 4 characters, kept for display.
    pub fn last4(&self) -> String {
        self.value[self.value.len() - 4..].to_owned()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({}…)", self.start())
    }
}

/// CRC-32 of `signed` as 6 base62 digits, most significant first.
pub fn checksum(signed: &[u8]) -> String {
    let mut n = u64::from(crc32fast::hash(signed));
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out.iter().map(|b| char::from(*b)).collect()
}

/// `len` base62 characters drawn without modulo bias: bytes of 248 or more (248 = 4 x 62) are
/// rejected, so each of the 62 characters is equally likely.
pub fn random_base62(len: usize) -> Result<String, TokenError> {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        getrandom::fill(&mut buf).map_err(|_| TokenError::Entropy)?;
        for b in buf {
            if b < 248 && out.len() < len {
                out.push(char::from(BASE62[usize::from(b % 62)]));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_their_pattern() {
        let pattern = crate::pattern::tests::compile(&token_pattern());
        for prefix in [
            Prefix::live(),
            Prefix::parse("a").unwrap(),
            Prefix::parse("x_9").unwrap(),
        ] {
            let token = Token::generate(&prefix).unwrap();
            assert!(pattern.is_match(token.expose()));
        }
        for bad in [
            "kw_live_short",
            "_kw_live_0123456789012345678901234567890123456",
            "kw__x",
        ] {
            assert!(!pattern.is_match(bad), "{bad}");
        }
    }
    use proptest::prelude::*;

    fn live() -> Prefix {
        Prefix::live()
    }

    #[test]
    fn generated_tokens_have_the_documented_shape() {
        let t = Token::generate(&live()).unwrap();
        let s = t.expose();
        assert_eq!(s.len(), "kw_live_".len() + 38);
        assert!(s.starts_with("kw_live_"));
        assert!(
            s["kw_live_".len()..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric())
        );
        assert_eq!(Token::parse(s).unwrap(), t);
        assert_eq!(t.start().len(), "kw_live_".len() + 4);
        assert_eq!(t.last4(), &s[s.len() - 4..]);
    }

    #[test]
    fn checksum_is_crc32_in_base62_left_padded() {
        // crc32("") = 0 -> all zeros; crc32("a") = 0xe8b7be43 = 3904355907.
        assert_eq!(checksum(b""), "000000");
        let mut n: u64 = 3_904_355_907;
        let mut digits = Vec::new();
        while n > 0 {
            digits.push(BASE62[(n % 62) as usize]);
            n /= 62;
        }
        while digits.len() < 6 {
            digits.push(b'0');
        }
        digits.reverse();
        assert_eq!(checksum(b"a"), String::from_utf8(digits).unwrap());
    }

    #[test]
    fn known_tokens_match_an_independent_implementation() {
        // Computed with Python's zlib.crc32 and a hand-written base62 encoder.
        let t = Token::assemble(&live(), &"A".repeat(32));
        assert_eq!(t.expose(), "kw_live_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA3WLvOZ");
        let t = Token::assemble(&Prefix::test(), "0123456789abcdefghijABCDEFGHIJ01");
        assert_eq!(t.expose(), "kw_test_0123456789abcdefghijABCDEFGHIJ012Yif52");
        assert!(Token::parse("kw_test_0123456789abcdefghijABCDEFGHIJ012Yif52").is_ok());
    }

    #[test]
    fn rejects_bad_shapes() {
        let good = Token::generate(&live()).unwrap();
        let s = good.expose();
        for bad in [
            "",
            "kw_live_",
            "kw_live",
            &s[..s.len() - 1],
            &format!("{s}x"),
            &s.replace("kw_live_", "KW_LIVE_"),
            &s.replace("kw_live_", "kw_live-"),
            &s.replace("kw_live_", "kw_li_ve_"),
            &s.replace("kw_live_", "_kwlive_"),
            &format!("{}é{}", &s[..10], &s[12..]),
            &"x".repeat(10_000),
        ] {
            assert!(Token::parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn rejects_a_changed_character_by_checksum() {
        let t = Token::generate(&live()).unwrap();
        let mut bytes = t.expose().as_bytes().to_vec();
        let i = "kw_live_".len() + 5;
        bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
        let changed = String::from_utf8(bytes).unwrap();
        assert_eq!(Token::parse(&changed), Err(TokenError::BadChecksum));
    }

    #[test]
    fn parse_for_requires_the_deployment_prefix() {
        let t = Token::generate(&Prefix::test()).unwrap();
        assert_eq!(
            Token::parse_for(t.expose(), &live()),
            Err(TokenError::WrongPrefix)
        );
        assert!(Token::parse_for(t.expose(), &Prefix::test()).is_ok());
    }

    #[test]
    fn prefixes_follow_the_rules() {
        for ok in ["kw_live", "kw", "acme2", "a_b"] {
            assert!(Prefix::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Kw", "a_b_c", "_a", "a_", "a-b", &"a".repeat(25)] {
            assert!(Prefix::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let t = Token::generate(&live()).unwrap();
        let shown = format!("{t:?}");
        assert!(!shown.contains(&t.expose()[12..]));
    }

    #[test]
    fn random_characters_are_roughly_uniform() {
        let s = random_base62(62 * 2000).unwrap();
        let mut counts = [0u32; 62];
        for b in s.bytes() {
            counts[BASE62.iter().position(|c| *c == b).unwrap()] += 1;
        }
        // Expected 2000 each; 6 sigma is about 270.
        assert!(
            counts.iter().all(|c| (1730..=2270).contains(c)),
            "{counts:?}"
        );
    }

    proptest! {
        #[test]
        fn any_random_body_round_trips(random in "[0-9A-Za-z]{32}", prefix in "[a-z0-9]{1,10}(_[a-z0-9]{1,10})?") {
            let prefix = Prefix::parse(&prefix).unwrap();
            let t = Token::assemble(&prefix, &random);
            let parsed = Token::parse(t.expose()).unwrap();
            prop_assert_eq!(parsed.prefix(), prefix.as_str());
            prop_assert_eq!(&parsed, &t);
        }

        #[test]
        fn any_single_substitution_is_rejected(random in "[0-9A-Za-z]{32}", pos in 8usize..46, c in "[0-9A-Za-z]") {
            let t = Token::assemble(&Prefix::live(), &random);
            let mut bytes = t.expose().as_bytes().to_vec();
            let c = c.as_bytes()[0];
            prop_assume!(bytes[pos] != c);
            bytes[pos] = c;
            let changed = String::from_utf8(bytes).unwrap();
            // CRC-32 detects every single-byte error.
            prop_assert!(Token::parse(&changed).is_err());
        }

        #[test]
        fn arbitrary_strings_never_panic(s in "\\PC{0,80}") {
            let _ = Token::parse(&s);
        }
    }
}
