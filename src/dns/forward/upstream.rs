//! The upstream side of forwarding, on hickory-resolver's name-server pool:
//! it picks the upstream (ordered by a decaying RTT, so that a failing one
//! sinks), asks two at once when several are configured, uses a fresh
//! random ID and source port per UDP query, retries over TCP when an answer
//! is truncated, keeps TLS and HTTP/2 connections open, and gives up after
//! the timeout. What it hands back is taken apart once into a
//! [`Prepared`] answer for the wire cache.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::xfer::DnsHandle;
use hickory_resolver::net::{DnsError, NetError, NoRecords};
use hickory_resolver::proto::op::{DnsRequest, DnsRequestOptions, Message, OpCode, Query};
use hickory_resolver::proto::serialize::binary::{BinDecodable, BinDecoder};
use hickory_resolver::{NameServerPool, PoolContext, TlsConfig};
use tracing::debug;

use super::datagram::{Datagram, Direct};
use super::wire::{ClientQuery, Prepared};
use crate::dns::packet::EDNS_UDP_PAYLOAD;

/// The longest the direct UDP path waits for a plain upstream before the
/// pool asks (a quarter of the forward timeout when that is shorter;
/// four smoothed round trips when that is shorter still): unbound starts
/// its own retry timer at 376 ms.
const DIRECT_WAIT: Duration = Duration::from_millis(500);

/// One upstream resolver, as `--upstream` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// Plain DNS over UDP, and TCP for truncated answers: `IP[:PORT]`.
    Plain(SocketAddr),
    /// DNS over TLS (RFC 7858): `tls://IP[:PORT]#NAME`, NAME the name its
    /// certificate must carry.
    Tls {
        /// Address; port 853 unless given.
        addr: SocketAddr,
        /// The name the certificate is checked against.
        server_name: String,
    },
    /// DNS over HTTPS (RFC 8484, HTTP/2): `https://IP[:PORT][/PATH]#NAME`.
    Https {
        /// Address; port 443 unless given.
        addr: SocketAddr,
        /// The name the certificate is checked against.
        server_name: String,
        /// The URL path; `/dns-query` unless given.
        path: String,
    },
}

impl Upstream {
    /// Parses `IP[:PORT]`, `tls://IP[:PORT]#NAME` or
    /// `https://IP[:PORT][/PATH]#NAME`; the error says what is expected.
    pub fn parse(value: &str) -> Result<Self, UpstreamError> {
        if let Some(rest) = value.strip_prefix("tls://") {
            let (addr, name) = split_name(rest, "tls://9.9.9.9#dns.quad9.net")?;
            return Ok(Upstream::Tls {
                addr: address(addr, 853)?,
                server_name: name,
            });
        }
        if let Some(rest) = value.strip_prefix("https://") {
            let (location, name) = split_name(rest, "https://9.9.9.9/dns-query#dns.quad9.net")?;
            let (addr, path) = match location.find('/') {
                Some(at) => location.split_at(at),
                None => (location, "/dns-query"),
            };
            return Ok(Upstream::Https {
                addr: address(addr, 443)?,
                server_name: name,
                path: path.to_owned(),
            });
        }
        if value.contains("://") {
            return Err(UpstreamError::Scheme);
        }
        address(value, 53)
            .map(Upstream::Plain)
            .map_err(|_| UpstreamError::Plain)
    }

    /// Where it is.
    pub fn addr(&self) -> SocketAddr {
        match self {
            Upstream::Plain(addr) | Upstream::Tls { addr, .. } | Upstream::Https { addr, .. } => {
                *addr
            }
        }
    }

    fn name_server(&self) -> NameServerConfig {
        let addr = self.addr();
        let (mut config, connections) = match self {
            Upstream::Plain(_) => (
                NameServerConfig::udp_and_tcp(addr.ip()),
                vec![ConnectionConfig::udp(), ConnectionConfig::tcp()],
            ),
            Upstream::Tls { server_name, .. } => (
                NameServerConfig::tcp(addr.ip()),
                vec![ConnectionConfig::tls(Arc::from(server_name.as_str()))],
            ),
            Upstream::Https {
                server_name, path, ..
            } => (
                NameServerConfig::tcp(addr.ip()),
                vec![ConnectionConfig::https(
                    Arc::from(server_name.as_str()),
                    Some(Arc::from(path.as_str())),
                )],
            ),
        };
        config.connections = connections
            .into_iter()
            .map(|mut connection| {
                connection.port = addr.port();
                connection
            })
            .collect();
        config
    }
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Upstream::Plain(addr) => write!(f, "{addr}"),
            Upstream::Tls { addr, server_name } => write!(f, "tls://{addr}#{server_name}"),
            Upstream::Https {
                addr,
                server_name,
                path,
            } => write!(f, "https://{addr}{path}#{server_name}"),
        }
    }
}

