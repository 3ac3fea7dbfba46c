//! disco: DNS-based service discovery backed by etcd or ZooKeeper.
//!
//! # Layout
//!
//! Read in this order:
//!
//! - [`model`]: services and instances, and the native registration format.
//!   Knows nothing of DNS or of any store. Instances share what repeats
//!   among them: service names, tag lists and port maps are process-wide
//!   shared copies ([`model::ServiceName`], [`model::Tags`],
//!   [`model::Ports`]).
//! - [`registry`]: what `disco serve` knows of each `--registry` (the word
//!   the flag, `/ready`, `/metrics` and the JSON API use): the contract a
//!   store's watch keeps ([`registry::Backend`]: a full listing, then
//!   changes, and "stale"/"resynced"), each registry's state, and the
//!   merged registry.
//! - [`store`]: the code that talks to etcd and ZooKeeper, and the only
//!   place their client types appear: each turns its store's listing and
//!   watch into that contract ([`store::etcd`], [`store::zookeeper`]), and
//!   writes what the registrar publishes through the
//!   [`store::publish::Publisher`] contract, which sits beside them so that
//!   the registrar depends on the stores and not the reverse.
//! - [`dns`]: everything DNS, and the only module that uses hickory: the
//!   immutable [`dns::Snapshot`] the query path reads, which stores the
//!   answers [`dns::answer`] encodes once per name and type (the encoder
//!   knows nothing of the snapshot), the hand-written query parser,
//!   forwarding, sockets.
//! - [`snapshot_writer`]: the single writer that turns the stores' updates
//!   into new snapshots and swaps them in atomically, and tells the [`catalog`]
//!   (what disco holds and the change timeline, for the JSON API and the
//!   web page; never read by the query path) what changed. The catalog
//!   keeps per instance only the registration it shares with the registry,
//!   where from and since when ([`catalog::Entry`], 24 bytes).
//! - [`cli`], then [`config`]: the raw flags as clap reads them, then their
//!   validation into runtime structs (bad input exits 64 before any port is
//!   bound). One way only: `config` reads `cli`, `cli` imports nothing of
//!   `config`. `config` holds a file a job: `disco serve`'s settings, the
//!   config file, `--registry` URLs, how the stores are reached (TLS files,
//!   credentials), single values, errors. [`secret`]: a password kept out
//!   of logs, which both carry.
//! - [`serve`]: wires it all together; [`http`] and [`metrics`] report on it;
//!   [`error_text`] puts an error and its causes on one line for them, and
//!   [`prometheus`] writes label values for `serve`'s `/metrics` and the
//!   registrar's alike.
//! - `heavy`: a leaf the stores and the snapshot writer call for long
//!   synchronous work (a listing parsed, folded into the registry), which
//!   first hands the runtime worker's other tasks to another worker.
//! - `fuzzing` (only with the test-only Cargo feature of that name): the
//!   fuzz targets' bodies, which `cargo test` runs over `fuzz/seeds/`.
//! - [`registrar`]: the `disco registrar` sidecar, beside `serve`: health
//!   checks, and the loop that writes what `serve` reads through the
//!   stores' [`store::publish::Publisher`]s.
//! - [`wait`]: `disco wait`, which asks DNS through [`dns::ask`] until
//!   names answer, for container entrypoints.
//!
//! The query path never touches a store: a query is parsed, looked up in
//! the current snapshot with a few hash probes, and answered from bytes
//! encoded the first time that name and type was asked since its data last
//! changed, and kept while the data stays. Likewise the instances a name
//! below a service selects (a tag, two tags, a named port, the RFC 2782
//! name) are gathered the first time that name is asked: the snapshot
//! keeps only which such names exist, which took its memory per instance
//! from 924 to 175 bytes (`bench/heap.rs`). Encoding lazily is a memory
//! trade-off: most of a million instances' names are never asked, and
//! encoding even the services' A and SRV and the instances' A when the
//! snapshot is built would add about 1.1 GiB at a million instances, more
//! than twice what disco holds for them (436 MiB from etcd; `BENCHMARKS.md`,
//! "A million instances" and "Listings read while they are parsed").
//! A first query is gathered and encoded on the thread that reads it, a few
//! microseconds for a service of ten instances; other names wait for no
//! lock.
//!
//! The layers run one way: no two of these modules import each other, nor
//! do any two parts of [`dns`] or of [`store`]. What both sides of a
//! would-be circle need sits on the lower side, as a leaf or a contract:
//! [`secret`] for `cli` and `config`, `dns::name` for the encoder and the
//! snapshot, [`store::publish`] for the stores and the registrar.

#![forbid(unsafe_code)]

pub(crate) mod backoff;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod dns;
pub mod error_text;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub(crate) mod heavy;
pub mod http;
pub mod metrics;
pub mod model;
pub mod prometheus;
pub mod registrar;
pub mod registry;
pub mod secret;
pub mod serve;
pub mod snapshot_writer;
pub mod store;
pub mod wait;
