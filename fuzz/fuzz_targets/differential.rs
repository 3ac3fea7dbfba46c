//! See `disco::fuzzing::differential`: the body is a library function, which
//! `cargo test` also runs over `fuzz/seeds/differential/`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| disco::fuzzing::differential::run(data));
