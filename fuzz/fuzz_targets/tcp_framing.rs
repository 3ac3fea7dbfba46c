//! See `disco::fuzzing::tcp_framing`: the body is a library function, which
//! `cargo test` also runs over `fuzz/seeds/tcp_framing/`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| disco::fuzzing::tcp_framing::run(data));
