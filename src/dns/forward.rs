//! Placeholder until the forwarder lands.
use std::net::SocketAddr;
use std::time::Duration;
/// Forwards queries upstream.
#[derive(Debug)]
pub struct Forwarder {
    upstreams: Vec<SocketAddr>,
}
/// A response.
pub struct Forwarded {
    /// bytes
    pub bytes: Vec<u8>,
    /// cached
    pub cached: bool,
}
impl Forwarder {
    /// new
    pub fn new(upstreams: Vec<SocketAddr>, _timeout: Duration) -> Self {
        Forwarder { upstreams }
    }
    /// upstreams
    pub fn upstreams(&self) -> &[SocketAddr] {
        &self.upstreams
    }
    /// forward
    pub async fn forward(&self, _packet: &[u8], _max_len: usize) -> Option<Forwarded> {
        None
    }
}
