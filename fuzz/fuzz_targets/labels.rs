//! See `disco::fuzzing::labels`: the body is a library function, which
//! `cargo test` also runs over `fuzz/seeds/labels/`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| disco::fuzzing::labels::run(data));
