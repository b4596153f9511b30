//! The query-string and `If-Match` extractors on a request built from the input.
//! The check, shared with the corpus replay test: `keyward_e2e::fuzz_checks::request_parts`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keyward_e2e::fuzz_checks::request_parts(data));
