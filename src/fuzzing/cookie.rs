//! Any bytes as a COOKIE option's data (RFC 7873), read by hand in
//! `dns::packet`: read alone, checked and answered by `dns::cookie`, and
//! sent in a query to a responder that rate limits every client, so that
//! answers, slips and BADCOOKIE all come up. disco must never panic; a
//! server cookie it gives must be valid when sent back, from the same
//! address only; every response must be one [`ask::answer_checked`]
//! accepts.

use std::net::IpAddr;
use std::sync::OnceLock;

use hickory_proto::rr::{Name, RecordType};

use super::{ask, fixture};
use crate::dns::Responder;
use crate::dns::cookie::{CookieCheck, CookieSecret};
use crate::dns::packet::Cookie;
use crate::dns::rrl::RrlConfig;

fn responder() -> &'static Responder {
    static RESPONDER: OnceLock<Responder> = OnceLock::new();
    RESPONDER.get_or_init(|| {
        let snapshot = fixture::snapshot(&fixture::fleet(), fixture::zone_files(&[]));
        // Low rates and no one exempt: the fuzzer's queries reach every
        // verdict.
        let limits = RrlConfig {
            responses: 3,
            nxdomains: 3,
            errors: 3,
            ..RrlConfig::with_exempt(Vec::new())
        };
        fixture::responder(snapshot, false).with_rate_limit(&limits)
    })
}

fn secret() -> &'static CookieSecret {
    static SECRET: OnceLock<CookieSecret> = OnceLock::new();
    SECRET.get_or_init(|| CookieSecret::new([7; 16], Some([9; 16])))
}

/// Reads `data` as a COOKIE option, answers it, and asks a responder with
/// it in a query.
pub fn run(data: &[u8]) {
    let client: IpAddr = "192.0.2.1".parse().expect("an address");
    if let Some(cookie) = Cookie::parse(data) {
        assert_eq!(cookie.client, data[..8], "the client cookie as sent");
        assert_eq!(cookie.server(), &data[8..], "the server cookie as sent");
        let (_, reply) = secret().answer(&cookie, client);
        assert_eq!(reply[..8], data[..8], "the client cookie echoed");
        let returned = Cookie::parse(&reply).expect("disco's cookie reads back");
        let (check, _) = secret().answer(&returned, client);
        assert_eq!(check, CookieCheck::Valid, "disco's own cookie, sent back");
        let elsewhere: IpAddr = "192.0.2.2".parse().expect("an address");
        let (check, _) = secret().answer(&returned, elsewhere);
        assert_eq!(check, CookieCheck::Invalid, "from another address");
    } else {
        assert!(
            data.len() < 8 || (9..16).contains(&data.len()) || data.len() > 40,
            "a cookie of {} bytes refused",
            data.len()
        );
    }
    let name = Name::from_ascii(fixture::DOMAIN).expect("the fixture's domain");
    let mut query = ask::query_packet(&name, RecordType::SOA, Some(1232));
    let Ok(len) = u16::try_from(data.len()) else {
        return;
    };
    let at = query.len() - 2;
    query[at..].copy_from_slice(&(len.saturating_add(4)).to_be_bytes());
    query.extend_from_slice(&[0, 10]);
    query.extend_from_slice(&len.to_be_bytes());
    query.extend_from_slice(data);
    ask::answer_checked(responder(), &query);
}
