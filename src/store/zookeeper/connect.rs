//! Reaching ZooKeeper: the ensemble's hosts, the session timeout and the
//! digest credentials, turned into a zookeeper-client [`Client`].

use std::time::Duration;

use zookeeper_client::Client;

use crate::config::{RegistryUrl, ZkSettings};

/// The session timeout `disco serve` asks for. The server bounds it to 2 to 20
/// ticks (`tickTime`, 2 s by default: 4 s to 40 s). The client counts the
/// connection lost after 2/5 of it without a word from the server, and
/// then tries the other hosts of the ensemble within the same session.
pub(super) const SESSION_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one request (a read of the listing, adding the watch) may take.
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything needed to open a new session with one ensemble.
#[derive(Clone)]
pub(super) struct Connector {
    hosts: String,
    session_timeout: Duration,
    /// `user:password` for the `digest` scheme.
    digest: Option<Vec<u8>>,
}

impl Connector {
    /// A connector for `url`'s hosts, with the credentials if any are set.
    pub fn new(url: &RegistryUrl, settings: &ZkSettings) -> Self {
        Connector {
            hosts: url.endpoints.join(","),
            session_timeout: SESSION_TIMEOUT,
            digest: settings
                .credentials
                .as_ref()
                .map(|(user, password)| format!("{user}:{}", password.expose()).into_bytes()),
        }
    }

    /// The same, asking for sessions of `timeout` (the registrar's
    /// `--ttl`: how long its ephemeral nodes outlive it).
    pub fn with_session_timeout(self, timeout: Duration) -> Self {
        Connector {
            session_timeout: timeout,
            ..self
        }
    }

    /// The hosts, for messages.
    pub fn hosts(&self) -> &str {
        &self.hosts
    }

    /// Opens a new session with any host that answers.
    pub async fn connect(&self) -> Result<Client, ConnectError> {
        // Fail once every host has been tried, rather than wait out the
        // session timeout: the watch loop retries with its own backoff and
        // reports the registry stale meanwhile.
        let mut connector = Client::connector()
            .with_session_timeout(self.session_timeout)
            .with_fail_eagerly();
        if let Some(digest) = &self.digest {
            connector = connector.with_auth("digest", digest);
        }
        match tokio::time::timeout(REQUEST_TIMEOUT, connector.connect(&self.hosts)).await {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(e)) => Err(ConnectError::Failed {
                hosts: self.hosts.clone(),
                reason: e.to_string(),
            }),
            Err(_) => Err(ConnectError::NoSession {
                hosts: self.hosts.clone(),
                limit: REQUEST_TIMEOUT,
            }),
        }
    }
}

/// No session with a ZooKeeper ensemble: the callers retry with backoff
/// and report the registry stale (or the registration unpublished)
/// meanwhile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(super) enum ConnectError {
    /// Every host refused or failed, or the credentials were refused.
    #[error("cannot reach ZooKeeper at {hosts}: {reason}")]
    Failed {
        /// The hosts tried, comma-separated.
        hosts: String,
        /// zookeeper-client's error.
        reason: String,
    },
    /// No host granted a session in time.
    #[error("cannot reach ZooKeeper at {hosts}: no session within {limit:?}")]
    NoSession {
        /// The hosts tried, comma-separated.
        hosts: String,
        /// How long it waited.
        limit: Duration,
    },
}
