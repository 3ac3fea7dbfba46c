//! etcd backend tests: a separate binary, a module per topic. Each test
//! starts its own etcd (Debian's `etcd-server`; the tests fail, never skip,
//! without it) on free 127.0.0.1 ports with a temporary data dir, starts
//! `disco serve` in-process watching it, registers through the real
//! etcd-client and asks over real UDP with hickory's client.

mod auth;
mod certs;
mod cluster;
mod config;
mod failover;
mod listing;
mod malformed;
mod outage;
mod proxy;
mod registrations;
mod resync;
mod skydns;
mod support;
mod tls;
