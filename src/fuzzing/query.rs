//! Any bytes, as a UDP or TCP query, against the [`fixture`] snapshot and
//! a second static zone: disco must never panic, and whatever it sends must
//! be a well-formed response to that query that fits the transport (see
//! [`ask::answer_checked`]).

use std::sync::OnceLock;

use super::{ask, fixture};
use crate::dns::Responder;

/// A second zone, whose CNAMEs lead into the served domain and out of
/// every zone (completed through the forwarder, for clients that may
/// recurse).
const OTHER_ZONE: (&str, &str) = (
    "example.internal.zone",
    "$TTL 60\n@ IN SOA ns hostmaster 1 3600 600 86400 5\nwww IN A 192.0.2.1\n\
     alias IN CNAME www\nchain IN CNAME alias\nout IN CNAME www.example.com.\n\
     tagged IN CNAME primary.web.disco.internal.\ngone IN CNAME nothing.disco.internal.\n",
);

fn responder() -> &'static Responder {
    static RESPONDER: OnceLock<Responder> = OnceLock::new();
    RESPONDER.get_or_init(|| {
        let zones = fixture::zone_files(&[fixture::ZONE_FILE, OTHER_ZONE]);
        fixture::responder(fixture::snapshot(&fixture::fleet(), zones), true)
    })
}

/// Answers `data` over UDP and over TCP, from a client that may recurse.
pub fn run(data: &[u8]) {
    ask::answer_checked(responder(), data);
}
