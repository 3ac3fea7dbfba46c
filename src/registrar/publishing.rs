//! The publisher loop: makes the store hold the registration exactly while
//! the service is healthy and not in maintenance, and follows the
//! registration when it moves (a DockStack container's new port: the old
//! one is withdrawn before the new is published). It owns the decisions a
//! [`Publisher`] does not: retrying with backoff while the store is away
//! (logged once per outage), keeping the registration alive, republishing
//! when the store lost it, and closing at shutdown.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::role::report::{self, RoleChange};
use super::role::{self, ElectConfig, Role, fence};
use super::status::ServiceStatus;
use crate::backoff::Backoff;
use crate::model::Instance;
use crate::store::election::{Campaign, Leadership};
use crate::store::publish::{PublishError, Publisher};

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
    /// The campaign ended: elected, or the candidacy lost.
    Elected(Result<Leadership, PublishError>),
    /// A leader's fence passed.
    Fence,
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

/// A service's `--elect`: the policy around the store's election.
pub struct Electing {
    /// The tag and how the role is told.
    pub config: ElectConfig,
    /// The hook's task, when there is a hook.
    pub hooks: Option<mpsc::UnboundedSender<RoleChange>>,
}

/// The role told last, with the primary's address told with it.
type Told = Option<(Role, Option<String>)>;

/// Where a candidate stands in the election.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    /// Not campaigning.
    Out,
    /// Campaigning, published as a replica.
    Candidate,
    /// Elected and published with the primary tag, until the fence.
    Leading(Instant),
}

impl Publishing {
    /// Publishes and withdraws as `healthy` and `maintenance` say until
    /// `shutdown`, then closes (withdraws and ends the lease or session).
    pub async fn run(
        self,
        healthy: watch::Receiver<bool>,
        maintenance: watch::Receiver<bool>,
        shutdown: CancellationToken,
    ) {
        self.run_with_roles(healthy, maintenance, shutdown, None)
            .await
    }

