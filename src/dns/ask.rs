//! A small DNS client for `disco wait`: one question over UDP to one server,
//! the A and AAAA addresses of the answer back. It asks DNS as a
//! container's own resolver would (the resolv.conf search list and
//! `ndots`), never the store, so that what it waits for is what the
//! application will see.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::net::UdpSocket;

use super::NameError;

/// What one name looked like when last asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// Nothing asked yet.
    Nothing,
    /// The server answered with these addresses (A and AAAA together; none
    /// is NODATA).
    Addresses(Vec<IpAddr>),
    /// The server answered with an error code (`NXDOMAIN`, `SERVFAIL`, …).
    Code(String),
    /// No answer came in time, or none could be read.
    NoReply(String),
}

impl std::fmt::Display for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Seen::Nothing => f.write_str("nothing yet"),
            Seen::Addresses(addresses) if addresses.is_empty() => {
                f.write_str("no address (NODATA)")
            }
            Seen::Addresses(addresses) => {
                let list: Vec<String> = addresses.iter().map(IpAddr::to_string).collect();
                let plural = if list.len() == 1 { "" } else { "es" };
                write!(f, "{} address{plural} ({})", list.len(), list.join(", "))
            }
            Seen::Code(code) => f.write_str(code),
            Seen::NoReply(why) => write!(f, "no reply ({why})"),
        }
    }
}

/// The resolver settings `disco wait` reads from resolv.conf: where to ask
/// and how a short name is completed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvConf {
    /// The `nameserver` lines, port 53.
    pub nameservers: Vec<SocketAddr>,
    /// The `search` (or `domain`) list.
    pub search: Vec<String>,
    /// `options ndots:N` (1 when unset, as glibc).
    pub ndots: usize,
}

impl ResolvConf {
    /// Parses resolv.conf text; unknown lines are ignored, as the libc
    /// resolver ignores them.
    pub fn parse(text: &str) -> ResolvConf {
        let mut conf = ResolvConf {
            ndots: 1,
            ..ResolvConf::default()
        };
        for line in text.lines() {
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => {
                    if let Some(ip) = words
                        .next()
                        .and_then(|w| w.split('%').next())
                        .and_then(|w| w.parse::<IpAddr>().ok())
                    {
                        conf.nameservers.push(SocketAddr::new(ip, 53));
                    }
                }
                // The last of `search` and `domain` wins, as in glibc.
                Some("search") | Some("domain") => {
                    conf.search = words.map(|w| w.trim_end_matches('.').to_owned()).collect();
                }
                Some("options") => {
                    for option in words {
                        if let Some(n) = option.strip_prefix("ndots:").and_then(|n| n.parse().ok())
                        {
                            conf.ndots = std::cmp::min(n, 15);
                        }
                    }
                }
                _ => {}
            }
        }
        conf
    }

    /// The absolute names `name` is asked as, in order: as given first
    /// when it has at least `ndots` dots, else after the search list (a
    /// trailing dot means exactly that name).
    pub fn candidates(&self, name: &str) -> Vec<String> {
        if let Some(absolute) = name.strip_suffix('.') {
            return vec![absolute.to_owned()];
        }
        let searched = self.search.iter().map(|domain| format!("{name}.{domain}"));
        if name.matches('.').count() >= self.ndots {
            std::iter::once(name.to_owned()).chain(searched).collect()
        } else {
            searched.chain(std::iter::once(name.to_owned())).collect()
        }
    }
}

/// Asks `server` for the A and AAAA records of `name` (absolute, without
/// the trailing dot), each question waiting at most `timeout`.
pub async fn addresses(server: SocketAddr, name: &str, timeout: Duration) -> Seen {
    let (a, aaaa) = tokio::join!(
        ask(server, name, RecordType::A, timeout),
        ask(server, name, RecordType::AAAA, timeout)
    );
    match (a, aaaa) {
        (Seen::Addresses(mut v4), Seen::Addresses(v6)) => {
            v4.extend(v6);
            v4.sort();
            Seen::Addresses(v4)
        }
        // An address of either family is an answer; an error on both is
        // the first's.
        (Seen::Addresses(mut found), _) | (_, Seen::Addresses(mut found)) if !found.is_empty() => {
            found.sort();
            Seen::Addresses(found)
        }
        (Seen::Addresses(_), other) | (other, _) => other,
    }
}

