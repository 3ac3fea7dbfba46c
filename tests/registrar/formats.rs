//! What other readers read: `--format skydns` read back by disco's
//! `skydns+etcd://` reader, and the DockStack form (`-d … -s …`) with a host
//! as its third field.

use hickory_proto::rr::RecordType;

use crate::cluster::Etcd;
use crate::harness::{FAST, Registrar, TestService, until_answered, until_gone, web_registrar};
use crate::support::{Disco, srv};

#[tokio::test]
async fn skydns_keys_are_answered_by_the_skydns_reader() {
    let etcd = Etcd::start();
    let disco = Disco::start(&[etcd.url("skydns+etcd", "/skydns")]).await;
    let mut web = TestService::start().await;
    let (registry, port) = (etcd.url("etcd", "/skydns"), web.port());
    let _registrar = web_registrar(&registry, &port, &["--format", "skydns"]);
    until_answered(&disco, "web.disco.internal.").await;
    let message = disco.query("web.disco.internal.", RecordType::SRV).await;
    assert_eq!(
        srv(&message),
        [format!("10 100 {port} web-1.web.disco.internal.")]
    );
    web.stop();
    until_gone(&disco, "web.disco.internal.").await;
}

#[tokio::test]
async fn the_dockstack_form_with_a_host_for_a_container() {
    let etcd = Etcd::start();
    let disco = Disco::start(&[etcd.url("etcd", "/base/test")]).await;
    let web = TestService::start().await;
    let registry = etcd.url("etcd", "/base");
    let spec = format!("web:http:127.0.0.1:{}:/test", web.port());
    let mut args = vec!["-d", &registry, "-s", &spec];
    args.extend(&FAST[..8]);
    // No container of that name, so the field is the host to check.
    let registrar = Registrar::start(&args);
    until_answered(&disco, "web.disco.internal.").await;
    assert!(
        registrar.log().contains("registering the field as a host"),
        "{}",
        registrar.log()
    );
}