/// Why an `--upstream` value was refused; the message says what is
/// expected instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// A scheme other than `tls://` or `https://`.
    #[error("expected IP[:PORT], tls://IP[:PORT]#NAME or https://IP[:PORT][/PATH]#NAME")]
    Scheme,
    /// Neither a scheme nor an address.
    #[error(
        "expected IP or IP:PORT (port defaults to 53), e.g. 10.0.0.2 or [::1]:5353, or tls://…, https://…"
    )]
    Plain,
    /// `tls://` or `https://` without `#NAME`.
    #[error("name the server's certificate after '#', e.g. {example}")]
    NoServerName {
        /// A correct value of the same kind.
        example: &'static str,
    },
    /// `#NAME` is not a name a certificate can carry.
    #[error("{name:?} is not a certificate name: {reason}")]
    ServerName {
        /// The name given.
        name: String,
        /// What rustls objects to.
        reason: String,
    },
    /// The part before `#` (or the path) is not an address.
    #[error("{value:?} is not IP or IP:PORT (a name would need a resolver)")]
    Address {
        /// The part given.
        value: String,
    },
}

/// `ADDR#NAME`, NAME a valid certificate name.
fn split_name<'a>(
    value: &'a str,
    example: &'static str,
) -> Result<(&'a str, String), UpstreamError> {
    let Some((location, name)) = value.split_once('#') else {
        return Err(UpstreamError::NoServerName { example });
    };
    rustls_pki_types::ServerName::try_from(name).map_err(|e| UpstreamError::ServerName {
        name: name.to_owned(),
        reason: e.to_string(),
    })?;
    Ok((location, name.to_owned()))
}

/// `IP` or `IP:PORT` (IPv6 in brackets with a port).
fn address(value: &str, default_port: u16) -> Result<SocketAddr, UpstreamError> {
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let bare = value.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, default_port))
        .map_err(|_| UpstreamError::Address {
            value: value.to_owned(),
        })
}

/// The configured upstreams, behind hickory's pool.
pub struct Upstreams {
    pool: NameServerPool<TokioRuntimeProvider>,
    /// The plain upstreams over TCP only: for answers the direct path got
    /// truncated, which the pool would ask over UDP again first.
    tcp_pool: Option<NameServerPool<TokioRuntimeProvider>>,
    /// Plain upstreams asked directly first: see [`super::datagram`].
    direct: Option<Datagram>,
    /// How long the direct path waits before the pool asks instead.
    direct_wait: Duration,
    list: Vec<Upstream>,
}

impl fmt::Debug for Upstreams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.list.iter().map(ToString::to_string))
            .finish()
    }
}

impl Upstreams {
    /// A pool over `list`; `timeout` bounds one question, whatever the
    /// number of upstreams tried. TLS certificates are checked against the
    /// Mozilla roots plus the PEM certificates in `extra_roots`.
    pub fn new(list: Vec<Upstream>, timeout: Duration, extra_roots: Option<&[u8]>) -> Self {
        let mut options = ResolverOpts::default();
        options.timeout = timeout;
        options.edns_payload_len = EDNS_UDP_PAYLOAD;
        let tls = TlsConfig {
            config: tls_config(extra_roots),
        };
        let cx = Arc::new(PoolContext::new(options, tls));
        let pool = NameServerPool::from_config(
            list.iter().map(Upstream::name_server),
            cx.clone(),
            TokioRuntimeProvider::new(),
        );
        let plain_over_tcp: Vec<NameServerConfig> = list
            .iter()
            .filter_map(|upstream| match upstream {
                Upstream::Plain(addr) => {
                    let mut config = NameServerConfig::tcp(addr.ip());
                    let mut connection = ConnectionConfig::tcp();
                    connection.port = addr.port();
                    config.connections = vec![connection];
                    Some(config)
                }
                _ => None,
            })
            .collect();
        let tcp_pool = (!plain_over_tcp.is_empty())
            .then(|| NameServerPool::from_config(plain_over_tcp, cx, TokioRuntimeProvider::new()));
        Upstreams {
            pool,
            tcp_pool,
            direct: Datagram::new(list.iter().filter_map(|upstream| match upstream {
                Upstream::Plain(addr) => Some(*addr),
                _ => None,
            })),
            direct_wait: (timeout / 4).min(DIRECT_WAIT),
            list,
        }
    }

    /// The upstreams, in the order given.
    pub fn list(&self) -> &[Upstream] {
        &self.list
    }

