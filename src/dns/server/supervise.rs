//! Listeners that end are started again: a UDP socket's thread or a TCP
//! accept loop that returns or panics, for any reason, is restarted on the
//! same socket with backoff, and shows as down on `/ready` (503, naming
//! it) and `/metrics` until it runs again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::{JoinError, JoinHandle};
use tokio_util::sync::CancellationToken;

use super::listeners::Listener;
use crate::backoff::Backoff;

/// A listener that ran this long before it ended gets its first, short
/// delay again: it was not failing in a loop.
const RAN_WELL: Duration = Duration::from_secs(30);

/// Runs the listener `start` spawns, and spawns it again whenever it ends,
/// until `shutdown`. It counts as serving from the moment it is spawned:
/// its socket is bound and queues what clients send until it runs.
pub(super) async fn supervise(
    listener: Arc<Listener>,
    shutdown: CancellationToken,
    mut start: impl FnMut() -> JoinHandle<()>,
) {
    let mut backoff = Backoff::new();
    loop {
        let started = Instant::now();
        listener.serving();
        let ended = start().await;
        if shutdown.is_cancelled() {
            return;
        }
        let reason = why(ended);
        listener.ended(reason.clone());
        if started.elapsed() > RAN_WELL {
            backoff.reset();
        }
        let delay = backoff.next_delay();
        tracing::error!(
            listener = listener.name(),
            reason,
            ?delay,
            "a DNS listener ended; starting it again"
        );
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
}

fn why(ended: Result<(), JoinError>) -> String {
    match ended {
        Ok(()) => "it returned".to_owned(),
        Err(err) if err.is_panic() => {
            let payload = err.into_panic();
            let text = (payload.downcast_ref::<&str>().copied())
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("no message");
            format!("panicked: {text}")
        }
        Err(err) => err.to_string(),
    }
}
