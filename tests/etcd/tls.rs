//! `etcds://`: a CA, a server and a client certificate made at test time,
//! and an etcd that accepts only clients with a certificate from that CA.

use std::path::{Path, PathBuf};

use etcd_client::{Certificate, Identity, TlsOptions};
use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::cluster::Etcd;
use crate::support::{Disco, assert_lists_then_watches, register};

/// PEM files of a test CA and the certificates it signed.
pub struct Certs {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    _dir: tempfile::TempDir,
}

impl Certs {
    /// A CA, a server certificate for 127.0.0.1, a client certificate.
    pub fn new() -> Certs {
        let dir = tempfile::tempdir().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf = |names: Vec<String>, usage: ExtendedKeyUsagePurpose| {
            let mut params = CertificateParams::new(names).unwrap();
            params.extended_key_usages = vec![usage];
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, &issuer).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert, server_key) = leaf(
            vec!["127.0.0.1".into(), "localhost".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client_cert, client_key) =
            leaf(vec!["disco".into()], ExtendedKeyUsagePurpose::ClientAuth);
        let write = |name: &str, text: &str| -> PathBuf {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        Certs {
            ca: write("ca.pem", &ca_cert.pem()),
            server_cert: write("server.pem", &server_cert),
            server_key: write("server-key.pem", &server_key),
            client_cert: write("client.pem", &client_cert),
            client_key: write("client-key.pem", &client_key),
            _dir: dir,
        }
    }

    /// TLS options for the test's own etcd client.
    pub fn client_tls(&self) -> TlsOptions {
        let read = |path: &Path| std::fs::read(path).unwrap();
        TlsOptions::new()
            .ca_certificate(Certificate::from_pem(read(&self.ca)))
            .identity(Identity::from_pem(
                read(&self.client_cert),
                read(&self.client_key),
            ))
    }
}

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
        args.etcd_ca = Some(ca);
        args.etcd_cert = Some(cert);
        args.etcd_key = Some(keyfile);
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
        args.etcd_ca = Some(ca);
    })
    .await;
    disco.until_ready_says("\"stale\":true").await;
    let (status, body) = disco.ready().await;
    assert_eq!(status, 503, "{body}");
    disco.stop().await;
}
