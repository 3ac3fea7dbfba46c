//! A service's life as the registrar sees it: published after `rise`
//! passing checks, withdrawn after `fall` failures, back when it is; gone
//! at once at SIGTERM (exit 0, after `--drain`); gone with the lease after
//! SIGKILL.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::cluster::Etcd;
use crate::harness::{Registrar, TestService, answered, until_answered, until_gone, web_registrar};
use crate::support::Disco;

const NAME: &str = "web-1.web.disco.internal.";

/// etcd, disco watching it, a web service and a registrar checking it.
async fn setup(extra: &[&str]) -> (Etcd, Disco, TestService, Registrar) {
    let etcd = Etcd::start();
    let registry = etcd.url("etcd", "/disco");
    let disco = Disco::start(std::slice::from_ref(&registry)).await;
    let web = TestService::start().await;
    let (port, url) = (web.port(), web.url());
    let mut flags = vec!["--check", &url, "--http-body", "ok", "--check", "tcp"];
    flags.extend(extra);
    let registrar = web_registrar(&registry, &port, &flags);
    (etcd, disco, web, registrar)
}

#[tokio::test]
async fn published_after_rise_withdrawn_after_fall_and_back_again() {
    let (_etcd, disco, mut web, registrar) = setup(&[]).await;
    until_answered(&disco, NAME).await;

    web.stop();
    let stopped = Instant::now();
    until_gone(&disco, NAME).await;
    // fall (2) × interval (200 ms), plus the check and the watch: well
    // under a second, bounded by what a loaded 2-core machine meets, and
    // still far below a lease running out (the default --ttl, 10 s).
    assert!(
        stopped.elapsed() < Duration::from_secs(5),
        "{:?}",
        stopped.elapsed()
    );

    web.restart().await;
    until_answered(&disco, NAME).await;

    // Answering, but not 2xx: failed too.
    web.set_healthy(false);
    until_gone(&disco, NAME).await;
    web.set_healthy(true);
    until_answered(&disco, NAME).await;
    let log = registrar.log();
    assert!(
        log.contains("unhealthy") && log.contains("answered 503"),
        "{log}"
    );
}

#[tokio::test]
async fn sigterm_withdraws_at_once_then_drains_and_exits_0() {
    // A drain long enough that "withdrawn before it ends" leaves seconds of
    // margin on a loaded machine (the withdrawal itself takes milliseconds).
    let drain = Duration::from_secs(4);
    let (_etcd, disco, _web, mut registrar) = setup(&["--drain", "4s"]).await;
    until_answered(&disco, NAME).await;
    let sent = Instant::now();
    registrar.signal(Signal::SIGTERM);
    until_gone(&disco, NAME).await;
    let withdrawn = sent.elapsed();
    assert!(
        withdrawn < drain - Duration::from_secs(1),
        "withdrawn after {withdrawn:?}, not before the {drain:?} drain"
    );
    // Not exited yet: withdrawn first, then drained.
    assert!(
        registrar.still_running(),
        "exited before --drain:\n{}",
        registrar.log()
    );
    let status = registrar.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "{status}:\n{}", registrar.log());
    assert!(sent.elapsed() >= drain, "exited before --drain");
}

#[tokio::test]
async fn sigkill_leaves_the_registration_to_expire_with_its_lease() {
    let (_etcd, disco, _web, mut registrar) = setup(&["--ttl", "2s"]).await;
    until_answered(&disco, NAME).await;
    let killed = Instant::now();
    registrar.signal(Signal::SIGKILL);
    registrar.wait_exit(Duration::from_secs(5));
    assert!(
        answered(&disco, NAME).await,
        "gone before the lease expired"
    );
    until_gone(&disco, NAME).await;
    // Gone with the lease: about the TTL after the kill (etcd checks for
    // expired leases every 500 ms), with a margin for a loaded machine.
    let took = killed.elapsed();
    assert!(
        took <= Duration::from_secs(6),
        "gone {took:?} after SIGKILL, TTL 2 s"
    );
}
