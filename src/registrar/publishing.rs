//! The publisher loop: makes the store hold the registration exactly while
//! the service is healthy and not in maintenance, and follows the
//! registration when it moves (a DockStack container's new port: the old
//! one is withdrawn before the new is published). It owns the decisions a
//! [`Publisher`] does not: retrying with backoff while the store is away
//! (logged once per outage), keeping the registration alive, republishing
//! when the store lost it, and closing at shutdown.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::status::ServiceStatus;
use crate::backend::publish::{PublishError, Publisher};
use crate::backoff::Backoff;
use crate::model::Instance;

/// How long closing (withdraw, revoke) may take at shutdown before the
/// registrar gives up and lets the store expire what is left.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// What woke the loop.
enum Event {
    /// Health or maintenance changed.
    Desire,
    /// The registration moved.
    Moved,
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
    /// What is published; changes when a DockStack container's port moves.
    pub registration: watch::Receiver<Instance>,
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
        let mut registration = self.registration.borrow_and_update().clone();
        // The registration moved and the old one may still be in the store:
        // withdrawn first (the publisher deletes what it wrote), else it
        // would stay there beside the new one, under the lease or session.
        let mut moved = false;
        loop {
            if moved && holds == Some(false) {
                moved = false;
                registration = self.registration.borrow_and_update().clone();
                tracing::info!(service = %name, instance = %registration.id, address = %registration.address, port = ?registration.port, "the registration moved");
            }
            let want = !moved && *healthy.borrow_and_update() && !*maintenance.borrow_and_update();
            if holds != Some(want) && retry_at.is_none() {
                let result = if want {
                    self.publisher.publish(&registration).await
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
            if moved && holds == Some(false) {
                continue;
            }
            let watching = holds == Some(true);
            let event = {
                let publisher = &mut self.publisher;
                tokio::select! {
                    () = shutdown.cancelled() => Event::Shutdown,
                    Ok(()) = healthy.changed() => Event::Desire,
                    Ok(()) = maintenance.changed() => Event::Desire,
                    Ok(()) = self.registration.changed() => Event::Moved,
                    () = sleep_until(retry_at) => Event::Retry,
                    () = sleep_until(keep_alive_at) => Event::KeepAlive,
                    error = publisher.lost(), if watching => Event::Lost(error),
                }
            };
            match event {
                Event::Shutdown => break,
                Event::Desire => {}
                Event::Moved => moved = true,
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::backend::publish::PublisherFuture;
    use crate::model::{InstanceId, ServiceName};

    /// Records what it is asked; the store always answers.
    struct Recorder {
        asked: Arc<Mutex<Vec<String>>>,
    }

    impl Publisher for Recorder {
        fn describe(&self) -> String {
            "recorder".into()
        }
        fn publish<'a>(
            &'a mut self,
            registration: &'a Instance,
        ) -> PublisherFuture<'a, Result<(), PublishError>> {
            let port = registration.port.unwrap_or_default();
            let line = format!("publish {} {port}", registration.id);
            self.asked.lock().unwrap().push(line);
            Box::pin(async { Ok(()) })
        }
        fn keep_alive(&mut self) -> PublisherFuture<'_, Result<(), PublishError>> {
            Box::pin(async { Ok(()) })
        }
        fn keep_alive_every(&self) -> Option<Duration> {
            None
        }
        fn lost(&mut self) -> PublisherFuture<'_, PublishError> {
            Box::pin(std::future::pending())
        }
        fn withdraw(&mut self) -> PublisherFuture<'_, Result<(), PublishError>> {
            self.asked.lock().unwrap().push("withdraw".into());
            Box::pin(async { Ok(()) })
        }
        fn close(&mut self) -> PublisherFuture<'_, Result<(), PublishError>> {
            self.asked.lock().unwrap().push("close".into());
            Box::pin(async { Ok(()) })
        }
    }

    fn at(port: u16) -> Instance {
        let address = "10.0.0.5".parse().unwrap();
        let id = InstanceId::new(&format!("10-0-0-5-{port}")).unwrap();
        let mut instance = Instance::new(ServiceName::new("mysql").unwrap(), id, address);
        instance.port = Some(port);
        instance
    }

    /// Lets the loop run until it waits again.
    async fn settle() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_moved_registration_is_withdrawn_before_the_new_one_is_published() {
        let asked = Arc::new(Mutex::new(Vec::new()));
        let (healthy_tx, healthy) = watch::channel(true);
        let (_maintenance_tx, maintenance) = watch::channel(false);
        let (registration_tx, registration) = watch::channel(at(32768));
        let publishing = Publishing {
            publisher: Box::new(Recorder {
                asked: asked.clone(),
            }),
            registration,
            status: Arc::new(ServiceStatus::new("mysql".into(), "test".into(), vec![])),
        };
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(publishing.run(healthy, maintenance, shutdown.clone()));
        settle().await;
        // Moved while published: the old node goes first.
        registration_tx.send(at(32769)).unwrap();
        settle().await;
        // Moved while withdrawn (how the checker moves it: while failing):
        // nothing to withdraw, the new one waits for health.
        healthy_tx.send(false).unwrap();
        settle().await;
        registration_tx.send(at(32770)).unwrap();
        settle().await;
        healthy_tx.send(true).unwrap();
        settle().await;
        shutdown.cancel();
        task.await.unwrap();
        assert_eq!(
            *asked.lock().unwrap(),
            [
                "publish 10-0-0-5-32768 32768",
                "withdraw",
                "publish 10-0-0-5-32769 32769",
                "withdraw",
                "publish 10-0-0-5-32770 32770",
                "close",
            ]
        );
    }
}
