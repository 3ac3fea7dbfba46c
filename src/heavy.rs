//! Long synchronous work on the runtime's threads: a listing of 100,000
//! entries parsed, then folded into the registry and the catalog, holds a
//! thread for a second or more, and with one worker (`disco serve`'s
//! default) every other task waits that long: TCP, HTTP, forwards, and the
//! stores' clients. ZooKeeper's client drops a connection that has heard
//! nothing for 2/5 of the session timeout, so on a busy host a replica
//! listed, lost its connection while folding the listing in, listed again,
//! and never settled (`bench/replicas.sh` with `STORE=zk`, twenty replicas
//! on two cores). A leaf: the stores and the snapshot writer use it.

use tokio::runtime::{Handle, RuntimeFlavor};

/// Runs `work` so that the runtime's other tasks keep running meanwhile:
/// on a multi-threaded runtime (what `disco serve` builds) its worker
/// first hands its other tasks to a fresh worker (tokio's
/// `block_in_place`); elsewhere (a test's current-thread runtime, no
/// runtime) it simply runs. For work that takes milliseconds or more: the
/// handover itself costs tens of microseconds.
pub(crate) fn without_stalling<R>(work: impl FnOnce() -> R) -> R {
    match Handle::try_current().map(|runtime| runtime.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}
