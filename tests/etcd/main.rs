//! etcd backend tests: a separate binary, a module per topic, and the
//! backend battery every store runs (`tests/common/battery.rs`). Each test
//! starts its own etcd (Debian's `etcd-server`; the tests fail, never skip,
//! without it) on free 127.0.0.1 ports with a temporary data dir, starts
//! `disco serve` in-process watching it, registers through the real
//! etcd-client and asks over real UDP with hickory's client.

#[macro_use]
#[path = "../common/battery.rs"]
mod battery;
#[path = "../common/api.rs"]
mod api;
mod auth;
mod backend;
mod certs;
#[path = "../common/chromium.rs"]
mod chromium;
mod cluster;
mod config;
mod failover;
mod json_api;
mod liveness;
mod malformed;
mod metrics;
mod page;
#[path = "../common/ports.rs"]
mod ports;
#[path = "../common/promtool.rs"]
mod promtool;
// ZooKeeper too, for one disco watching every kind of registry.
#[path = "../common/proxy.rs"]
mod proxy;
mod registrations;
mod resync;
mod skydns;
mod support;
mod tls;
#[allow(dead_code)]
#[path = "../zookeeper/server.rs"]
mod zookeeper;

battery!(crate::backend::EtcdStore);
