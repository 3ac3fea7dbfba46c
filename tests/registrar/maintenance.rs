//! The maintenance file: withdrawn while it exists, back when it is gone,
//! and never published by a registrar started while it exists.

use std::time::Duration;

use crate::cluster::Etcd;
use crate::harness::{TestService, answered, until_answered, until_gone, web_registrar};
use crate::support::Disco;

const NAME: &str = "web-1.web.disco.internal.";

#[tokio::test]
async fn withdrawn_while_the_file_exists_even_across_a_restart() {
    let etcd = Etcd::start();
    let registry = etcd.url("etcd", "/disco");
    let disco = Disco::start(std::slice::from_ref(&registry)).await;
    let web = TestService::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("maintenance");
    let (port, file_arg) = (web.port(), file.display().to_string());
    let flags = ["--maintenance-file", file_arg.as_str()];
    let registrar = web_registrar(&registry, &port, &flags);
    until_answered(&disco, NAME).await;

    std::fs::write(&file, "").unwrap();
    until_gone(&disco, NAME).await;
    drop(registrar);

    // Restarted during maintenance: healthy, but never published.
    let registrar = web_registrar(&registry, &port, &flags);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !answered(&disco, NAME).await,
        "published during maintenance"
    );
    std::fs::remove_file(&file).unwrap();
    until_answered(&disco, NAME).await;
    assert!(
        registrar.log().contains("maintenance"),
        "{}",
        registrar.log()
    );
}
