//! The maintenance file: withdrawn while it exists, back when it is gone,
//! and never published by a registrar started while it exists.

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

    // Restarted during maintenance: healthy, but never published. Its own
    // endpoints say when rounds of checks have run: rise (2) to become
    // healthy, then two more for a publication to have been written and
    // reached disco, had there been one.
    let http = ["--http-listen", "127.0.0.1:0"];
    let registrar = web_registrar(&registry, &port, &[&flags[..], &http].concat());
    registrar.until_checked("web/web-1", 4).await;
    let sample = |name: &str| format!("{name}{{service=\"web/web-1\"}}");
    assert_eq!(
        registrar.metric(&sample("disco_registrar_healthy")).await,
        Some(1.0),
        "healthy after its checks"
    );
    assert_eq!(
        registrar
            .metric(&sample("disco_registrar_publishes_total"))
            .await,
        Some(0.0),
        "never written during maintenance, not even for a moment"
    );
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
