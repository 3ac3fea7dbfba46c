//! See `disco::fuzzing::resolv_conf`: the body is a library function, which
//! `cargo test` also runs over `fuzz/seeds/resolv_conf/`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| disco::fuzzing::resolv_conf::run(data));
