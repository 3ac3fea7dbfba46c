//! hickory-server as a reference: its `Catalog` of in-memory zones loaded
//! with records. The [`differential`](super::differential) target loads the
//! RRsets of a disco snapshot ([`Snapshot::rrsets`]), so that both answer
//! from the same records, and asks it in-process;
//! `tests/integration/hickory_parity.rs` loads records a zone file of its
//! own states, independent of disco's snapshot, and serves it over sockets.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use futures_util::{FutureExt, StreamExt};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Name, RData, Record};
use hickory_server::net::BufDnsStreamHandle;
use hickory_server::net::runtime::TokioTime;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandle};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};

use crate::dns::Snapshot;
use crate::dns::snapshot::RrSet;

/// A catalog serving `rrsets` in zones for the served domain `domain` and
/// the two reverse trees. The served domain's SOA comes from the RRsets;
/// the reverse trees, where disco answers PTR without an SOA of its own,
/// get a placeholder one, which only their negative answers show.
///
/// # Panics
/// When a record lies outside those zones, or hickory refuses it.
pub fn catalog(domain: &Name, rrsets: &[RrSet]) -> Catalog {
    records_catalog(domain, rrsets.iter().flat_map(|rrset| &rrset.records))
}

/// [`catalog`] over any `records`, for the served domain `domain`: the
/// served domain's SOA among them, the reverse trees' placeholders added.
///
/// # Panics
/// When a record lies outside those zones, or hickory refuses it.
pub fn records_catalog<'a>(
    domain: &Name,
    records: impl IntoIterator<Item = &'a Record>,
) -> Catalog {
    let reverse = ["in-addr.arpa.", "ip6.arpa."].map(|n| Name::from_ascii(n).expect("a name"));
    let mut zones: Vec<InMemoryZoneHandler> = std::iter::once(domain)
        .chain(&reverse)
        .map(|origin| {
            InMemoryZoneHandler::empty(origin.clone(), ZoneType::Primary, AxfrPolicy::Deny)
        })
        .collect();
    for (zone, origin) in zones[1..].iter_mut().zip(&reverse) {
        assert!(zone.upsert_mut(placeholder_soa(origin), 0));
    }
    for record in records {
        let zone = (zones.iter_mut())
            .find(|zone| Name::from(zone.origin()).zone_of(&record.name))
            .unwrap_or_else(|| panic!("no zone holds {}", record.name));
        assert!(zone.upsert_mut(record.clone(), 0), "{record} rejected");
    }
    let mut catalog = Catalog::new();
    for zone in zones {
        catalog.upsert(zone.origin().clone(), vec![Arc::new(zone)]);
    }
    catalog
}

/// [`catalog`] over `snapshot`'s RRsets, for the domain it serves.
pub fn catalog_of(domain: &Name, snapshot: &Snapshot) -> Catalog {
    catalog(domain, &snapshot.rrsets())
}

fn placeholder_soa(origin: &Name) -> Record {
    let name = |label: &str| {
        (Name::from_ascii(label).and_then(|n| n.append_domain(origin))).expect("a short name")
    };
    let soa = SOA::new(name("ns"), name("hostmaster"), 1, 3600, 600, 86400, 5);
    Record::from_rdata(origin.clone(), 3600, RData::SOA(soa))
}

/// `catalog`'s response to `packet` as if it came over TCP from loopback,
/// or `None` when hickory cannot read it as a request (it then sends
/// nothing, or FORMERR from its server loop, which this skips).
///
/// # Panics
/// When the catalog's lookup does not complete at once: an in-memory zone
/// never waits.
pub fn respond(catalog: &Catalog, packet: &[u8]) -> Option<Vec<u8>> {
    let client = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 53);
    let request = Request::from_bytes(packet.to_vec(), client, Protocol::Tcp).ok()?;
    let (stream, mut sent) = BufDnsStreamHandle::new(client);
    let handle = ResponseHandle::new(client, stream, Protocol::Tcp);
    catalog
        .handle_request::<_, TokioTime>(&request, handle)
        .now_or_never()
        .expect("an in-memory lookup completes at once");
    let message = sent.next().now_or_never().flatten()?;
    Some(message.into_parts().0)
}
