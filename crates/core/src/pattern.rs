//! The building blocks of the rules written as regular expressions, for the `pattern`s of the
//! OpenAPI document.
//!
//! Each rule's pattern lives beside its validator (`id::id_pattern`, `key::name_pattern`,
//! `permission::text_scope_pattern`, `cidr::cidr_pattern`, ...), is built from the same
//! constants, and has a test that the two agree. This module holds only what several of them
//! share.
//!
//! The patterns use the subset that JSON Schema's dialect (ECMA-262), Python's `re` (which
//! schemathesis and many client generators use) and Rust's regex all read alike: classes,
//! `\xNN` and `\uNNNN` escapes, bounded repetition, alternation, `^`/`$` anchors. Never `\s`,
//! `\d` or `\w` (their sets differ between engines) and no lookaround (Rust's regex has none).

/// What `str::trim` removes: the Unicode `White_Space` characters, as a class body.
pub const WHITESPACE: &str =
    r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// What `char::is_control` refuses: general category `Cc`, as a class body.
pub const CONTROL: &str = r"\x00-\x1f\x7f-\x9f";

/// A segment of 1 to `max` letters, digits, `_`, `-` or `.` that is not `.` or `..` (the rule
/// of ids and resource names), as an unanchored group. Without lookaround, "not `.` or `..`"
/// is spelled by what the segment starts with.
pub fn segment(max: usize) -> String {
    let any = "[A-Za-z0-9_.-]";
    let not_dot = "[A-Za-z0-9_-]";
    let rest = max.saturating_sub(1);
    let after_dot = max.saturating_sub(2);
    format!(
        r"(?:{not_dot}{any}{{0,{rest}}}|\.{not_dot}{any}{{0,{after_dot}}}|\.\.{any}{{1,{after_dot}}})"
    )
}

/// Text that is trimmed and then must be 1 to `max` characters with no control character:
/// any whitespace around, then a first and last character that are neither.
pub fn trimmed_text(max: usize) -> String {
    let (w, c) = (WHITESPACE, CONTROL);
    let inner = max.saturating_sub(2);
    format!("^[{w}]*[^{c}{w}](?:[^{c}]{{0,{inner}}}[^{c}{w}])?[{w}]*$")
}

/// `text` with ECMA-262's syntax characters escaped (only those: other escapes are errors
/// under the `u` flag some validators compile with).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        if "\\^$.|?*+()[]{}".contains(ch) {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `pattern` compiled by Rust's regex, for the agreement tests of each rule.
    pub(crate) fn compile(pattern: &str) -> regex_lite::Regex {
        regex_lite::Regex::new(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"))
    }

    #[test]
    fn the_classes_are_what_rust_trims_and_refuses() {
        let w = compile(&format!("^[{WHITESPACE}]$"));
        let c = compile(&format!("^[{CONTROL}]$"));
        for ch in (0..0x3100).filter_map(char::from_u32) {
            let s = ch.to_string();
            assert_eq!(w.is_match(&s), ch.is_whitespace(), "{:x}", ch as u32);
            assert_eq!(c.is_match(&s), ch.is_control(), "{:x}", ch as u32);
        }
    }

    #[test]
    fn segments_exclude_dot_and_dot_dot() {
        let r = compile(&format!("^{}$", segment(4)));
        for ok in ["a", "...", ".a", "a..", "..a", "abcd"] {
            assert!(r.is_match(ok), "{ok}");
        }
        for bad in ["", ".", "..", "abcde", "a/b", "a b"] {
            assert!(!r.is_match(bad), "{bad}");
        }
        assert_eq!(escape("a*b/c-d"), r"a\*b/c-d");
    }
}
