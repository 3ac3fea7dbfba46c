//! A site resolver delegating the zone to disco: Debian's unbound, with a
//! stub zone for `disco.internal.` pointing at disco and `stub-prime: yes`,
//! so that unbound first asks disco for the zone's NS and then sends every
//! query to the address the NS's glue gives, on port 53.

use std::net::{Ipv4Addr, SocketAddr};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::support::*;
use crate::unbound::{Unbound, free_port};

/// A loopback address of this test's own: a delegation reaches disco on
/// port 53, which other tests and servers on this machine must not share.
fn own_loopback() -> Ipv4Addr {
    let [a, b]: [u8; 2] = rand::random();
    Ipv4Addr::new(127, 53, a, b.max(1))
}

/// unbound on `listen`, with `disco.internal.` a primed stub zone whose
/// stub address is `disco`.
fn site_resolver(listen: SocketAddr, disco: SocketAddr) -> Unbound {
    Unbound::start(listen, |_| {
        format!(
            r#"    # disco is on loopback, which unbound refuses to query by default.
    do-not-query-localhost: no
    domain-insecure: "disco.internal."
stub-zone:
    name: "disco.internal."
    stub-addr: {disco_ip}@{disco_port}
    stub-prime: yes
"#,
            disco_ip = disco.ip(),
            disco_port = disco.port(),
        )
    })
}

#[tokio::test]
async fn a_resolver_with_a_primed_stub_zone_resolves_through_disco() {
    let ip = own_loopback();
    let server = TestServer::start_with(
        vec![
            instance("web", "web-1", r#"{"address":"10.0.0.5","port":8080}"#),
            instance("web", "web-2", r#"{"address":"10.0.0.6","port":8080}"#),
        ],
        &[],
        |args| args.listen = vec![format!("{ip}:53")],
    )
    .await;
    let unbound = site_resolver(SocketAddr::new(ip.into(), free_port(ip.into())), server.dns);
    unbound.wait_ready().await;

    let a = unbound.ask("web.disco.internal.", RecordType::A).await;
    assert_eq!(rcode(&a), ResponseCode::NoError, "{a:?}");
    assert_eq!(answers(&a), ["10.0.0.5", "10.0.0.6"]);

    let srv = unbound.ask("web.disco.internal.", RecordType::SRV).await;
    assert_eq!(
        answers(&srv),
        [
            "0 100 8080 web-1.web.disco.internal.",
            "0 100 8080 web-2.web.disco.internal."
        ]
    );

    let nxdomain = unbound.ask("nope.disco.internal.", RecordType::A).await;
    assert_eq!(rcode(&nxdomain), ResponseCode::NXDomain);
    assert!(authority_soa(&nxdomain).is_some(), "{nxdomain:?}");

    let nodata = unbound.ask("web.disco.internal.", RecordType::MX).await;
    assert_eq!(
        (rcode(&nodata), nodata.answers.len()),
        (ResponseCode::NoError, 0)
    );
    assert!(authority_soa(&nodata).is_some(), "{nodata:?}");

    // unbound primed the stub: it asked disco for the NS and its address.
    let metrics = server.metrics_text().await;
    assert!(
        metrics.contains(r#"disco_queries_total{qtype="NS",rcode="NOERROR"}"#),
        "{metrics}"
    );
}
