//! `Token::parse` and `Token::parse_for` on arbitrary text.
//! The check, shared with the corpus replay test: `keyward_e2e::fuzz_checks::token`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keyward_e2e::fuzz_checks::token(data));
