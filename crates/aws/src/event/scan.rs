//! A strict JSON reader for the authorizer's hot path: it walks the event's bytes once, hands
//! the caller each object's keys, reads the values it asks for and skips the rest, checking
//! all of it against RFC 8259 as it goes.
//!
//! Why not serde_json: reading a key through serde's visitors costs about 20 ns where skipping
//! one costs 5, and an event has about a hundred of them (docs/performance.md). Here the whole
//! input is checked as UTF-8 once up front (std's word-at-a-time check), so every string is
//! a slice of it, borrowed unless it holds an escape.
//!
//! What it refuses: anything that is not one JSON value (with only whitespace around it);
//! bytes that are not UTF-8; control characters, bad escapes and lone surrogates in strings;
//! numbers outside the grammar; nesting deeper than 127. A number is checked against the
//! grammar only: one too large for an `f64` (`1e400`), which serde_json refuses when it reads
//! one, is skipped like any other. The `authorizer_event` fuzz target
//! checks that whatever it accepts serde_json accepts too, and that it reads what serde_json
//! reads (docs/fuzzing.md).

use std::borrow::Cow;

/// How deep arrays and objects may nest (as with serde_json, which refuses a 128th level).
const MAX_DEPTH: u32 = 127;

/// Why the bytes are not the JSON the reader expected, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanError {
    pub what: Cow<'static, str>,
    pub at: usize,
}

impl std::fmt::Display for ScanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.what, self.at)
    }
}

pub type Scanned<T> = Result<T, ScanError>;

/// A position in a JSON text.
#[derive(Debug)]
pub struct Scan<'a> {
    text: &'a str,
    at: usize,
    depth: u32,
}

impl<'a> Scan<'a> {
    /// A reader at the start of `bytes`, which must be UTF-8.
    pub fn new(bytes: &'a [u8]) -> Scanned<Self> {
        let text = std::str::from_utf8(bytes).map_err(|e| ScanError {
            what: "invalid UTF-8".into(),
            at: e.valid_up_to(),
        })?;
        Ok(Self {
            text,
            at: 0,
            depth: 0,
        })
    }

    /// A refusal at the current position.
    pub fn error<T>(&self, what: impl Into<Cow<'static, str>>) -> Scanned<T> {
        Err(ScanError {
            what: what.into(),
            at: self.at,
        })
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    /// Skips whitespace; answers the byte after it without consuming it.
    pub fn peek(&mut self) -> Option<u8> {
        let bytes = self.bytes();
        while let Some(&b) = bytes.get(self.at) {
            if !matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                return Some(b);
            }
            self.at += 1;
        }
        None
    }

