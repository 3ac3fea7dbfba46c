//! `etcds://`: a CA, a server and a client certificate made at test time,
//! and an etcd that accepts only clients with a certificate from that CA.

use crate::certs::Certs;
use crate::cluster::Etcd;
use crate::support::{Disco, assert_lists_then_watches, register};

#[tokio::test]
async fn etcds_registries_connect_with_the_ca_and_a_client_certificate() {
    let etcd = Etcd::start_tls(Certs::new());
    let certs = etcd.certs().unwrap();
    let (ca, cert, keyfile) = (
        certs.ca.clone(),
        certs.client_cert.clone(),
        certs.client_key.clone(),
    );
    let mut client = etcd.client().await;
    register(&mut client, "web", "web-1", "10.0.0.5", 8080).await;

    let disco = Disco::start_with(&[etcd.url("etcds", "/disco")], &[], |args| {
        args.etcd.etcd_ca = Some(ca);
        args.etcd.etcd_cert = Some(cert);
        args.etcd.etcd_key = Some(keyfile);
    })
    .await;
    assert_lists_then_watches(&disco, &mut client).await;
    disco.stop().await;
}

#[tokio::test]
async fn without_a_client_certificate_the_registry_stays_unsynced_and_says_why() {
    let etcd = Etcd::start_tls(Certs::new());
    let ca = etcd.certs().unwrap().ca.clone();
    let disco = Disco::start_with(&[etcd.url("etcds", "/disco")], &[], |args| {
        args.etcd.etcd_ca = Some(ca);
    })
    .await;
    disco.until_ready_says("\"stale\":true").await;
    let (status, body) = disco.ready().await;
    assert_eq!(status, 503, "{body}");
    disco.stop().await;
}
