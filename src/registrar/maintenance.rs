//! The maintenance file: while it exists every registration is withdrawn
//! and checks keep running. It is looked at every half second, and once
//! before anything is published, so a registrar restarted during
//! maintenance never publishes.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How often the file is looked at.
pub const POLL: Duration = Duration::from_millis(500);

/// Whether `path` exists now.
pub fn exists(path: &std::path::Path) -> bool {
    path.try_exists().unwrap_or(true)
}

/// Follows `path` until `shutdown`, sending each change on `sender`.
pub async fn follow(path: PathBuf, sender: watch::Sender<bool>, shutdown: CancellationToken) {
    let poll = async {
        loop {
            tokio::time::sleep(POLL).await;
            let on = exists(&path);
            let changed = sender.send_if_modified(|state| std::mem::replace(state, on) != on);
            if changed {
                if on {
                    tracing::warn!(file = %path.display(), "maintenance: withdrawing every registration");
                } else {
                    tracing::info!(file = %path.display(), "maintenance over: publishing what is healthy");
                }
            }
        }
    };
    shutdown.run_until_cancelled(poll).await;
}
