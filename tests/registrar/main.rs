//! `disco registrar` tests: a separate binary, a module per topic. Each test
//! starts its own etcd (Debian's `etcd-server`), the services it checks (a
//! real HTTP server and a real TCP listener on 127.0.0.1), `disco serve`
//! in-process watching that etcd, and the real `disco registrar` binary;
//! it then asks disco over real UDP what a client would see.

// The etcd binary's harness, shared as is: its helpers this binary does not
// call are not dead code there.
#[allow(dead_code)]
#[path = "../etcd/certs.rs"]
mod certs;
#[path = "../common/chromium.rs"]
mod chromium;
#[allow(dead_code)]
#[path = "../etcd/cluster.rs"]
mod cluster;

#[allow(dead_code)]
#[path = "../etcd/support.rs"]
mod support;

mod address;
mod bad_input;
mod docker;
mod elect;
mod formats;
mod harness;
mod lifecycle;
mod maintenance;
mod page;
#[path = "../common/ports.rs"]
mod ports;
#[path = "../common/promtool.rs"]
mod promtool;
#[path = "../common/proxy.rs"]
mod proxy;
mod recovery;
mod services;
// Real ZooKeeper for the `--elect` tests, shared with the ZooKeeper binary.
#[allow(dead_code)]
#[path = "../zookeeper/server.rs"]
mod zk_server;
