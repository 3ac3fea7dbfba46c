//! Which listeners are serving, for `/ready` and `/metrics`: a listener
//! (one UDP socket's thread, or a TCP accept loop) is serving from the
//! moment its socket is bound; its supervisor marks it down when it ends,
//! with why, counts the restart, and marks it serving again when it
//! spawns it anew.

use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::prometheus::label_value;

/// Every listener of a server.
#[derive(Debug, Default)]
pub struct ListenerBoard {
    /// Added once per socket at start, read by the endpoints: a std Mutex,
    /// because nothing awaits while it is held.
    listeners: Mutex<Vec<Arc<Listener>>>,
}

/// One listener's state.
#[derive(Debug)]
pub struct Listener {
    name: String,
    serving: AtomicBool,
    restarts: AtomicU64,
    /// When it went down and why, while it is down.
    down: Mutex<Option<(SystemTime, String)>>,
}

/// What `/ready` and `/metrics` say of a listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerStatus {
    /// `udp 127.0.0.1:53 #0` (the socket's number among the address's
    /// UDP sockets), `tcp 127.0.0.1:53`.
    pub name: String,
    /// Whether it is serving now.
    pub serving: bool,
    /// How many times it ended and was started again.
    pub restarts: u64,
    /// Since when it has not been serving.
    pub down_since: Option<SystemTime>,
    /// Why it ended, while it is down.
    pub reason: Option<String>,
}

impl ListenerBoard {
    /// A board with no listeners.
    pub fn new() -> Self {
        ListenerBoard::default()
    }

    /// Adds a listener whose socket is bound: serving, since the socket
    /// queues what clients send until its thread or task runs.
    pub(super) fn add(&self, name: String) -> Arc<Listener> {
        let listener = Arc::new(Listener {
            name,
            serving: AtomicBool::new(true),
            restarts: AtomicU64::new(0),
            down: Mutex::new(None),
        });
        self.lock().push(listener.clone());
        listener
    }

    /// Every listener's status, in the order they were added.
    pub fn statuses(&self) -> Vec<ListenerStatus> {
        self.lock().iter().map(|l| l.status()).collect()
    }

    /// Whether every listener is serving.
    pub fn all_serving(&self) -> bool {
        self.lock().iter().all(|l| l.serving.load(Relaxed))
    }

    /// Appends `disco_listener_up` and `disco_listener_restarts_total`, a
    /// series per listener, to a Prometheus text exposition.
    pub fn render_metrics(&self, out: &mut String) {
        let statuses = self.statuses();
        out.push_str(
            "# HELP disco_listener_up Whether a DNS listener (a UDP socket's thread, a TCP \
             accept loop) is serving.\n# TYPE disco_listener_up gauge\n",
        );
        for status in &statuses {
            let name = label_value(&status.name);
            let _ = writeln!(
                out,
                "disco_listener_up{{listener=\"{name}\"}} {}",
                status.serving as u8
            );
        }
        out.push_str(
            "# HELP disco_listener_restarts_total Times a DNS listener ended and was started \
             again.\n# TYPE disco_listener_restarts_total counter\n",
        );
        for status in &statuses {
            let name = label_value(&status.name);
            let _ = writeln!(
                out,
                "disco_listener_restarts_total{{listener=\"{name}\"}} {}",
                status.restarts
            );
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Listener>>> {
        self.listeners.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Listener {
    /// The listener runs and answers.
    pub(super) fn serving(&self) {
        *self.down.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.serving.store(true, Relaxed);
    }

    /// The listener ended, for `reason`; its supervisor restarts it.
    pub(super) fn ended(&self, reason: String) {
        self.serving.store(false, Relaxed);
        self.restarts.fetch_add(1, Relaxed);
        let mut down = self.down.lock().unwrap_or_else(|e| e.into_inner());
        let since = down
            .as_ref()
            .map_or_else(SystemTime::now, |(since, _)| *since);
        *down = Some((since, reason));
    }

    /// Its name in logs and on the endpoints.
    pub(super) fn name(&self) -> &str {
        &self.name
    }

    fn status(&self) -> ListenerStatus {
        let down = self.down.lock().unwrap_or_else(|e| e.into_inner()).clone();
        ListenerStatus {
            name: self.name.clone(),
            serving: self.serving.load(Relaxed),
            restarts: self.restarts.load(Relaxed),
            down_since: down.as_ref().map(|(since, _)| *since),
            reason: down.map(|(_, reason)| reason),
        }
    }
}