/// Whether `name` is a name DNS can ask for.
pub fn valid_name(name: &str) -> Result<(), NameError> {
    let trimmed = name.trim_end_matches('.');
    if trimmed.is_empty() || trimmed.split('.').any(str::is_empty) {
        return Err(NameError::EmptyLabel);
    }
    Name::from_ascii(name)
        .map(|_| ())
        .map_err(|e| NameError::Invalid(e.to_string()))
}

async fn ask(server: SocketAddr, name: &str, rtype: RecordType, timeout: Duration) -> Seen {
    match tokio::time::timeout(timeout, exchange(server, name, rtype)).await {
        Ok(Ok(seen)) => seen,
        Ok(Err(error)) => Seen::NoReply(error.to_string()),
        Err(_) => Seen::NoReply(format!("{server} did not answer within {timeout:?}")),
    }
}

/// One question over UDP: what came back, or the socket's error (a name
/// that cannot be asked is an `InvalidInput` error naming it).
async fn exchange(server: SocketAddr, name: &str, rtype: RecordType) -> std::io::Result<Seen> {
    let qname = Name::from_ascii(format!("{name}.")).map_err(|e| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{name}: {e}"))
    })?;
    let id: u16 = rand::random();
    let mut query = Message::new(id, MessageType::Query, OpCode::Query);
    query.metadata.recursion_desired = true;
    query.add_query(Query::query(qname.clone(), rtype));
    let bytes = query.to_vec().map_err(std::io::Error::other)?;
    let bind: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().expect("an address")
    } else {
        "[::]:0".parse().expect("an address")
    };
    let socket = UdpSocket::bind(bind).await?;
    socket.connect(server).await?;
    socket.send(&bytes).await?;
    let mut buffer = vec![0u8; 65535];
    loop {
        let n = socket.recv(&mut buffer).await?;
        // Anything but the answer to this question (a late reply to an
        // earlier one, garbage) is skipped.
        let Ok(response) = Message::from_vec(&buffer[..n]) else {
            continue;
        };
        if response.metadata.id != id
            || response.metadata.message_type != MessageType::Response
            || response.queries.first().map(|q| q.name()) != Some(&qname)
        {
            continue;
        }
        return Ok(match response.metadata.response_code {
            ResponseCode::NoError => Seen::Addresses(
                response
                    .answers
                    .iter()
                    .filter_map(|record| match &record.data {
                        RData::A(a) => Some(IpAddr::V4(a.0)),
                        RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
                        _ => None,
                    })
                    .collect(),
            ),
            ResponseCode::NXDomain => Seen::Code("NXDOMAIN".to_owned()),
            ResponseCode::ServFail => Seen::Code("SERVFAIL".to_owned()),
            ResponseCode::Refused => Seen::Code("REFUSED".to_owned()),
            ResponseCode::FormErr => Seen::Code("FORMERR".to_owned()),
            code => Seen::Code(format!("{code} (rcode {})", u16::from(code))),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_gives_servers_search_list_and_ndots() {
        let conf = ResolvConf::parse(
            "# docker\nnameserver 127.0.0.11\nnameserver fe80::1%eth0\nsearch disco.internal example.com.\noptions ndots:2 timeout:1\n",
        );
        assert_eq!(
            conf.nameservers,
            [
                "127.0.0.11:53".parse().unwrap(),
                "[fe80::1]:53".parse().unwrap()
            ]
        );
        assert_eq!(conf.search, ["disco.internal", "example.com"]);
        assert_eq!(conf.ndots, 2);
        assert_eq!(ResolvConf::parse("").ndots, 1);
    }

    #[test]
    fn short_names_go_through_the_search_list_first() {
        let conf = ResolvConf::parse("search disco.internal\n");
        assert_eq!(conf.candidates("db"), ["db.disco.internal", "db"]);
        assert_eq!(
            conf.candidates("primary.db"),
            ["primary.db", "primary.db.disco.internal"]
        );
        assert_eq!(conf.candidates("db.disco.internal."), ["db.disco.internal"]);
    }

    #[test]
    fn what_was_seen_reads_as_a_sentence() {
        let two = Seen::Addresses(vec![
            "10.0.0.1".parse().unwrap(),
            "fd00::1".parse().unwrap(),
        ]);
        assert_eq!(two.to_string(), "2 addresses (10.0.0.1, fd00::1)");
        assert_eq!(Seen::Addresses(vec![]).to_string(), "no address (NODATA)");
        assert_eq!(Seen::Code("NXDOMAIN".into()).to_string(), "NXDOMAIN");
    }
}
