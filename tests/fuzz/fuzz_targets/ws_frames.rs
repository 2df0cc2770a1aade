//! Fuzz target: `herald::fuzzing::ws_frames` (its invariants are asserted there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| herald::fuzzing::ws_frames(data));
