//! See `disco::fuzzing::forwarded`: the body is a library function, which
//! `cargo test` also runs over `fuzz/seeds/forwarded/`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| disco::fuzzing::forwarded::run(data));
