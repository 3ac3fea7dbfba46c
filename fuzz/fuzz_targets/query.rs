//! See `disco::fuzzing::query`: the body is a library function, which
//! `cargo test` also runs over `fuzz/seeds/query/`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| disco::fuzzing::query::run(data));
