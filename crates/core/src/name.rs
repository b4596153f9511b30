//! Names of keys and sharing groups: what a name may hold, the form it is stored in, and the
//! form two names are compared in.
//!
//! A name is shown to people, so two names that display alike must not name two things. Every
//! name goes through [`validate_name`] (create, rename, new group) and is:
//!
//! 1. **Trimmed and normalised to NFC** (`unicode_normalization::UnicodeNormalization::nfc`):
//!    the record stores and shows this spelling; `e` + U+0301 becomes `é`.
//! 2. **Refused** when it holds a character that is invisible or changes how text around it
//!    displays: a control character (`char::is_control`), a bidirectional control
//!    ([`BIDI_CONTROLS`]), a default-ignorable one (zero-width spaces and joiners, variation
//!    selectors, soft hyphen, fillers: `unicode_security`'s identifier type
//!    `Default_Ignorable`, and `Deprecated` for the deprecated format characters), a space other
//!    than U+0020, or one that is unassigned or private-use
//!    (`unicode_normalization::char::is_public_assigned`), whose folding could change with a
//!    later Unicode version.
//! 3. **Refused** when it mixes scripts the way a spoof does (UTS #39, with `unicode_security`):
//!    the letters of its folded form (characters of a specific script; digits, punctuation,
//!    spaces and symbols are Common and mix with anything) must be single-script
//!    (`MixedScript::is_single_script`: `Cyrillic` alone, `Japanese` kana with Han) or,
//!    mixed, at most `RestrictionLevel::HighlyRestrictive` (Latin with Han and kana, Han and
//!    Hangul, Han and Bopomofo). `pаypal` with a Cyrillic `а` is refused.
//!
//! Two names **collide** when their [`name_key`]s are equal: NFKC of the full case folding
//! (`caseless`, CaseFolding.txt), Unicode's compatibility caseless match (D146), which is
//! NFKC_Casefold without its removal of default-ignorable characters (refused above anyway).
//! So NFC and NFD spellings, fullwidth and ASCII letters, `ß` and `ss`, and any case variants
//! collide. The stores claim a name by its key, atomically with the write, and keep the NFC
//! name in the record for display.

use caseless::Caseless;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_public_assigned;
use unicode_security::general_security_profile::IdentifierType;
use unicode_security::mixed_script::AugmentedScriptSet;
use unicode_security::{
    GeneralSecurityProfile, MixedScript, RestrictionLevel, RestrictionLevelDetection,
};

use crate::validation::FieldError;

/// A name's length in characters, after NFC: its NFC form is a DynamoDB index sort key, at most
/// 512 bytes of UTF-8.
pub const MAX_NAME_LEN: usize = 128;

/// A name's [`name_key`] in bytes of UTF-8. Folding can lengthen a name (NFKC turns one
/// character into up to 18), and the key is part of a DynamoDB sort key (at most 1024 bytes).
pub const MAX_NAME_KEY_BYTES: usize = 512;

/// The bidirectional controls: embeddings and overrides (U+202A–U+202E), isolates
/// (U+2066–U+2069), and the marks LRM, RLM (U+200E, U+200F) and ALM (U+061C). They reorder how
/// a name displays (`abc\u{202E}fed` shows as `abcdef`).
pub const BIDI_CONTROLS: &[char] = &[
    '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}',
    '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}',
];

/// The form two names are compared in: equal keys mean the names collide. NFKC of the full
/// case folding of the name (see the module documentation).
pub fn name_key(name: &str) -> String {
    name.chars()
        .nfd()
        .default_case_fold()
        .nfkd()
        .default_case_fold()
        .nfkc()
        .collect()
}

