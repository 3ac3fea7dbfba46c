//! ZooKeeper backend tests: a separate binary, a module per topic. Each
//! test starts its own ZooKeeper (Debian's `zookeeper` package, run with
//! java; the tests fail, never skip, without it) on free 127.0.0.1 ports
//! with a temporary data dir, starts `disco serve` in-process watching it,
//! writes nodes through the real zookeeper-client and asks over real UDP
//! with hickory's client.

#[macro_use]
#[path = "../common/battery.rs"]
mod battery;
mod auth;
mod backend;
mod ensemble;
// The registrar binary's harness, shared as is: its helpers this binary
// does not call are not dead code there.
#[allow(dead_code)]
#[path = "../registrar/harness.rs"]
mod harness;
mod liveness;
mod malformed;
mod nerve;
#[path = "../common/ports.rs"]
mod ports;
#[path = "../common/proxy.rs"]
mod proxy;
mod reconnect;
mod registrar;
mod server;
mod support;

battery!(crate::backend::Zk);