    /// Asks `client`'s question upstream, lowercased, with its DO and CD
    /// bits; the answer prepared, or None when no upstream gave one.
    pub async fn ask(&self, client: &ClientQuery<'_>, max_ttl: u32) -> Option<Prepared> {
        let question = client.lowercase_question();
        let mut pool = &self.pool;
        if let Some(direct) = &self.direct {
            match direct.ask(client, self.direct_wait).await {
                Direct::Answer(response) => {
                    if let Some(prepared) = Prepared::new(&response, question, max_ttl) {
                        return Some(prepared);
                    }
                }
                Direct::Truncated => pool = self.tcp_pool.as_ref().unwrap_or(&self.pool),
                Direct::Failed => {}
            }
        }
        let query = Query::read(&mut BinDecoder::new(question))
            .inspect_err(|error| debug!(%error, "forward: question does not decode"))
            .ok()?;
        let mut options = DnsRequestOptions::default();
        options.edns_payload_len = EDNS_UDP_PAYLOAD;
        options.edns_set_dnssec_ok = client.dnssec_ok;
        let mut request = DnsRequest::from_query(query.clone(), options);
        // hickory's pool sends CD clear unless told; it keys its own
        // coalescing on CD too.
        request.metadata.checking_disabled = client.checking_disabled;
        let mut responses = pool.send(request);
        let message = match responses.next().await? {
            Ok(response) => {
                let (message, bytes) = response.into_parts();
                if let Some(prepared) = Prepared::new(&bytes, question, max_ttl) {
                    return Some(prepared);
                }
                message
            }
            // The pool turns negative answers into errors: rebuild them.
            Err(NetError::Dns(DnsError::NoRecordsFound(negative))) => negative_message(negative),
            Err(error) => {
                debug!(%error, %query, "forward: no upstream answered");
                return None;
            }
        };
        // Bytes disco cannot take as they are (an OPT record in the middle):
        // hickory's encoding of what it read, without OPT, is.
        let mut message = message;
        message.edns = None;
        let bytes = message
            .to_vec()
            .inspect_err(|error| debug!(%error, "forward: answer does not encode"))
            .ok()?;
        Prepared::new(&bytes, question, max_ttl)
    }
}

/// The message a negative answer came in, as far as the pool kept it: the
/// question, the rcode, and the authority records (the SOA).
fn negative_message(negative: NoRecords) -> Message {
    let mut message = Message::response(0, OpCode::Query);
    message.metadata.response_code = negative.response_code;
    message.metadata.recursion_available = true;
    message.metadata.recursion_desired = true;
    message.add_query(*negative.query);
    match (negative.authorities, negative.soa) {
        (Some(authorities), _) => {
            message.add_authorities(authorities.iter().cloned());
        }
        (None, Some(soa)) => {
            message.add_authority(soa.into_record_of_rdata());
        }
        (None, None) => {}
    }
    message
}

/// rustls settings for DoT and DoH: hickory's crypto provider, TLS 1.2+,
/// Mozilla's roots and any given in `--upstream-ca`.
fn tls_config(extra_roots: Option<&[u8]>) -> rustls::ClientConfig {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for certificate in CertificateDer::pem_slice_iter(extra_roots.unwrap_or_default()).flatten() {
        // Checked at startup (config); one rustls refuses is left out.
        let _ = roots.add(certificate);
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(
        hickory_resolver::net::tls::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("the default provider supports the default versions")
    .with_root_certificates(roots)
    .with_no_client_auth()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_parse_as_coredns_forward_writes_them() {
        let plain = |s: &str| Upstream::Plain(s.parse().unwrap());
        assert_eq!(Upstream::parse("10.0.0.2"), Ok(plain("10.0.0.2:53")));
        assert_eq!(Upstream::parse("[::1]:5353"), Ok(plain("[::1]:5353")));
        assert_eq!(Upstream::parse("::1"), Ok(plain("[::1]:53")));
        assert_eq!(
            Upstream::parse("tls://9.9.9.9#dns.quad9.net"),
            Ok(Upstream::Tls {
                addr: "9.9.9.9:853".parse().unwrap(),
                server_name: "dns.quad9.net".into(),
            })
        );
        let https = Upstream::parse("https://[2620:fe::fe]:8443#dns.quad9.net").unwrap();
        assert_eq!(
            https.to_string(),
            "https://[2620:fe::fe]:8443/dns-query#dns.quad9.net"
        );
        let https = Upstream::parse("https://1.1.1.1/resolve#one.one.one.one").unwrap();
        assert_eq!(
            https.to_string(),
            "https://1.1.1.1:443/resolve#one.one.one.one"
        );
        for bad in [
            "tls://9.9.9.9",
            "tls://dns.quad9.net#x",
            "udp://1.1.1.1",
            "resolver",
            "https://1.1.1.1#bad name",
        ] {
            assert!(Upstream::parse(bad).is_err(), "{bad}");
        }
        assert!(
            Upstream::parse("tls://9.9.9.9")
                .unwrap_err()
                .to_string()
                .contains("after '#'")
        );
    }
}
