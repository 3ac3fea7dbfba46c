//! See `disco::fuzzing::registration`: the body is a library function, which
//! `cargo test` also runs over `fuzz/seeds/registration/`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| disco::fuzzing::registration::run(data));