    /// [`Publishing::run`], campaigning with `electing` while published.
    pub async fn run_with_roles(
        mut self,
        mut healthy: watch::Receiver<bool>,
        mut maintenance: watch::Receiver<bool>,
        shutdown: CancellationToken,
        mut electing: Option<Electing>,
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
        let mut standing = Standing::Out;
        let mut campaign: Option<Campaign> = None;
        // The role told last, and the primary's address told with it.
        let mut role: Told = None;
        // Whether the last withdrawal was for maintenance, so that the next
        // publish says the file went away.
        let mut withdrawn_for_maintenance = false;
        // Why the next publish happens, when the loop itself took the
        // registration down (a leader fenced) rather than the store.
        let mut republish_why: Option<&str> = None;
        if electing.is_some() {
            self.tell(&mut electing, &mut role, Role::None, None);
        }
        loop {
            // The fence first, whatever woke the loop: a leader whose store
            // has not acknowledged it in time stops calling itself primary
            // before the store can have expired its lease or session.
            if let Standing::Leading(until) = standing
                && Instant::now() >= until
            {
                tracing::warn!(service = %name, "no keep-alive acknowledged in time: no longer primary (fenced); the store may be electing another");
                self.status.record_change(
                    "not primary",
                    "lost leadership: no keep-alive acknowledged in time (fenced)",
                );
                standing = Standing::Out;
                self.tell(&mut electing, &mut role, Role::None, None);
                // Written again as a replica, campaigning again, once the
                // store answers: if the lease survived, it leads again.
                holds = None;
                self.status.set_published(false);
                republish_why = Some("stepped down as primary (fenced); campaigning again");
            }
            if moved && holds == Some(false) {
                moved = false;
                registration = self.registration.borrow_and_update().clone();
                tracing::info!(service = %name, instance = %registration.id, address = %registration.address, port = ?registration.port, "the registration moved");
            }
            let is_healthy = *healthy.borrow_and_update();
            let in_maintenance = *maintenance.borrow_and_update();
            let want = !moved && is_healthy && !in_maintenance;
            if !in_maintenance && !is_healthy {
                // Out of maintenance but failing: what publishes it next
                // is the checks, not the file going away.
                withdrawn_for_maintenance = false;
            }
            if holds != Some(want) && retry_at.is_none() {
                let why = if moved {
                    "the registration moved".to_owned()
                } else if want && outage {
                    "store reachable again".to_owned()
                } else if want && holds.is_none() {
                    (republish_why.take())
                        .unwrap_or("republished: the store had lost it")
                        .to_owned()
                } else if want && withdrawn_for_maintenance {
                    "maintenance file removed".to_owned()
                } else if in_maintenance {
                    "maintenance file appeared".to_owned()
                } else {
                    (self.status.health_reason())
                        .map_or_else(|| "checks".to_owned(), |r| r.to_string())
                };
                let result = if want {
                    let as_replica = self.tagged(&electing, &registration, false);
                    // Published again (as a replica): the campaign starts
                    // over, and finds at once a leadership still held.
                    standing = Standing::Out;
                    self.publisher.publish(&as_replica).await
                } else {
                    // Withdrawn first, then out of the election: a new
                    // leader is published only after this one is gone.
                    let fence_at = match standing {
                        Standing::Leading(until) => Some(until),
                        _ => None,
                    };
                    let withdrawn = before(fence_at, self.publisher.withdraw()).await;
                    if withdrawn.is_ok() && standing != Standing::Out {
                        standing = Standing::Out;
                        self.tell(&mut electing, &mut role, Role::None, None);
                        match self.publisher.election() {
                            Some(election) => election.resign().await,
                            None => Ok(()),
                        }
                    } else {
                        withdrawn
                    }
                };
                campaign = None;
                let result = match result {
                    Ok(()) if want && electing.is_some() => match self.publisher.election() {
                        Some(election) => election.campaign(&registration).await.map(|c| {
                            campaign = Some(c);
                        }),
                        None => Err(PublishError::Unavailable(
                            "this store has no election".to_owned(),
                        )),
                    },
                    other => other,
                };
                match result {
                    Ok(()) => {
                        holds = Some(want);
                        backoff.reset();
                        keep_alive_at = self.next_keep_alive(want);
                        if want && electing.is_some() {
                            standing = Standing::Candidate;
                            let primary = self.primary_address(&registration).await;
                            self.tell(&mut electing, &mut role, Role::Replica, primary);
                        } else if electing.is_some() {
                            self.tell(&mut electing, &mut role, Role::None, None);
                        }
                        if outage {
                            outage = false;
                            tracing::info!(service = %name, target = %self.publisher.describe(), "store reachable again");
                        }
                        // After the role: the page never shows a published
                        // candidate with no role while the primary is asked.
                        self.status.set_published(want);
                        if want {
                            tracing::info!(service = %name, target = %self.publisher.describe(), "published");
                            let what = if electing.is_some() {
                                "published (replica)"
                            } else {
                                "published"
                            };
                            self.status.record_change(what, &why);
                        } else {
                            tracing::info!(service = %name, target = %self.publisher.describe(), "withdrawn");
                            self.status.record_change("withdrawn", &why);
                        }
                        withdrawn_for_maintenance = !want && in_maintenance;
                    }
                    Err(error) => {
                        holds = None;
                        standing = Standing::Out;
                        self.status.set_published(false);
                        self.status.record_store_error();
                        if electing.is_some() {
                            self.tell(&mut electing, &mut role, Role::None, None);
                        }
                        if !outage {
                            outage = true;
                            let why = format!("store unreachable ({error})");
                            let what = if want {
                                "not published"
                            } else {
                                "not withdrawn"
                            };
                            self.status.record_change(what, &why);
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
            let campaigning = watching && standing == Standing::Candidate && campaign.is_some();
            let fence_at = match standing {
                Standing::Leading(until) => Some(until),
                _ => None,
            };
            let event = {
                let publisher = &mut self.publisher;
                tokio::select! {
                    () = shutdown.cancelled() => Event::Shutdown,
                    Ok(()) = healthy.changed() => Event::Desire,
                    Ok(()) = maintenance.changed() => Event::Desire,
                    Ok(()) = self.registration.changed() => Event::Moved,
                    () = sleep_until(retry_at) => Event::Retry,
                    () = sleep_until(keep_alive_at) => Event::KeepAlive,
                    () = sleep_until(fence_at) => Event::Fence,
                    error = publisher.lost(), if watching => Event::Lost(error),
                    elected = poll_campaign(&mut campaign), if campaigning => Event::Elected(elected),
                }
            };
            match event {
                Event::Shutdown => break,
                Event::Desire | Event::Fence => {}
                Event::Moved => moved = true,
                Event::Retry => retry_at = None,
                Event::KeepAlive => match before(fence_at, self.publisher.keep_alive()).await {
                    Ok(()) => {
                        keep_alive_at = self.next_keep_alive(true);
                        if let Standing::Leading(_) = standing
                            && let Some(until) = self.fence()
                        {
                            standing = Standing::Leading(until);
                        }
                        // A replica follows the primary: when another is
                        // elected, its hook is run again with the new
                        // address (Redis' `replicaof` must name it).
                        if standing == Standing::Candidate
                            && let Some(primary) = self.primary_address(&registration).await
                        {
                            self.tell(&mut electing, &mut role, Role::Replica, Some(primary));
                        }
                    }
                    Err(error) => {
                        self.step_down(&mut standing, &mut electing, &mut role, &error);
                        self.lost(&mut holds, &mut outage, error)
                    }
                },
                Event::Lost(error) => {
                    self.step_down(&mut standing, &mut electing, &mut role, &error);
                    self.lost(&mut holds, &mut outage, error)
                }
                Event::Elected(Ok(leadership)) => {
                    let as_primary = self.tagged(&electing, &registration, true);
                    let written = match self.publisher.election() {
                        Some(election) => election.publish_leading(&as_primary, &leadership).await,
                        None => Err(PublishError::Lost("no election".to_owned())),
                    };
                    // The fence counts from the proof the store gave before
                    // the write: the lease cannot be older than that.
                    match (written, self.fence()) {
                        (Ok(()), Some(until)) if Instant::now() < until => {
                            standing = Standing::Leading(until);
                            let address = Some(registration.address.to_string());
                            self.tell(&mut electing, &mut role, Role::Primary, address);
                            self.status.record_change("primary", "won the election");
                            tracing::info!(service = %name, "elected: published as primary");
                        }
                        (Ok(()), _) => {
                            // Elected too late to be sure of the lease:
                            // written again as a replica and campaigning.
                            standing = Standing::Out;
                            holds = None;
                        }
                        (Err(error), _) => {
                            standing = Standing::Out;
                            self.lost(&mut holds, &mut outage, error);
                        }
                    }
                }
                Event::Elected(Err(error)) => {
                    standing = Standing::Out;
                    self.lost(&mut holds, &mut outage, error);
                }
            }
        }
        // A campaign in flight holds the session too (ZooKeeper's client):
        // abandoned before the session is closed.
        drop(campaign);
        if electing.is_some() {
            self.tell(&mut electing, &mut role, Role::None, None);
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

    /// `registration` with the role's tag, when the service is elected.
    fn tagged(
        &self,
        electing: &Option<Electing>,
        registration: &Instance,
        leading: bool,
    ) -> Instance {
        let Some(electing) = electing else {
            return registration.clone();
        };
        let mut tagged = registration.clone();
        let tag = if leading {
            electing.config.tag.as_str()
        } else {
            role::REPLICA_TAG
        };
        tagged.tags = (registration.tags.iter().map(|t| &**t))
            .chain([tag])
            .collect();
        tagged
    }

    /// Until when a leader may call itself primary, from the store's last
    /// acknowledgement.
    fn fence(&mut self) -> Option<Instant> {
        let election = self.publisher.election()?;
        fence::primary_until(election.acknowledged(), election.expiry())
    }

    /// The current primary's address, best effort, for a replica's hook;
    /// `None` when it is this instance's own (about to be elected: a
    /// replica of itself is no replica).
    async fn primary_address(&mut self, registration: &Instance) -> Option<String> {
        let election = self.publisher.election()?;
        let leader = election.leader().await.ok().flatten()?;
        (leader != registration.address.to_string()).then_some(leader)
    }

    /// The registration or its lease is gone: a leader is primary no more.
    fn step_down(
        &self,
        standing: &mut Standing,
        electing: &mut Option<Electing>,
        role: &mut Told,
        error: &PublishError,
    ) {
        if let Standing::Leading(_) = standing {
            let why = format!("lost leadership: {error}");
            self.status.record_change("not primary", &why);
        }
        if *standing != Standing::Out {
            *standing = Standing::Out;
            if electing.is_some() {
                self.tell(electing, role, Role::None, None);
            }
        }
    }

    /// Tells the service its role, if it changed (or, for a replica, the
    /// primary's address did): the role file at once, the hook on its
    /// task, `/ready` and `/metrics`.
    fn tell(
        &self,
        electing: &mut Option<Electing>,
        role: &mut Told,
        now: Role,
        primary: Option<String>,
    ) {
        let Some(electing) = electing else {
            return;
        };
        let before = role.replace((now, primary.clone()));
        let same_role = before.as_ref().is_some_and(|(r, _)| *r == now);
        let same_primary = before.as_ref().is_some_and(|(_, p)| *p == primary);
        if same_role && (now != Role::Replica || same_primary) {
            // Nothing new to tell: keep what was told.
            *role = before;
            return;
        }
        if same_role {
            tracing::info!(service = %self.status.name, primary = primary.as_deref().unwrap_or(""), "the primary moved");
            if let Some(hooks) = &electing.hooks {
                let _ = hooks.send(RoleChange { role: now, primary });
            }
            return;
        }
        self.status.set_role(now);
        tracing::info!(service = %self.status.name, role = now.as_str(), "role");
        if let Some(path) = &electing.config.role_file
            && let Err(error) = report::write_role_file(path, now)
        {
            tracing::warn!(service = %self.status.name, path = %path.display(), %error, "cannot write the role file");
        }
        if let Some(hooks) = &electing.hooks {
            // The hook's task ends only at shutdown.
            let _ = hooks.send(RoleChange { role: now, primary });
        }
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
        let was_published = self.status.published();
        self.status.set_published(false);
        self.status.record_store_error();
        match &error {
            PublishError::Lost(_) => {
                let why = format!("store session or lease lost ({error})");
                self.status.record_change("not published", &why);
                tracing::warn!(service = %self.status.name, %error, "the store lost the registration; republishing")
            }
            _ if !*outage => {
                *outage = true;
                if was_published {
                    let why = format!("store unreachable ({error})");
                    self.status.record_change("not published", &why);
                }
                tracing::warn!(service = %self.status.name, %error, "store unreachable; checks go on, retrying with backoff");
            }
            _ => {}
        }
    }
}

/// `request`, given up at a leader's fence: a store that does not answer
/// must not keep the loop from stepping down in time.
async fn before<T>(
    fence: Option<Instant>,
    request: impl Future<Output = Result<T, PublishError>>,
) -> Result<T, PublishError> {
    match fence {
        Some(until) => tokio::time::timeout_at(until, request)
            .await
            .unwrap_or_else(|_| {
                Err(PublishError::Unavailable(
                    "the store did not answer before the leader's fence".to_owned(),
                ))
            }),
        None => request.await,
    }
}

/// The campaign's outcome, once: the campaign is done with after it.
async fn poll_campaign(campaign: &mut Option<Campaign>) -> Result<Leadership, PublishError> {
    let Some(running) = campaign.as_mut() else {
        return std::future::pending().await;
    };
    let outcome = running.await;
    *campaign = None;
    outcome
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
    use crate::model::{InstanceId, ServiceName};
    use crate::store::publish::PublisherFuture;

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

    #[tokio::test(start_paused = true)]
    async fn each_change_says_why_it_happened() {
        let asked = Arc::new(Mutex::new(Vec::new()));
        let (healthy_tx, healthy) = watch::channel(false);
        let (maintenance_tx, maintenance) = watch::channel(false);
        let (_registration_tx, registration) = watch::channel(at(3306));
        let status = Arc::new(ServiceStatus::new("mysql".into(), "test".into(), vec![]));
        let publishing = Publishing {
            publisher: Box::new(Recorder {
                asked: asked.clone(),
            }),
            registration,
            status: status.clone(),
        };
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(publishing.run(healthy, maintenance, shutdown.clone()));
        let last = || {
            let change = status.last_change().expect("a change");
            format!("{}: {}", change.what, change.why)
        };
        settle().await;
        assert!(status.last_change().is_none(), "nothing happened yet");
        // The checker sets the reason before it says healthy.
        status.set_health_reason("every check passed 2× in a row".into());
        healthy_tx.send(true).unwrap();
        settle().await;
        assert_eq!(last(), "published: every check passed 2× in a row");
        maintenance_tx.send(true).unwrap();
        settle().await;
        assert_eq!(last(), "withdrawn: maintenance file appeared");
        maintenance_tx.send(false).unwrap();
        settle().await;
        assert_eq!(last(), "published: maintenance file removed");
        status.set_health_reason("check failed 3× (tcp: connection refused)".into());
        healthy_tx.send(false).unwrap();
        settle().await;
        assert_eq!(
            last(),
            "withdrawn: check failed 3× (tcp: connection refused)"
        );
        shutdown.cancel();
        task.await.unwrap();
    }
}
