//! `AuthorizerEvent::from_slice` on arbitrary bytes.
//! The check, shared with the corpus replay test: `keyward_e2e::fuzz_checks::authorizer_event`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keyward_e2e::fuzz_checks::authorizer_event(data));
