//! Encrypted upstreams: DNS over TLS (RFC 7858) and over HTTPS (RFC 8484)
//! to Debian's unbound, with a certificate from a CA the test makes and
//! hands disco with `--upstream-ca`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use crate::support::*;
use crate::unbound::{Unbound, free_port};

/// The name on unbound's certificate.
const SERVER_NAME: &str = "dns.test";

/// A CA (`ca.pem`) and a certificate for [`SERVER_NAME`] it signed
/// (`cert.pem`, `key.pem`), written into `dir`.
fn write_certificates(dir: &std::path::Path) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec![SERVER_NAME.to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
}

/// unbound answering `www.tls.test.` (192.0.2.53) from local data, plain on
/// one port, over TLS on another, over HTTPS on a third.
struct EncryptedUpstream {
    unbound: Unbound,
    tls: SocketAddr,
    https: SocketAddr,
    ca: PathBuf,
}

async fn encrypted_upstream() -> EncryptedUpstream {
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let (plain, tls, https) = (free_port(ip), free_port(ip), free_port(ip));
    let mut ca = PathBuf::new();
    let unbound = Unbound::start(SocketAddr::new(ip, plain), |dir| {
        write_certificates(dir);
        ca = dir.join("ca.pem");
        format!(
            r#"    interface: {ip}@{tls}
    interface: {ip}@{https}
    tls-port: {tls}
    https-port: {https}
    tls-service-key: "{dir}/key.pem"
    tls-service-pem: "{dir}/cert.pem"
    local-zone: "tls.test." static
    local-data: "www.tls.test. 60 IN A 192.0.2.53"
"#,
            dir = dir.display(),
        )
    });
    unbound.wait_ready().await;
    EncryptedUpstream {
        unbound,
        tls: SocketAddr::new(ip, tls),
        https: SocketAddr::new(ip, https),
        ca,
    }
}

/// A disco forwarding to `upstream` only, trusting the test's CA.
async fn forwarding_to(upstream: String, ca: &Path) -> TestServer {
    TestServer::start_with(vec![], &[], |args| {
        args.upstream = vec![upstream];
        args.upstream_ca = Some(ca.to_owned());
    })
    .await
}

#[tokio::test]
async fn dns_over_tls_upstreams_answer_and_are_cached() {
    let upstream = encrypted_upstream().await;
    // unbound itself answers the name (plain DNS), as the reference.
    assert_eq!(
        answers(&upstream.unbound.ask("www.tls.test.", RecordType::A).await),
        ["192.0.2.53"]
    );
    let server = forwarding_to(
        format!("tls://{}#{SERVER_NAME}", upstream.tls),
        &upstream.ca,
    )
    .await;
    let first = server.udp("www.tls.test.", RecordType::A).await;
    assert_eq!(rcode(&first), ResponseCode::NoError);
    assert_eq!(answers(&first), ["192.0.2.53"]);
    let missing = server.tcp("nope.tls.test.", RecordType::A).await;
    assert_eq!(rcode(&missing), ResponseCode::NXDomain);
    let again = server.udp("www.tls.test.", RecordType::A).await;
    assert_eq!(answers(&again), ["192.0.2.53"]);
    assert!(
        server
            .metrics_text()
            .await
            .contains("disco_forward_cache_hits_total 1")
    );
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused() {
    let upstream = encrypted_upstream().await;
    let server = forwarding_to(format!("tls://{}#other.test", upstream.tls), &upstream.ca).await;
    let failed = server.tcp("www.tls.test.", RecordType::A).await;
    assert_eq!(rcode(&failed), ResponseCode::ServFail);
}

#[tokio::test]
async fn dns_over_https_upstreams_answer() {
    let upstream = encrypted_upstream().await;
    let server = forwarding_to(
        format!("https://{}/dns-query#{SERVER_NAME}", upstream.https),
        &upstream.ca,
    )
    .await;
    let answer = server.udp("www.tls.test.", RecordType::A).await;
    assert_eq!(rcode(&answer), ResponseCode::NoError);
    assert_eq!(answers(&answer), ["192.0.2.53"]);
}
