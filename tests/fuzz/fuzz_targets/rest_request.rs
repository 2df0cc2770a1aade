//! Fuzz target: `herald::fuzzing::rest_request` (its invariants are asserted there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| herald::fuzzing::rest_request(data));
