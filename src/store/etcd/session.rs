//! What the registrar's publishers of one etcd registry share: one
//! connection and one lease, kept alive once per period for all of them. A
//! hundred services cost one keep-alive every third of the TTL, not a
//! hundred (bench/registrar.sh), as a ZooKeeper session serves every
//! ephemeral node of a client.
//!
//! Each lease has a generation. A publisher remembers the generation it
//! wrote its key on; when the lease is found expired, or the connection
//! breaks, the session drops both and moves to the next generation, and
//! every publisher still on the old one is told its registration is lost,
//! so it writes its key again on the new lease.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex, OnceLock, Weak};
use std::time::Duration;

use etcd_client::{Client, LeaseKeepAliveStream, LeaseKeeper};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::connect::{Connector, describe};
use crate::config::{EtcdSettings, RegistryUrl};
use crate::store::publish::PublishError;

/// How long one request may take before etcd counts as unreachable. Short:
/// a withdrawal that waits is a failed service still answered.
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// A request bounded by [`REQUEST_TIMEOUT`].
pub(super) async fn timed<T>(request: impl Future<Output = T>) -> Result<T, PublishError> {
    tokio::time::timeout(REQUEST_TIMEOUT, request)
        .await
        .map_err(|_| {
            PublishError::Unavailable(format!(
                "etcd did not answer within {}s",
                REQUEST_TIMEOUT.as_secs()
            ))
        })
}

struct Lease {
    id: i64,
    keeper: LeaseKeeper,
    responses: LeaseKeepAliveStream,
    /// When etcd last confirmed it.
    refreshed: Instant,
}

/// When the request was sent whose answer last proved a lease alive, and
/// that lease's generation: etcd cannot expire the lease before that plus
/// its TTL. What the registrar's fencing counts from.
#[derive(Debug, Clone, Copy)]
pub(super) struct Acknowledged {
    pub at: Instant,
    pub generation: u64,
}

#[derive(Default)]
struct State {
    client: Option<Client>,
    lease: Option<Lease>,
    generation: u64,
}

/// Every session of this process, by endpoints and TTL.
type Sessions = StdMutex<HashMap<(String, i64), Weak<Session>>>;

/// The connection and lease of one registry and TTL.
pub(super) struct Session {
    connector: Connector,
    ttl: i64,
    state: Mutex<State>,
    /// Publishers using the lease: only the last one to close revokes it
    /// (a revoke deletes every key on the lease, the others' too).
    users: AtomicUsize,
    /// Read without awaiting (a std Mutex: nothing awaits while it is
    /// held), beside `state`, which a slow request may hold.
    acknowledged: StdMutex<Option<Acknowledged>>,
}

/// A lease to write on: the client, the lease id and its generation.
pub(super) struct Granted {
    pub client: Client,
    pub lease: i64,
    pub generation: u64,
}

impl Session {
    /// The session for `registry` and `ttl` in this process, shared by
    /// every publisher asking for the same.
    pub fn shared(registry: &RegistryUrl, settings: &EtcdSettings, ttl: i64) -> Arc<Session> {
        static SESSIONS: OnceLock<Sessions> = OnceLock::new();
        let mut sessions = SESSIONS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let key = (registry.endpoints.join(","), ttl);
        if let Some(session) = sessions.get(&key).and_then(Weak::upgrade) {
            return session;
        }
        let session = Session::own(registry, settings, ttl);
        sessions.insert(key, Arc::downgrade(&session));
        session
    }

    /// A session for one publisher alone: its own connection and lease.
    pub fn own(registry: &RegistryUrl, settings: &EtcdSettings, ttl: i64) -> Arc<Session> {
        Arc::new(Session {
            connector: Connector::new(registry, settings),
            ttl,
            state: Mutex::new(State::default()),
            users: AtomicUsize::new(0),
            acknowledged: StdMutex::new(None),
        })
    }

    /// A publisher starts using the session.
    pub fn join(&self) {
        self.users.fetch_add(1, Ordering::Relaxed);
    }

    /// A publisher stops using the session; `true` when it was the last.
    pub fn leave(&self) -> bool {
        self.users.fetch_sub(1, Ordering::AcqRel) == 1
    }

    /// The TTL leases are granted with.
    pub fn ttl(&self) -> i64 {
        self.ttl
    }

    /// A client, connecting if there is none.
    pub async fn client(&self) -> Result<Client, PublishError> {
        let mut state = self.state.lock().await;
        self.connected(&mut state).await
    }

    async fn connected(&self, state: &mut State) -> Result<Client, PublishError> {
        if let Some(client) = &state.client {
            return Ok(client.clone());
        }
        let client = (self.connector.connect().await)
            .map_err(|e| PublishError::Unavailable(e.to_string()))?;
        state.client = Some(client.clone());
        Ok(client)
    }