    fn expect(&mut self, byte: u8, what: &'static str) -> Scanned<()> {
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            self.error(what)
        }
    }

    /// Only whitespace is left.
    pub fn end(&mut self) -> Scanned<()> {
        match self.peek() {
            None => Ok(()),
            Some(_) => self.error("trailing characters"),
        }
    }

    /// Reads `null` if it comes next; answers whether it did.
    pub fn null(&mut self) -> Scanned<bool> {
        if self.peek() != Some(b'n') {
            return Ok(false);
        }
        self.literal("null")?;
        Ok(true)
    }

    /// Reads a string, or `null` (none).
    pub fn string_or_null(&mut self) -> Scanned<Option<Cow<'a, str>>> {
        match self.peek() {
            Some(b'"') => self.string_here().map(Some),
            Some(b'n') => self.literal("null").map(|()| None),
            _ => self.error("expected a string or null"),
        }
    }

    fn literal(&mut self, word: &'static str) -> Scanned<()> {
        if self.text[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(())
        } else {
            self.error("expected a JSON value")
        }
    }

    fn enter(&mut self) -> Scanned<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.error("nested too deeply");
        }
        Ok(())
    }

    /// Reads an object, calling `each` with every key; `each` must read or skip its value.
    pub fn object(
        &mut self,
        mut each: impl FnMut(&mut Self, Cow<'a, str>) -> Scanned<()>,
    ) -> Scanned<()> {
        self.expect(b'{', "expected an object")?;
        self.enter()?;
        if self.peek() == Some(b'}') {
            self.at += 1;
        } else {
            loop {
                if self.peek() != Some(b'"') {
                    return self.error("expected a key");
                }
                let key = self.string_here()?;
                self.expect(b':', "expected `:`")?;
                each(self, key)?;
                if !self.another(b'}', "expected `,` or `}`")? {
                    break;
                }
            }
        }
        self.depth -= 1;
        Ok(())
    }

    /// Reads an array, calling `each` for every element; `each` must read or skip it.
    pub fn array(&mut self, mut each: impl FnMut(&mut Self) -> Scanned<()>) -> Scanned<()> {
        self.expect(b'[', "expected an array")?;
        self.enter()?;
        if self.peek() == Some(b']') {
            self.at += 1;
        } else {
            loop {
                each(self)?;
                if !self.another(b']', "expected `,` or `]`")? {
                    break;
                }
            }
        }
        self.depth -= 1;
        Ok(())
    }

    /// After an element: a `,` (another follows) or the bracket that `close`s (none does).
    fn another(&mut self, close: u8, what: &'static str) -> Scanned<bool> {
        match self.peek() {
            Some(b',') => {
                self.at += 1;
                Ok(true)
            }
            Some(b) if b == close => {
                self.at += 1;
                Ok(false)
            }
            _ => self.error(what),
        }
    }

    /// Reads a string: borrowed from the input when it holds no escape.
    pub fn string(&mut self) -> Scanned<Cow<'a, str>> {
        if self.peek() != Some(b'"') {
            return self.error("expected a string");
        }
        self.string_here()
    }

    /// Reads the string whose opening quote is at the current position (already peeked).
    fn string_here(&mut self) -> Scanned<Cow<'a, str>> {
        self.at += 1;
        let start = self.at;
        self.at = plain_run_end(self.bytes(), self.at);
        match self.bytes().get(self.at) {
            Some(b'"') => {
                let s = &self.text[start..self.at];
                self.at += 1;
                Ok(Cow::Borrowed(s))
            }
            Some(b'\\') => self.unescape(start).map(Cow::Owned),
            Some(_) => self.error("control character in a string"),
            None => self.error("unterminated string"),
        }
    }

    /// The rest of a string that holds an escape at `self.at`, from `start`, unescaped.
    fn unescape(&mut self, start: usize) -> Scanned<String> {
        let mut out = String::with_capacity(self.at - start + 8);
        let mut run = start;
        let bytes = self.bytes();
        loop {
            self.at = plain_run_end(bytes, self.at);
            match bytes.get(self.at) {
                Some(b'"') => {
                    out.push_str(&self.text[run..self.at]);
                    self.at += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    out.push_str(&self.text[run..self.at]);
                    self.at += 1;
                    let simple = match bytes.get(self.at) {
                        Some(b'"') => Some('"'),
                        Some(b'\\') => Some('\\'),
                        Some(b'/') => Some('/'),
                        Some(b'b') => Some('\u{8}'),
                        Some(b'f') => Some('\u{c}'),
                        Some(b'n') => Some('\n'),
                        Some(b'r') => Some('\r'),
                        Some(b't') => Some('\t'),
                        Some(b'u') => None,
                        _ => return self.error("invalid escape"),
                    };
                    self.at += 1;
                    // `\u`'s reader moves past its digits (and a low surrogate's escape).
                    let c = match simple {
                        Some(c) => c,
                        None => self.unicode_escape()?,
                    };
                    out.push(c);
                    run = self.at;
                }
                Some(_) => return self.error("control character in a string"),
                None => return self.error("unterminated string"),
            }
        }
    }

    /// The character of a `\u` escape whose four hex digits start at `self.at` (and of the low
    /// surrogate's escape after it, for a high one); leaves `self.at` after them.
    fn unicode_escape(&mut self) -> Scanned<char> {
        let high = self.hex4()?;
        let code = match high {
            0xD800..=0xDBFF => {
                if !self.text[self.at..].starts_with("\\u") {
                    return self.error("lone leading surrogate in hex escape");
                }
                self.at += 2;
                let low = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return self.error("lone leading surrogate in hex escape");
                }
                0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
            }
            0xDC00..=0xDFFF => return self.error("lone trailing surrogate in hex escape"),
            _ => high,
        };
        // Never refused: surrogates are handled above, and a pair makes at most U+10FFFF.
        char::from_u32(code).map_or_else(|| self.error("invalid escape"), Ok)
    }

    fn hex4(&mut self) -> Scanned<u32> {
        let digits = self.bytes().get(self.at..self.at + 4);
        let value = digits.and_then(|d| {
            d.iter()
                .try_fold(0, |n, &b| Some(n * 16 + char::from(b).to_digit(16)?))
        });
        match value {
            Some(v) => {
                self.at += 4;
                Ok(v)
            }
            None => self.error("invalid escape"),
        }
    }

    /// Skips one value of any kind, checking it.
    pub fn skip(&mut self) -> Scanned<()> {
        match self.peek() {
            Some(b'"') => self.string_here().map(drop),
            Some(b'{') => self.object(|s, _| s.skip()),
            Some(b'[') => self.array(Self::skip),
            Some(b't') => self.literal("true"),
            Some(b'f') => self.literal("false"),
            Some(b'n') => self.literal("null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => self.error("expected a JSON value"),
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Scanned<()> {
        let bytes = self.bytes();
        let digits = |at: &mut usize| {
            let from = *at;
            while bytes.get(*at).is_some_and(u8::is_ascii_digit) {
                *at += 1;
            }
            *at > from
        };
        let mut at = self.at;
        if bytes.get(at) == Some(&b'-') {
            at += 1;
        }
        match bytes.get(at) {
            Some(b'0') => at += 1,
            Some(b'1'..=b'9') => {
                digits(&mut at);
            }
            _ => {
                self.at = at;
                return self.error("invalid number");
            }
        }
        if bytes.get(at) == Some(&b'.') {
            at += 1;
            if !digits(&mut at) {
                self.at = at;
                return self.error("invalid number");
            }
        }
        if matches!(bytes.get(at), Some(b'e' | b'E')) {
            at += 1;
            if matches!(bytes.get(at), Some(b'+' | b'-')) {
                at += 1;
            }
            if !digits(&mut at) {
                self.at = at;
                return self.error("invalid number");
            }
        }
        self.at = at;
        Ok(())
    }
}

/// Where the run of plain string bytes from `at` ends: at the first `"`, `\\` or control
/// character, or at the end. Eight bytes at a time: each test below sets the high bit of every
/// byte that matches and, through the borrow, maybe of bytes after it, never before, so the
/// lowest bit set is the first match.
fn plain_run_end(bytes: &[u8], mut at: usize) -> usize {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    let zero_in = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    while let Some(chunk) = bytes.get(at..).and_then(<[u8]>::first_chunk::<8>) {
        let x = u64::from_le_bytes(*chunk);
        let hits = zero_in(x ^ (ONES * u64::from(b'"')))
            | zero_in(x ^ (ONES * u64::from(b'\\')))
            | (x.wrapping_sub(ONES * 0x20) & !x & HIGH);
        if hits != 0 {
            return at + (hits.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    while bytes
        .get(at)
        .is_some_and(|&b| b != b'"' && b != b'\\' && b >= 0x20)
    {
        at += 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One whole value, skipped.
    fn skips(text: &[u8]) -> bool {
        Scan::new(text)
            .and_then(|mut s| {
                s.skip()?;
                s.end()
            })
            .is_ok()
    }

    #[test]
    fn accepts_and_refuses_what_serde_json_does() {
        let nested = |d: usize| format!("{}{}", "[".repeat(d), "]".repeat(d));
        let cases: Vec<String> = [
            "{}",
            "[]",
            " [1, -0, 0.5, -1.25e+3, 2E-2, 10] ",
            r#"{"a": {"b": [true, false, null]}}"#,
            r#""\" \\ \/ \b \f \n \r \t \u00e9 \ud83d\ude00""#,
            r#""é ☃ 😀""#,
            "",
            "01",
            "1.",
            ".5",
            "-",
            "1e",
            "+1",
            "--1",
            "0x1",
            "tru",
            "nul",
            "[1,]",
            "[,1]",
            "{,}",
            r#"{"a" 1}"#,
            r#"{"a": 1,}"#,
            r#"{1: 2}"#,
            "[1 2]",
            "1 2",
            r#""\x""#,
            r#""\u12""#,
            r#""\ud83d""#,
            r#""\ude00""#,
            r#""\ud83d\u0041""#,
            "\"a\u{1}\"",
            "\"open",
            "[",
            "{\"a\":",
            "\u{feff}1",
            "NaN",
            "[1]x",
        ]
        .into_iter()
        .map(str::to_owned)
        .chain([nested(127), nested(128), nested(129)])
        .collect();
        for case in &cases {
            let serde = serde_json::from_slice::<serde_json::Value>(case.as_bytes()).is_ok();
            assert_eq!(skips(case.as_bytes()), serde, "{case:?}");
        }
        assert!(!skips(b"\"\xff\""), "not UTF-8");
    }

    #[test]
    fn strings_are_borrowed_unless_escaped_and_read_as_serde_json_reads_them() {
        for (json, want) in [
            (r#""plain""#, "plain"),
            (r#""a\"b\\c\/d""#, "a\"b\\c/d"),
            (r#""\u0041\u00e9\ud83d\ude00 x""#, "Aé😀 x"),
            (r#""tail\n""#, "tail\n"),
        ] {
            let mut s = Scan::new(json.as_bytes()).unwrap();
            let got = s.string().unwrap();
            assert_eq!(got, want);
            assert_eq!(
                matches!(got, Cow::Borrowed(_)),
                !json.contains('\\'),
                "{json}"
            );
            assert_eq!(
                serde_json::from_str::<String>(json).unwrap(),
                want,
                "{json}"
            );
        }
    }

    #[test]
    fn a_plain_run_ends_at_the_first_quote_backslash_or_control_character() {
        let naive = |b: &[u8], at: usize| {
            (at..b.len())
                .find(|&i| b[i] == b'"' || b[i] == b'\\' || b[i] < 0x20)
                .unwrap_or(b.len())
        };
        let mut text: Vec<u8> = "aé☃😀~\x7f ".repeat(3).into_bytes();
        for stop in [b'"', b'\\', 0, 0x1f, b'\n'] {
            for place in 0..text.len() {
                let saved = text[place];
                text[place] = stop;
                for at in 0..text.len() {
                    assert_eq!(
                        plain_run_end(&text, at),
                        naive(&text, at),
                        "{stop} at {place}"
                    );
                }
                text[place] = saved;
            }
        }
        assert_eq!(plain_run_end(b"abcdefghijk", 0), 11);
    }

    #[test]
    fn errors_say_what_and_where() {
        let mut s = Scan::new(br#"{"a": tru}"#).unwrap();
        let e = s.skip().unwrap_err();
        assert_eq!(e.to_string(), "expected a JSON value at byte 6");
        let e = Scan::new(b"{}\xc3").unwrap_err();
        assert_eq!(e.to_string(), "invalid UTF-8 at byte 2");
    }
}
