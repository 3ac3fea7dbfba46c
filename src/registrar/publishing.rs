//! The publisher loop: makes the store hold the registration exactly while
//! the service is healthy and not in maintenance. It owns the decisions a
//! [`Publisher`] does not: retrying with backoff while the store is away
//! (logged once per outage), keeping the registration alive, republishing
//! when the store lost it, and closing at shutdown.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::status::ServiceStatus;
use crate::backend::backoff::Backoff;
use crate::backend::publish::{PublishError, Publisher};
use crate::model::Instance;

/// How long closing (withdraw, revoke) may take at shutdown before the
/// registrar gives up and lets the store expire what is left.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// What woke the loop.
enum Event {
    /// Health or maintenance changed.
    Desire,
    /// Time to keep the registration alive.
    KeepAlive,
    /// Time to retry after a failure.
    Retry,
    /// The store lost the registration.
    Lost(PublishError),
    /// SIGTERM.
    Shutdown,
}

/// One service's publishing.
pub struct Publishing {
    /// The store's publisher.
    pub publisher: Box<dyn Publisher>,
    /// What is published.
    pub registration: Instance,
    /// Where results go.
    pub status: Arc<ServiceStatus>,
}

impl Publishing {
    /// Publishes and withdraws as `healthy` and `maintenance` say until
    /// `shutdown`, then closes (withdraws and ends the lease or session).
    pub async fn run(
        mut self,
        mut healthy: watch::Receiver<bool>,
        mut maintenance: watch::Receiver<bool>,
        shutdown: CancellationToken,
    ) {
        let name = self.status.name.clone();
        // What the store holds: `None` after a failure (unknown until the
        // next request succeeds).
        let mut holds: Option<bool> = Some(false);
        let mut backoff = Backoff::new();
        let mut retry_at: Option<Instant> = None;
        let mut outage = false;
        let mut keep_alive_at: Option<Instant> = None;
        loop {
            let want = *healthy.borrow_and_update() && !*maintenance.borrow_and_update();
            if holds != Some(want) && retry_at.is_none() {
                let result = if want {
                    self.publisher.publish(&self.registration).await
                } else {
                    self.publisher.withdraw().await
                };
                match result {
                    Ok(()) => {
                        holds = Some(want);
                        backoff.reset();
                        keep_alive_at = self.next_keep_alive(want);
                        self.status.set_published(want);
                        if outage {
                            outage = false;
                            tracing::info!(service = %name, target = %self.publisher.describe(), "store reachable again");
                        }
                        if want {
                            tracing::info!(service = %name, target = %self.publisher.describe(), "published");
                        } else {
                            tracing::info!(service = %name, target = %self.publisher.describe(), "withdrawn");
                        }
                    }
                    Err(error) => {
                        holds = None;
                        self.status.set_published(false);
                        self.status.record_store_error();
                        if !outage {
                            outage = true;
                            tracing::warn!(service = %name, target = %self.publisher.describe(), %error, "store request failed; checks go on, retrying with backoff");
                        } else {
                            tracing::debug!(service = %name, %error, "store request failed again");
                        }
                        retry_at = Some(Instant::now() + backoff.next_delay());
                    }
                }
            }
            if holds != Some(true) {
                keep_alive_at = None;
            }
            let watching = holds == Some(true);
            let event = {
                let publisher = &mut self.publisher;
                tokio::select! {
                    () = shutdown.cancelled() => Event::Shutdown,
                    Ok(()) = healthy.changed() => Event::Desire,
                    Ok(()) = maintenance.changed() => Event::Desire,
                    () = sleep_until(retry_at) => Event::Retry,
                    () = sleep_until(keep_alive_at) => Event::KeepAlive,
                    error = publisher.lost(), if watching => Event::Lost(error),
                }
            };
            match event {
                Event::Shutdown => break,
                Event::Desire => {}
                Event::Retry => retry_at = None,
                Event::KeepAlive => match self.publisher.keep_alive().await {
                    Ok(()) => keep_alive_at = self.next_keep_alive(true),
                    Err(error) => self.lost(&mut holds, &mut outage, error),
                },
                Event::Lost(error) => self.lost(&mut holds, &mut outage, error),
            }
        }
        match tokio::time::timeout(CLOSE_TIMEOUT, self.publisher.close()).await {
            Ok(Ok(())) => tracing::info!(service = %name, "withdrawn for shutdown"),
            Ok(Err(error)) => {
                tracing::warn!(service = %name, %error, "could not withdraw at shutdown; the store expires it with the lease or session")
            }
            Err(_) => {
                tracing::warn!(service = %name, "the store did not answer at shutdown; it expires the registration with the lease or session")
            }
        }
        self.status.set_published(false);
    }

    /// When to keep a registration alive next, if it is published and the
    /// store needs it.
    fn next_keep_alive(&self, published: bool) -> Option<Instant> {
        let every = self.publisher.keep_alive_every().filter(|_| published)?;
        Some(Instant::now() + every)
    }

    /// The store lost the registration, or a keep-alive failed: republish
    /// at once (the backoff applies if that fails too).
    fn lost(&self, holds: &mut Option<bool>, outage: &mut bool, error: PublishError) {
        *holds = None;
        self.status.set_published(false);
        self.status.record_store_error();
        match &error {
            PublishError::Lost(_) => {
                tracing::warn!(service = %self.status.name, %error, "the store lost the registration; republishing")
            }
            _ if !*outage => {
                *outage = true;
                tracing::warn!(service = %self.status.name, %error, "store unreachable; checks go on, retrying with backoff");
            }
            _ => {}
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