    /// The current lease, granting one (and connecting) if there is none.
    pub async fn lease(&self) -> Result<Granted, PublishError> {
        let mut state = self.state.lock().await;
        let mut client = self.connected(&mut state).await?;
        if let Some(lease) = &state.lease {
            return Ok(Granted {
                client,
                lease: lease.id,
                generation: state.generation,
            });
        }
        let sent = Instant::now();
        let granted = match timed(client.lease_grant(self.ttl, None)).await {
            Ok(Ok(granted)) => granted,
            Ok(Err(error)) => return Err(Self::broken(&mut state, &error)),
            Err(timeout) => return Err(Self::timed_out(&mut state, timeout)),
        };
        let (keeper, responses) = match timed(client.lease_keep_alive(granted.id())).await {
            Ok(Ok(pair)) => pair,
            Ok(Err(error)) => return Err(Self::broken(&mut state, &error)),
            Err(timeout) => return Err(Self::timed_out(&mut state, timeout)),
        };
        state.lease = Some(Lease {
            id: granted.id(),
            keeper,
            responses,
            refreshed: Instant::now(),
        });
        self.acknowledge(sent, state.generation);
        Ok(Granted {
            client,
            lease: granted.id(),
            generation: state.generation,
        })
    }

    /// Keeps the lease of `generation` alive: one keep-alive per period
    /// for every publisher. `Lost` when that lease is gone (expired, or
    /// replaced after a break).
    pub async fn keep_alive(&self, generation: u64, every: Duration) -> Result<(), PublishError> {
        let mut state = self.state.lock().await;
        if state.generation != generation {
            return Err(PublishError::Lost("the lease was replaced".to_owned()));
        }
        let Some(lease) = state.lease.as_mut() else {
            return Err(PublishError::Lost("no lease".to_owned()));
        };
        // Another publisher kept it alive within this period.
        if lease.refreshed.elapsed() < every / 2 {
            return Ok(());
        }
        // Bounded by the period too: a keep-alive unanswered for that long
        // is a lease at risk, reported while a leader can still step down
        // before its fence (`crate::registrar::role::fence`).
        let limit = REQUEST_TIMEOUT.min(every);
        let sent = Instant::now();
        let answer = match lease.keeper.keep_alive().await {
            Ok(()) => tokio::time::timeout(limit, lease.responses.message())
                .await
                .map_err(|_| {
                    PublishError::Unavailable(format!(
                        "etcd did not acknowledge a keep-alive within {limit:?}"
                    ))
                }),
            Err(error) => Ok(Err(error)),
        };
        match answer {
            Ok(Ok(Some(response))) if response.ttl() > 0 => {
                lease.refreshed = Instant::now();
                self.acknowledge(sent, generation);
                Ok(())
            }
            Ok(Ok(Some(_))) => {
                state.lease = None;
                state.generation += 1;
                Err(PublishError::Lost("the lease expired".to_owned()))
            }
            Ok(Ok(None)) => {
                Self::drop_all(&mut state);
                Err(PublishError::Unavailable(
                    "the keep-alive stream ended".to_owned(),
                ))
            }
            Ok(Err(error)) => Err(Self::broken(&mut state, &error)),
            Err(timeout) => Err(Self::timed_out(&mut state, timeout)),
        }
    }

    /// When etcd last proved the current lease alive (see
    /// [`Acknowledged`]).
    pub fn acknowledged(&self) -> Option<Acknowledged> {
        *self
            .acknowledged
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn acknowledge(&self, sent: Instant, generation: u64) {
        *self
            .acknowledged
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Acknowledged {
            at: sent,
            generation,
        });
    }

    /// The lease of `generation` is unknown to etcd: a new one next time.
    pub async fn lease_lost(&self, generation: u64) {
        let mut state = self.state.lock().await;
        if state.generation == generation {
            state.lease = None;
            state.generation += 1;
        }
    }

    /// A request on the connection of `generation` failed (`error`, or a
    /// timeout): drop it and the lease (the old lease expires by itself;
    /// every key is written again on the next one).
    pub async fn failed(&self, generation: u64, error: PublishError) -> PublishError {
        let mut state = self.state.lock().await;
        if state.generation == generation {
            Self::drop_all(&mut state);
        }
        error
    }

    /// Revokes the lease, which deletes every key on it (shutdown).
    pub async fn revoke(&self) {
        let mut state = self.state.lock().await;
        state.generation += 1;
        let (Some(lease), Some(client)) = (state.lease.take(), state.client.as_mut()) else {
            return;
        };
        // Best effort: an unknown lease is as good as a revoked one.
        let _ = timed(client.lease_revoke(lease.id)).await;
    }

    fn broken(state: &mut State, error: &etcd_client::Error) -> PublishError {
        Self::drop_all(state);
        PublishError::Unavailable(describe(error))
    }

    fn timed_out(state: &mut State, timeout: PublishError) -> PublishError {
        Self::drop_all(state);
        timeout
    }

    fn drop_all(state: &mut State) {
        state.client = None;
        state.lease = None;
        state.generation += 1;
    }
}
