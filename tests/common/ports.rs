//! Free loopback ports for the stores the tests start, shared by the test
//! binaries (each includes this file with `#[path]`).

use std::net::TcpListener;

/// Free loopback ports: all bound at once, so no two are the same, then
/// released for the store to take.
pub fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free loopback port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}
