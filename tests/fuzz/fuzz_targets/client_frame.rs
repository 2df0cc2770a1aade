//! Fuzz target: `herald::fuzzing::client_frame` (its invariants are asserted there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| herald::fuzzing::client_frame(data));