/// The name rule shared by keys and sharing groups: the trimmed NFC name, or why it is refused
/// (one error, on the field `name`).
pub fn validate_name(name: Option<&str>) -> Result<String, Vec<FieldError>> {
    let refuse = |message: String| vec![FieldError::new("name", message)];
    let trimmed = name.map(str::trim).unwrap_or_default();
    if trimmed.is_empty() {
        return Err(refuse("a name is required".into()));
    }
    let nfc: String = trimmed.nfc().collect();
    if nfc.chars().count() > MAX_NAME_LEN {
        return Err(refuse(format!("at most {MAX_NAME_LEN} characters")));
    }
    if let Some(message) = nfc.chars().find_map(refused_char) {
        return Err(refuse(message));
    }
    let key = name_key(&nfc);
    if key.len() > MAX_NAME_KEY_BYTES {
        return Err(refuse(format!(
            "too long once folded for comparison ({} bytes; at most {MAX_NAME_KEY_BYTES})",
            key.len()
        )));
    }
    if let Some(message) = mixed_scripts(&key) {
        return Err(refuse(message));
    }
    Ok(nfc)
}

/// Why `c` may not be in a name, if it may not.
fn refused_char(c: char) -> Option<String> {
    let code = format!("U+{:04X}", u32::from(c));
    if c.is_control() {
        return Some(format!("control characters are not allowed ({code})"));
    }
    if BIDI_CONTROLS.contains(&c) {
        return Some(format!(
            "bidirectional control characters are not allowed ({code}): they change how a name displays"
        ));
    }
    if matches!(
        c.identifier_type(),
        Some(IdentifierType::Default_Ignorable | IdentifierType::Deprecated)
    ) {
        return Some(format!(
            "invisible characters (zero-width, joiners, variation selectors and other default-ignorable ones) are not allowed ({code})"
        ));
    }
    if c.is_whitespace() && c != ' ' {
        return Some(format!(
            "only the plain space (U+0020) may separate words ({code} found)"
        ));
    }
    if !is_public_assigned(c) {
        return Some(format!(
            "unassigned and private-use characters are not allowed ({code})"
        ));
    }
    None
}

