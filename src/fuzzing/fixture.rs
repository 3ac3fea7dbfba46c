//! The data set the targets answer from: every row of DESIGN §2 and a zone
//! file, built into a snapshot by the code `disco serve` uses.
//! `tests/integration/hickory_parity.rs` serves the same data.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::dns::{RecursionAcl, Responder, Snapshot, SnapshotBuilder, ZoneFile, zonefile};
use crate::metrics::Metrics;
use crate::model::{Instance, parse_native};

/// The served domain (`--domain`'s default).
pub const DOMAIN: &str = "disco.internal.";

/// The answer TTL of registrations without one (`--ttl`'s default).
pub const TTL: u32 = 5;

/// The synthesised NS's address, as `--listen 127.0.0.1:…` gives it.
pub const NS_ADDRESS: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The registrations, as (service, instance, native JSON): a service with
/// several instances over IPv4 and IPv6, named ports, tags, metadata,
/// custom TTL, priority and weight; a two-label service; a UDP service;
/// and, without a port (so no SRV), one at web-1's address (so two PTR
/// records there).
pub const REGISTRATIONS: [(&str, &str, &str); 6] = [
    (
        "web",
        "web-1",
        r#"{"address":"10.0.0.5","port":8080,"ports":{"http":8080,"metrics":9100},
            "tags":["v2","primary"],"meta":{"version":"1.4.2","owner":"team-a"}}"#,
    ),
    (
        "web",
        "web-2",
        r#"{"address":"10.0.0.6","port":8080,"ports":{"http":8081},"tags":["v2"],"ttl":60}"#,
    ),
    (
        "web",
        "web-3",
        r#"{"address":"fd00::7","port":8080,"tags":["canary"],"priority":10,"weight":5,
            "ttl":3}"#,
    ),
    (
        "api.billing",
        "b-1",
        r#"{"address":"10.1.0.1","port":9000,"meta":{"team":"billing"}}"#,
    ),
    (
        "dns",
        "d-1",
        r#"{"address":"10.2.0.1","port":53,"protocol":"udp"}"#,
    ),
    ("cache", "c-1", r#"{"address":"10.0.0.5"}"#),
];

/// [`REGISTRATIONS`], parsed.
pub fn fleet() -> Vec<Instance> {
    (REGISTRATIONS.iter())
        .map(|(service, id, json)| {
            parse_native(service, id, json.as_bytes()).expect("the fixture's registrations parse")
        })
        .collect()
}

/// The served domain's zone file, as (file name, text): its own SOA and NS
/// (so that a reference server has the same serial), static records beside
/// the registered ones, CNAMEs to a static and to a registered name, and
/// empty non-terminals.
pub const ZONE_FILE: (&str, &str) = (
    "disco.internal.zone",
    r#"$TTL 30
@         IN SOA   ns hostmaster 2026112201 3600 600 86400 5
          IN NS    ns
          IN MX    10 mail
ns        IN A     127.0.0.1
mail      IN A     192.0.2.25
docs      IN A     192.0.2.10
docs      IN A     192.0.2.11
docs      IN TXT   "owner=platform" "tier=2"
alias     IN CNAME docs
www       IN CNAME web
a.b.deep  IN TXT   "below two empty non-terminals"
"#,
);

/// Zone files given as (file name, text), read as `--zones-dir` reads them.
pub fn zone_files(files: &[(&str, &str)]) -> Vec<ZoneFile> {
    (files.iter())
        .map(|(name, text)| {
            zonefile::parse(Path::new(name), text).expect("the fixture's zone files parse")
        })
        .collect()
}

/// The snapshot `disco serve` builds from `instances` and `zones` with its
/// default flags.
pub fn snapshot(instances: &[Instance], zones: Vec<ZoneFile>) -> Snapshot {
    let mut builder = SnapshotBuilder::new(DOMAIN, zones, TTL, &[NS_ADDRESS]);
    builder.apply(instances.iter().map(|i| (None, Some(Arc::new(i.clone())))));
    builder.snapshot()
}

/// A responder answering from `snapshot`, with an upstream configured or
/// not (`can_forward`), that lets loopback clients recurse.
pub fn responder(snapshot: Snapshot, can_forward: bool) -> Responder {
    let loopback = ["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
    Responder::new(
        Arc::new(ArcSwap::from_pointee(snapshot)),
        RecursionAcl::new(loopback.to_vec()),
        can_forward,
        Arc::new(Metrics::new()),
    )
}
