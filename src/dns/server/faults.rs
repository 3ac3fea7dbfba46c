//! Fault points that only tests can trigger: a panic while answering a
//! chosen name, a listener that ends as soon as it runs. They exist with
//! the Cargo feature `failpoints`, which `cargo test` turns on (through the
//! dev-dependency on disco itself) and a release build never has; without
//! it [`Faults`] is empty and its checks compile to nothing.

#[cfg(feature = "failpoints")]
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use crate::dns::responder::Transport;

/// The fault points of one server.
#[derive(Debug, Default)]
pub struct Faults {
    /// The lowercase wire name whose answer panics.
    #[cfg(feature = "failpoints")]
    panic_on: arc_swap::ArcSwapOption<Vec<u8>>,
    /// Whether the UDP, then the TCP listeners end as soon as they run.
    #[cfg(feature = "failpoints")]
    held_down: [AtomicBool; 2],
}

#[cfg(feature = "failpoints")]
impl Faults {
    /// Panic while answering any query for `name` (`None`: stop).
    pub fn panic_answering(&self, name: Option<&str>) {
        let key = name.map(|name| {
            let mut key = Vec::new();
            for label in name.trim_end_matches('.').split('.') {
                key.push(label.len() as u8);
                key.extend(label.to_ascii_lowercase().bytes());
            }
            key.push(0);
            std::sync::Arc::new(key)
        });
        self.panic_on.store(key);
    }

    /// While `down`, every listener of `transport` ends at its next turn
    /// (a UDP thread within its read timeout, a TCP listener at its next
    /// connection), and its restarts end at once.
    pub fn hold_down(&self, transport: Transport, down: bool) {
        self.held_down[transport as usize].store(down, Relaxed);
    }
}

impl Faults {
    /// Panics if `packet` asks the name given to
    /// [`Faults::panic_answering`].
    #[inline]
    pub(super) fn check_answer(&self, packet: &[u8]) {
        #[cfg(feature = "failpoints")]
        if let Some(key) = &*self.panic_on.load() {
            let asked = packet.get(12..12 + key.len());
            if asked.is_some_and(|asked| asked.eq_ignore_ascii_case(key)) {
                panic!("failpoint: a panic answering this name");
            }
        }
        #[cfg(not(feature = "failpoints"))]
        let _ = packet;
    }

    /// Panics while [`Faults::hold_down`] holds `transport`'s listeners
    /// down.
    #[inline]
    pub(super) fn check_listener(&self, transport: Transport) {
        #[cfg(feature = "failpoints")]
        if self.held_down[transport as usize].load(Relaxed) {
            panic!("failpoint: {transport:?} listener held down");
        }
        #[cfg(not(feature = "failpoints"))]
        let _ = transport;
    }
}
