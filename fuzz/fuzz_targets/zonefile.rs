//! See `disco::fuzzing::zonefile`: the body is a library function, which
//! `cargo test` also runs over `fuzz/seeds/zonefile/`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| disco::fuzzing::zonefile::run(data));
