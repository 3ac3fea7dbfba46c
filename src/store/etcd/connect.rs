//! Reaching etcd: endpoints, TLS, credentials and timeouts, turned into an
//! etcd-client [`Client`].

use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};

use crate::config::{EtcdSettings, RegistryUrl};

/// How long to wait for a TCP (and TLS) connection to one member.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one request (a connection with authentication, a page of the
/// listing, creating the watch) may take before the member counts as
/// unreachable.
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// HTTP/2 pings on idle connections find a member that vanished without a
/// word (a cut network), which would otherwise leave the watch silent
/// forever. etcd refuses pings more often than every 5 s by default
/// (`--grpc-keepalive-min-time`).
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest response read: a page of the listing or one watch response. A
/// larger value is skipped (see the listing); etcd itself refuses requests
/// over 1.5 MiB unless `--max-request-bytes` says otherwise.
pub(super) const MAX_RESPONSE: usize = 16 * 1024 * 1024;

/// Everything needed to (re)connect to one etcd cluster.
#[derive(Clone)]
pub(super) struct Connector {
    endpoints: Vec<String>,
    options: ConnectOptions,
}

impl Connector {
    /// A connector for `url`'s endpoints, with TLS when the scheme asks for
    /// it and the credentials if any are set.
    pub fn new(url: &RegistryUrl, settings: &EtcdSettings) -> Self {
        let mut options = ConnectOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_keep_alive(KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT)
            .with_keep_alive_while_idle(true)
            // A member cut off from the others cancels the watch instead of
            // serving an ever older view.
            .with_require_leader(true);
        if url.is_tls() {
            let mut tls = TlsOptions::new();
            if let Some(ca) = &settings.ca_pem {
                tls = tls.ca_certificate(Certificate::from_pem(ca));
            }
            if let Some((cert, key)) = &settings.client_identity {
                tls = tls.identity(Identity::from_pem(cert, key));
            }
            options = options.with_tls(tls);
        }
        if let Some((user, password)) = &settings.credentials {
            options = options
                .with_user(user, password.expose())
                .with_auto_token_refresh(true);
        }
        Connector {
            endpoints: url.endpoints.clone(),
            options,
        }
    }

    /// A client for every endpoint; requests go to whichever member
    /// answers. Authenticates first when credentials are set.
    pub async fn connect(&self) -> Result<Client, ConnectError> {
        let connect = Client::connect(&self.endpoints, Some(self.options.clone()));
        let endpoints = || self.endpoints.join(",");
        match tokio::time::timeout(REQUEST_TIMEOUT, connect).await {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(e)) => Err(ConnectError::Failed {
                endpoints: endpoints(),
                reason: describe(&e),
            }),
            Err(_) => Err(ConnectError::NoAnswer {
                endpoints: endpoints(),
                limit: REQUEST_TIMEOUT,
            }),
        }
    }
}

/// No client for an etcd cluster: the callers retry with backoff and
/// report the registry stale (or the registration unpublished) meanwhile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(super) enum ConnectError {
    /// The connection, TLS or authentication failed: the etcd-client
    /// error and its causes (a refused connection, a certificate, a wrong
    /// password).
    #[error("cannot reach etcd at {endpoints}: {reason}")]
    Failed {
        /// The endpoints tried, comma-separated.
        endpoints: String,
        /// What failed, on one line.
        reason: String,
    },
    /// Connected, but no member completed the handshake in time.
    #[error("cannot reach etcd at {endpoints}: no answer within {limit:?}")]
    NoAnswer {
        /// The endpoints tried, comma-separated.
        endpoints: String,
        /// How long it waited.
        limit: Duration,
    },
}

/// An etcd-client error as one line for `/ready` and the log.
pub(super) fn describe(error: &etcd_client::Error) -> String {
    crate::error_text::one_line(error)
}
