//! Following a DockStack container's published port: the checker calls
//! [`Following::after_failing_round`] after each round that left the
//! service unhealthy; when Docker publishes another port now, the checks
//! move there and the publisher loop is told the new registration (it
//! withdraws the old one first). When to ask and what an answer means is
//! [`PortFollow`], pure; asking is [`super::docker::lookup`].

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::watch;
use tokio::time::Instant;

use super::check::Check;
use super::docker::PortLookupError;
use super::dockstack::{self, DockStackCheck, Followed, PortFollow};
use crate::model::Instance;

/// Asks for the container's published port once per call; `Err` says why
/// there is none.
pub type PortLookup =
    Box<dyn Fn() -> BoxFuture<'static, Result<u16, PortLookupError>> + Send + Sync>;

/// A registration whose port came from Docker, followed when it moves.
pub struct Following {
    /// When to ask, and the port known.
    pub follow: PortFollow,
    /// The container, for logs.
    pub container: String,
    /// What the check is.
    pub check: DockStackCheck,
    /// The host's address (`SERVICE_HOST`), which does not move.
    pub address: IpAddr,
    /// Each check's timeout.
    pub timeout: Duration,
    /// Asks Docker.
    pub lookup: PortLookup,
    /// The registration the publisher loop publishes; changed when the
    /// port moves.
    pub registration: watch::Sender<Instance>,
}

impl Following {
    /// After a round that failed while unhealthy: asks Docker again if an
    /// interval has passed since the last time, and when the port moved
    /// returns the checks of the new one (having sent the new registration).
    pub async fn after_failing_round(&mut self, service: &str) -> Option<Vec<Box<dyn Check>>> {
        if !self.follow.ask(Instant::now(), true) {
            return None;
        }
        let answer = (self.lookup)().await;
        let reason = (answer.as_ref().err())
            .map(ToString::to_string)
            .unwrap_or_default();
        match self.follow.answer(answer) {
            Followed::NoAnswer { first: true } => {
                tracing::warn!(%service, container = %self.container, %reason, port = self.follow.port(), "Docker does not say the container's port; checking the last known one");
                None
            }
            Followed::NoAnswer { first: false } => None,
            Followed::Unchanged { back } => {
                if back {
                    tracing::info!(%service, container = %self.container, "Docker answers again; the port is unchanged");
                }
                None
            }
            Followed::Moved { from, to, .. } => {
                let target = SocketAddr::new(self.address, to);
                let check = match dockstack::check_spec(self.check, target).build(self.timeout) {
                    Ok(check) => check,
                    Err(error) => {
                        // The same spec built at start; cannot fail for another port.
                        tracing::error!(%service, %error, "cannot check the new port");
                        return None;
                    }
                };
                let id = dockstack::instance_id(self.address, to);
                tracing::info!(%service, container = %self.container, from, to, instance = %id, "the container publishes another port now; withdrawing the old registration, checking the new one");
                self.registration.send_modify(|registration| {
                    registration.port = Some(to);
                    registration.id = id;
                });
                Some(vec![check])
            }
        }
    }
}
