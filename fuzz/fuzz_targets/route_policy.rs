//! A route policy spec from JSON, compiled and asked about requests.
//! The check, shared with the corpus replay test: `keyward_e2e::fuzz_checks::route_policy`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keyward_e2e::fuzz_checks::route_policy(data));