/// Why the folded name `key` mixes scripts like a spoof, if it does (UTS #39).
fn mixed_scripts(key: &str) -> Option<String> {
    if key.is_single_script() {
        return None;
    }
    // Common and Inherited characters (digits, spaces, punctuation, symbols, combining marks)
    // go with any script: only the letters of a specific script are judged.
    let letters: String = key
        .chars()
        .filter(|c| !AugmentedScriptSet::for_char(*c).is_all())
        .collect();
    if letters.as_str().detect_restriction_level() <= RestrictionLevel::HighlyRestrictive {
        return None;
    }
    let mut scripts: Vec<&str> = Vec::new();
    for c in letters.chars() {
        if let Some(script) = AugmentedScriptSet::for_char(c).base.iter().next() {
            let name = script.full_name();
            if !scripts.contains(&name) {
                scripts.push(name);
            }
        }
    }
    let restricted = letters
        .chars()
        .find(|c| !c.identifier_allowed())
        .map(|c| {
            format!(
                "; U+{:04X} is of a script restricted in identifiers",
                u32::from(c)
            )
        })
        .unwrap_or_default();
    Some(format!(
        "mixes scripts ({}) in a way that can imitate another name; write it in one script (Unicode UTS #39: single-script or highly restrictive){restricted}",
        scripts.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(name: &str) -> String {
        validate_name(Some(name)).unwrap_or_else(|e| panic!("{name:?}: {e:?}"))
    }

    fn refused(name: &str) -> String {
        let e = validate_name(Some(name)).unwrap_err();
        assert_eq!((e.len(), e[0].field.as_str()), (1, "name"), "{name:?}");
        e[0].message.clone()
    }

    #[test]
    fn names_are_stored_in_nfc() {
        assert_eq!(ok("cafe\u{301}"), "caf\u{e9}");
        assert_eq!(ok(" ci nightly "), "ci nightly");
        assert_eq!(
            ok("\u{212B}ngstr\u{F6}m"),
            "\u{C5}ngstr\u{F6}m",
            "ANGSTROM SIGN"
        );
        assert_eq!(ok("Ｆｕｌｌ"), "Ｆｕｌｌ", "fullwidth is kept for display");
    }

    #[test]
    fn look_alike_spellings_share_one_key() {
        let same = |a: &str, b: &str| {
            assert_eq!(name_key(&ok(a)), name_key(&ok(b)), "{a:?} vs {b:?}");
        };
        same("caf\u{e9}", "cafe\u{301}");
        same("ＣＩ－ｂｏｔ", "ci-bot");
        same("CI-Bot", "ci-bot");
        same("STRASSE", "straße");
        same("ΣΑΣ", "σας");
        same("ﬁle", "file");
        same("Ⅻ", "xii");
        assert_ne!(name_key("ci-bot"), name_key("ci_bot"));
        assert_ne!(name_key("cafe"), name_key("café"));
        assert_eq!(name_key("ci-bot"), "ci-bot");
    }

    #[test]
    fn the_key_is_stable_under_folding_again() {
        for name in [
            "ΐ",
            "ǰ",
            "ß",
            "ﬃ",
            "Ⅻ",
            "İstanbul",
            "ΣΑΣ",
            "Ｆｕｌｌ",
            "ｶﾀｶﾅ",
            "㍿",
        ] {
            let key = name_key(name);
            assert_eq!(name_key(&key), key, "{name:?}");
        }
    }

    #[test]
    fn invisible_and_reordering_characters_are_refused() {
        assert!(refused("admin\u{202E}nimda").contains("bidirectional control"));
        assert!(refused("a\u{2066}b").contains("U+2066"));
        assert!(refused("a\u{200F}b").contains("bidirectional"));
        assert!(refused("a\u{061C}b").contains("bidirectional"));
        for invisible in [
            '\u{200B}', '\u{200D}', '\u{FEFF}', '\u{00AD}', '\u{FE0F}', '\u{2060}', '\u{3164}',
            '\u{206A}',
        ] {
            let m = refused(&format!("ci{invisible}bot"));
            assert!(m.contains("invisible characters"), "{invisible:?}: {m}");
        }
        assert!(refused("a\u{7}b").contains("control characters"));
        assert!(refused("a\u{85}b").contains("control characters"));
        assert!(refused("a\u{A0}b").contains("plain space"));
        assert!(refused("a\u{2028}b").contains("plain space"));
        assert!(refused("a\u{E000}b").contains("private-use"));
        assert!(refused("a\u{0378}b").contains("unassigned"));
        assert!(refused("a\u{FFFF}b").contains("unassigned"));
    }

    #[test]
    fn mixed_script_confusables_are_refused() {
        let m = refused("p\u{430}ypal");
        assert!(
            m.contains("mixes scripts (Latin, Cyrillic)") && m.contains("UTS #39"),
            "{m}"
        );
        assert!(refused("ci-b\u{43E}t").contains("Latin, Cyrillic"));
        assert!(refused("\u{3B1}lpha-beta").contains("Greek"));
        assert!(
            refused("ＣＩ-\u{432}ot").contains("Cyrillic"),
            "fullwidth folds to Latin"
        );
        // Latin with one other recommended script is only moderately restrictive.
        assert!(refused("api-\u{627}\u{644}\u{628}").contains("Latin, Arabic"));
    }

    #[test]
    fn single_script_and_highly_restrictive_names_are_accepted() {
        for name in [
            "ci nightly",
            "Сервис оплаты",
            "платёж-2",
            "本番環境のキー",
            "デプロイ用",
            "CI用のキー",
            "서비스 키",
            "Ελληνικά",
            "مفتاح",
            "café déjà vu",
            "İstanbul",
            "build #42 (prod) ✓",
            "Ｆｕｌｌ",
        ] {
            ok(name);
        }
    }

    #[test]
    fn length_is_counted_after_nfc_and_after_folding() {
        ok(&"e\u{301}".repeat(MAX_NAME_LEN));
        assert!(refused(&"x".repeat(MAX_NAME_LEN + 1)).contains("at most 128"));
        // U+FDFA is one character that NFKC turns into 18.
        let m = refused(&"\u{FDFA}".repeat(20));
        assert!(m.contains("too long once folded"), "{m}");
        assert_eq!(refused("   "), "a name is required");
        assert_eq!(
            validate_name(None).unwrap_err()[0].message,
            "a name is required"
        );
    }
}
