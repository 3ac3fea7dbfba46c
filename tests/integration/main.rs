//! Integration tests: one binary, a module per topic. Each test starts
//! `disco serve` in-process on 127.0.0.1:0 and talks to it over real UDP and
//! TCP sockets with hickory's DNS client (or raw packets, where the test is
//! about the bytes).

mod cli;
mod cname_completion;
mod delegation;
mod edns;
mod endpoints;
mod fake_upstream;
mod forward_cache;
mod forward_tls;
mod forward_upstreams;
mod forwarding;
mod hickory_parity;
mod http;
mod malformed;
#[path = "../common/memory.rs"]
mod memory;
mod names;
mod recursion_bits;
mod rrl;
mod skydns;
mod support;
mod survival;
mod tcp;
mod truncation;
mod unbound;
mod wait;
