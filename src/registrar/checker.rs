//! The checker: runs a service's checks every interval (all at once; all
//! must pass), feeds the rounds to the rise/fall state machine, logs each
//! transition once with its reason, and says "healthy" or not on a watch
//! channel the publisher loop follows.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::check::Check;
use super::follow::Following;
use super::health::{Health, Thresholds, Transition};
use super::status::ServiceStatus;

/// Up to this share of the interval is taken off each wait, at random, so
/// that a fleet started together drifts apart instead of checking in step.
/// Taken off rather than added: the interval stays an upper bound, and with
/// it the time to withdraw a failed service (fall × interval).
const JITTER: f64 = 0.1;

/// The wait before the next round: the interval less up to a tenth.
pub fn jittered(interval: Duration, rng: &mut impl Rng) -> Duration {
    interval.mul_f64(1.0 - rng.random_range(0.0..=JITTER))
}

/// How one service is checked.
pub struct Checker {
    /// The checks, in order; each finishes within the timeout.
    pub checks: Vec<Box<dyn Check>>,
    /// Time between the starts of two rounds.
    pub interval: Duration,
    /// Rise and fall.
    pub thresholds: Thresholds,
    /// Where results go.
    pub status: Arc<ServiceStatus>,
    /// A DockStack registration whose port Docker gave: asked again while
    /// failing, and the checks moved when the port did.
    pub following: Option<Following>,
}

impl Checker {
    /// Checks until `shutdown`, sending each change of health on `healthy`.
    /// The first round runs at once: a service that is up is published
    /// after `rise` rounds, not later.
    pub async fn run(mut self, healthy: watch::Sender<bool>, shutdown: CancellationToken) {
        let mut health = Health::new(self.thresholds);
        let mut next = Instant::now();
        let rounds = async {
            loop {
                tokio::time::sleep_until(next).await;
                next = Instant::now() + jittered(self.interval, &mut rand::rng());
                let failure = self.round().await;
                match health.record(failure.is_none()) {
                    Some(Transition::Healthy) => {
                        let rise = self.thresholds.rise;
                        self.status
                            .set_health_reason(format!("every check passed {rise}× in a row"));
                        tracing::info!(
                            service = %self.status.name,
                            "healthy: every check passed {} times in a row",
                            self.thresholds.rise
                        );
                    }
                    Some(Transition::Unhealthy) => {
                        self.status.set_health_reason(format!(
                            "check failed {}× ({})",
                            self.thresholds.fall,
                            failure.as_deref().unwrap_or_default()
                        ));
                        tracing::warn!(
                            service = %self.status.name,
                            reason = failure.as_deref().unwrap_or_default(),
                            "unhealthy: checks failed {} times in a row",
                            self.thresholds.fall
                        );
                    }
                    None => {
                        if let Some(reason) = &failure {
                            tracing::debug!(service = %self.status.name, %reason, "check failed");
                        }
                    }
                }
                // Docker is asked again only while the checks fail: see
                // `PortFollow::ask`. The new port starts unhealthy and
                // rises as any service does.
                if failure.is_some()
                    && !health.is_healthy()
                    && let Some(following) = &mut self.following
                    && let Some(checks) = following.after_failing_round(&self.status.name).await
                {
                    self.checks = checks;
                    health = Health::new(self.thresholds);
                }
                self.status.set_healthy(health.is_healthy());
                healthy.send_if_modified(|state| {
                    let changed = *state != health.is_healthy();
                    *state = health.is_healthy();
                    changed
                });
            }
        };
        shutdown.run_until_cancelled(rounds).await;
    }

    /// Runs every check once, together; `Some(reason)` if any failed.
    async fn round(&self) -> Option<String> {
        let runs = self
            .checks
            .iter()
            .zip(&self.status.checks)
            .map(|(check, status)| async move {
                let started = Instant::now();
                let result = check.run().await;
                let error = result.as_ref().err().map(ToString::to_string);
                status.record(error.as_deref(), started.elapsed());
                result.map_err(|reason| format!("{}: {reason}", check.describe()))
            });
        let results = futures_util::future::join_all(runs).await;
        let failures: Vec<String> = results.into_iter().filter_map(Result::err).collect();
        (!failures.is_empty()).then(|| failures.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};

    use super::super::check::{CheckFailure, CheckFuture};
    use super::super::status::CheckStatus;
    use super::*;

    /// A check whose result the test sets.
    struct Switch {
        up: Arc<AtomicBool>,
        runs: Arc<AtomicUsize>,
    }

    impl Check for Switch {
        fn describe(&self) -> &str {
            "switch"
        }

        fn run(&self) -> CheckFuture<'_> {
            self.runs.fetch_add(1, Relaxed);
            let up = self.up.load(Relaxed);
            Box::pin(async move {
                if up {
                    Ok(())
                } else {
                    Err(CheckFailure::Connect("down".to_owned()))
                }
            })
        }
    }

