//! The management API's JSON bodies (create, edit, verify) and their validation.
//! The check, shared with the corpus replay test: `keyward_e2e::fuzz_checks::request_json`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keyward_e2e::fuzz_checks::request_json(data));
