//! `disco registrar`: the sidecar that health-checks a service and publishes
//! or withdraws its registration in etcd or ZooKeeper (DESIGN §5).
//!
//! # Layout
//!
//! - [`publisher`]: the store-agnostic [`Publisher`] contract each store
//!   implements in its backend folder (`backend::etcd::publish`, …), and
//!   the [`Target`] it publishes to.
//!
//! The rest (checks, the rise/fall state machine, the publisher loop, the
//! DockStack `-s` parser, maintenance, drain, the endpoints) lands beside
//! it.

pub mod publisher;

pub use publisher::{Format, PublishError, Publisher, PublisherFuture, Target};