    #[test]
    fn jitter_only_shortens_the_interval_by_a_tenth_at_most() {
        let mut rng = rand::rng();
        let interval = Duration::from_secs(1);
        let waits: Vec<Duration> = (0..1000).map(|_| jittered(interval, &mut rng)).collect();
        assert!(
            waits
                .iter()
                .all(|w| *w <= interval && *w >= interval.mul_f64(0.9))
        );
        let distinct: std::collections::HashSet<_> = waits.iter().collect();
        assert!(distinct.len() > 100, "no jitter");
    }

    #[tokio::test(start_paused = true)]
    async fn healthy_after_rise_rounds_unhealthy_after_fall() {
        let up = Arc::new(AtomicBool::new(true));
        let runs = Arc::new(AtomicUsize::new(0));
        let status = Arc::new(ServiceStatus::new(
            "web/web-1".into(),
            "test".into(),
            vec![CheckStatus::new("switch")],
        ));
        let checker = Checker {
            checks: vec![Box::new(Switch {
                up: up.clone(),
                runs: runs.clone(),
            })],
            interval: Duration::from_secs(1),
            thresholds: Thresholds { rise: 3, fall: 2 },
            status: status.clone(),
            following: None,
        };
        let (sender, mut healthy) = watch::channel(false);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(checker.run(sender, shutdown.clone()));
        let started = Instant::now();
        healthy.changed().await.unwrap();
        assert!(*healthy.borrow());
        // Rounds at 0, ~1 s and ~2 s: the third pass turns it healthy.
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(1800) && took <= Duration::from_secs(2),
            "{took:?}"
        );
        assert_eq!(runs.load(Relaxed), 3);
        up.store(false, Relaxed);
        let failed_at = Instant::now();
        healthy.changed().await.unwrap();
        assert!(!*healthy.borrow());
        assert!(
            failed_at.elapsed() <= Duration::from_secs(2),
            "{:?}",
            failed_at.elapsed()
        );
        assert_eq!(status.checks[0].counts(), (3, 2));
        shutdown.cancel();
        task.await.unwrap();
    }

    /// A DockStack container on a port nothing listens on moves to one
    /// that answers: the checker asks the (fake) Docker again while
    /// failing, checks the new port, and sends the new registration.
    #[tokio::test]
    async fn a_failing_registration_follows_its_containers_new_port() {
        use crate::model::{Instance, InstanceId, ServiceName};
        use crate::registrar::{dockstack, follow};
        let address: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let old = closed.local_addr().unwrap().port();
        drop(closed);
        let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let new = open.local_addr().unwrap().port();
        let asked = Arc::new(AtomicUsize::new(0));
        let lookup: follow::PortLookup = {
            let asked = asked.clone();
            Box::new(move || {
                // Docker is away once, then publishes the new port.
                let n = asked.fetch_add(1, Relaxed);
                Box::pin(async move {
                    if n == 0 {
                        Err(crate::registrar::docker::PortLookupError::NoAnswer(
                            Duration::from_secs(3),
                        ))
                    } else {
                        Ok(new)
                    }
                })
            })
        };
        let mut registration = Instance::new(
            ServiceName::new("mysql").unwrap(),
            dockstack::instance_id(address, old),
            address,
        );
        registration.port = Some(old);
        let (registration_tx, mut registration_rx) = watch::channel(registration);
        let interval = Duration::from_millis(100);
        let timeout = Duration::from_millis(200);
        let target = std::net::SocketAddr::new(address, old);
        let check = dockstack::check_spec(dockstack::DockStackCheck::Tcp, target)
            .build(timeout)
            .unwrap();
        let status = Arc::new(ServiceStatus::new(
            "mysql/old".into(),
            "test".into(),
            vec![CheckStatus::new(check.describe())],
        ));
        let checker = Checker {
            checks: vec![check],
            interval,
            thresholds: Thresholds { rise: 2, fall: 1 },
            status,
            following: Some(follow::Following {
                follow: dockstack::PortFollow::new(old, interval, Instant::now()),
                container: "mysql".into(),
                check: dockstack::DockStackCheck::Tcp,
                address,
                timeout,
                lookup,
                registration: registration_tx,
            }),
        };
        let (sender, mut healthy) = watch::channel(false);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(checker.run(sender, shutdown.clone()));
        tokio::time::timeout(Duration::from_secs(5), healthy.wait_for(|h| *h))
            .await
            .expect("healthy at the new port")
            .unwrap();
        assert!(registration_rx.has_changed().unwrap());
        let moved = registration_rx.borrow_and_update().clone();
        assert_eq!(moved.port, Some(new));
        assert_eq!(
            moved.id,
            InstanceId::new(&format!("127-0-0-1-{new}")).unwrap()
        );
        // Once away, once answered; healthy since: not asked again.
        assert_eq!(asked.load(Relaxed), 2);
        shutdown.cancel();
        task.await.unwrap();
    }
}
