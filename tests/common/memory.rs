//! An in-process backend for the tests: the store is a handle held by the
//! test, which registers and withdraws instances and SkyDNS entries
//! directly. It is given to `disco::serve::start` as an extra backend, as
//! an embedding program would give its own.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use disco::model::{Instance, SkyEntry};
use disco::registry::{Backend, Change, Sink, Update};

/// A backend whose store lives in memory.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    /// The sink, once the server has started the backend. A std Mutex:
    /// nothing awaits while it is held.
    sink: Mutex<Option<Sink>>,
    initial: Mutex<Vec<Instance>>,
}

/// The test's side of a [`MemoryBackend`].
#[derive(Debug, Clone)]
pub struct MemoryHandle(Arc<MemoryBackend>);

impl MemoryBackend {
    /// A backend that starts with `initial` registered, and its handle.
    pub fn new(initial: Vec<Instance>) -> (Arc<MemoryBackend>, MemoryHandle) {
        let backend = Arc::new(MemoryBackend {
            sink: Mutex::new(None),
            initial: Mutex::new(initial),
        });
        (backend.clone(), MemoryHandle(backend))
    }
}

impl MemoryHandle {
    fn send(&self, update: Update) {
        if let Some(sink) = self.0.sink.lock().expect("not poisoned").as_ref() {
            sink.send(update);
        }
    }

    /// Registers or replaces instances.
    pub fn put(&self, instances: Vec<Instance>) {
        self.send(Update::Changes(
            instances.into_iter().map(Change::Put).collect(),
        ));
    }

    /// Applies changes as one batch.
    pub fn apply(&self, changes: Vec<Change>) {
        self.send(Update::Changes(changes));
    }

    /// Marks the store unreachable.
    pub fn go_stale(&self, reason: &str) {
        self.send(Update::Stale {
            reason: reason.to_owned(),
        });
    }

    /// Replaces everything (a resync).
    pub fn reset(&self, instances: Vec<Instance>) {
        self.send(Update::Reset(instances));
    }

    /// Puts or replaces SkyDNS entries, as one batch.
    pub fn put_records(&self, entries: Vec<SkyEntry>) {
        self.send(Update::Changes(
            entries.into_iter().map(Change::PutRecord).collect(),
        ));
    }

    /// Deletes the SkyDNS entries stored at `keys`, as one batch.
    pub fn delete_records(&self, keys: &[&str]) {
        self.send(Update::Changes(
            keys.iter()
                .map(|key| Change::DeleteRecord {
                    key: (*key).to_owned(),
                })
                .collect(),
        ));
    }

    /// Replaces every SkyDNS entry (a resync of a SkyDNS source).
    pub fn reset_records(&self, entries: Vec<SkyEntry>) {
        self.send(Update::ResetRecords(entries));
    }
}

impl Backend for MemoryBackend {
    fn name(&self) -> String {
        "memory".to_owned()
    }

    fn run(
        self: Arc<Self>,
        sink: Sink,
        shutdown: CancellationToken,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            let initial = std::mem::take(&mut *self.initial.lock().expect("not poisoned"));
            sink.send(Update::Reset(initial));
            *self.sink.lock().expect("not poisoned") = Some(sink);
            shutdown.cancelled().await;
        })
    }
}
