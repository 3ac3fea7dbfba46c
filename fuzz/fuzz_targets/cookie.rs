//! See `disco::fuzzing::cookie`: the body is a library function, which
//! `cargo test` also runs over `fuzz/seeds/cookie/`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| disco::fuzzing::cookie::run(data));
