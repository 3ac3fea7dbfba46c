//! The fuzz targets' bodies, as library functions, so that they always
//! compile and always run (only with the `fuzzing` feature: never in a
//! release build).
//!
//! Each target is a module with one entry point, `run(data: &[u8])`, which
//! panics when disco gets the input wrong and returns otherwise. Three
//! callers share it:
//!
//! - `fuzz/fuzz_targets/<name>.rs`, a few lines that hand it libFuzzer's
//!   input (`scripts/fuzz` runs them all for a bounded time);
//! - `tests/fuzz_corpus.rs`, which `cargo test` runs over every file of
//!   `fuzz/seeds/<name>/`: the checked-in seeds, and every input a fuzzer
//!   ever crashed, named after what it is;
//! - anyone reproducing a crash: `run(&std::fs::read(path)?)`.
//!
//! A new target is a file here, a line in [`TARGETS`], a binary in
//! `fuzz/fuzz_targets/` and `fuzz/Cargo.toml`, and a seed directory; the
//! corpus test fails until all four exist.
//!
//! The targets:
//! - [`query`]: any bytes as a query, answered from a snapshot.
//! - [`forwarded`]: any bytes as an upstream's answer.
//! - [`zonefile`]: any text as a zone file, served.
//! - [`registration`]: any value in each registration format (native,
//!   SkyDNS, Nerve), served.
//! - [`tcp_framing`]: any byte stream, cut into reads at any points, framed
//!   as the TCP reader frames it.
//! - [`differential`]: made-up questions over the [`fixture`]'s names,
//!   answered by disco and by hickory-server from the same records
//!   ([`reference`]), compared.
//! - [`resolv_conf`]: any text as `disco wait`'s resolv.conf, and any
//!   name completed with it.
//! - [`cookie`]: any bytes as a DNS COOKIE option, read, answered, and
//!   asked with under response rate limiting.
//! - [`labels`]: any labels and environment on a container, read by
//!   `registrar --docker`.
//!
//! [`fixture`] holds the data set they answer from, which
//! `tests/integration/hickory_parity.rs` also serves; [`ask`] asks a
//! responder and checks what every response must be.
//!
//! This module may use hickory's types outside `dns`: it checks disco's
//! wire output against hickory's reading of it, and hickory-server's.

pub mod ask;
pub mod cookie;
pub mod differential;
pub mod fixture;
pub mod forwarded;
pub mod labels;
pub mod query;
pub mod reference;
pub mod registration;
pub mod resolv_conf;
pub mod tcp_framing;
pub mod zonefile;

/// A fuzz target's body.
pub type Target = fn(&[u8]);

/// Every target, by the name of its binary in `fuzz/` and its seed
/// directory `fuzz/seeds/<name>/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("query", query::run),
    ("forwarded", forwarded::run),
    ("zonefile", zonefile::run),
    ("registration", registration::run),
    ("tcp_framing", tcp_framing::run),
    ("differential", differential::run),
    ("cookie", cookie::run),
    ("labels", labels::run),
    ("resolv_conf", resolv_conf::run),
];
