//! `disco registrar` publishing to ZooKeeper, read back by `disco serve`:
//! the real registrar binary, a real web service it checks, real
//! ZooKeeper. Native ephemeral nodes and Nerve's ephemeral sequential ones;
//! a lingering node of an older session taken over; re-registration after
//! a node deleted by hand and after the session expired; the session
//! closed at SIGTERM; the DockStack form from two hosts.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::rr::RecordType;
use nix::sys::signal::Signal;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use zookeeper_client::CreateMode;

use crate::harness::{
    FAST, Registrar, TestService, stays_answered, until_answered, until_gone, web_registrar,
};
use crate::server::{SHORT_SESSION, ZooKeeper};
use crate::support::{
    CONVERGE, Disco, client, create, delete, eventually, node, ok, registration, srv,
};

const NAME: &str = "web-1.web.disco.internal.";

#[tokio::test]
async fn native_nodes_follow_health_come_back_when_deleted_and_go_at_sigterm() {
    let zk = ZooKeeper::start();
    let registry = zk.url("zk", "/disco");
    let disco = Disco::start(std::slice::from_ref(&registry)).await;
    let web = TestService::start().await;
    let url = web.url();
    let mut registrar = web_registrar(&registry, &web.port(), &["--check", &url]);
    until_answered(&disco, NAME).await;

    web.set_healthy(false);
    until_gone(&disco, NAME).await;
    web.set_healthy(true);
    until_answered(&disco, NAME).await;

    // Deleted by hand: the registrar's watch sees it and writes it again.
    let observer = client(&zk).await;
    delete(&observer, &node("web", "web-1")).await;
    eventually("the node written again", CONVERGE, || async {
        observer
            .check_stat(&node("web", "web-1"))
            .await
            .unwrap()
            .is_some()
    })
    .await;
    until_answered(&disco, NAME).await;

    registrar.signal(Signal::SIGTERM);
    assert!(
        registrar.wait_exit(CONVERGE).success(),
        "{}",
        registrar.log()
    );
    until_gone(&disco, NAME).await;
    // The session is closed, not left to expire: no node lingers.
    assert!(
        observer
            .list_children("/disco/services/web")
            .await
            .unwrap()
            .is_empty()
    );
    disco.stop().await;
}

#[tokio::test]
async fn a_lingering_node_of_an_older_session_is_taken_over() {
    let zk = ZooKeeper::start();
    let registry = zk.url("zk", "/disco");
    // A registrar that died a moment ago: its session has not expired yet.
    let old = client(&zk).await;
    create(
        &old,
        &node("web", "web-1"),
        registration("10.9.9.9", 80).as_bytes(),
        CreateMode::Ephemeral,
    )
    .await;
    let disco = Disco::start(std::slice::from_ref(&registry)).await;
    disco
        .until_answers(NAME, RecordType::A, ok(&["10.9.9.9"]))
        .await;
    let web = TestService::start().await;
    let _registrar = web_registrar(&registry, &web.port(), &["--check", "tcp"]);
    until_answered(&disco, NAME).await;
    // Taken over: the node now belongs to the registrar's session, not
    // merely rewritten under the old one (which would take it along).
    let observer = client(&zk).await;
    let owner = || async {
        let (_, stat) = observer.get_data(&node("web", "web-1")).await.unwrap();
        stat.ephemeral_owner
    };
    let taken = owner().await;
    assert!(
        taken != 0 && taken != old.session_id().0,
        "the node's owner {taken:#x} is still the old session"
    );
    // The old session ending no longer takes the registration with it: the
    // name answers at every query meanwhile, from the same node.
    drop(old);
    stays_answered(&disco, NAME, Duration::from_secs(2)).await;
    assert_eq!(owner().await, taken, "the node was written again");
    disco.stop().await;
}

#[tokio::test]
async fn nerve_nodes_are_written_as_nerve_writes_them() {
    let zk = ZooKeeper::start();
    let disco = Disco::start(&[zk.url("nerve+zk", "/nerve/services")]).await;
    let web = TestService::start().await;
    let registry = zk.url("zk", "/nerve/services");
    let _registrar = web_registrar(
        &registry,
        &web.port(),
        &[
            "--check",
            "tcp",
            "--format",
            "nerve",
            "--meta",
            "az=us-east-1a",
        ],
    );
    until_answered(&disco, NAME).await;
    assert_eq!(
        disco
            .answers("az-us-east-1a.web.disco.internal.", RecordType::A)
            .await,
        ok(&["127.0.0.1"])
    );
    // What Synapse reads: one ephemeral sequential child, Nerve's JSON.
    let observer = client(&zk).await;
    let children = observer
        .list_children("/nerve/services/web/services")
        .await
        .unwrap();
    assert_eq!(children.len(), 1, "{children:?}");
    let name = &children[0];
    let sequence = name.strip_prefix("web-1_").expect("<instance>_<seq>");
    assert!(
        sequence.len() == 10 && sequence.bytes().all(|b| b.is_ascii_digit()),
        "{name}"
    );
    let (data, stat) = observer
        .get_data(&format!("/nerve/services/web/services/{name}"))
        .await
        .unwrap();
    assert_ne!(stat.ephemeral_owner, 0, "ephemeral");
    let json: serde_json::Value = serde_json::from_slice(&data).unwrap();
    assert_eq!(json["host"], "127.0.0.1");
    assert_eq!(json["port"], web.addr.port());
    assert_eq!(json["name"], "web-1");
    assert_eq!(json["labels"]["az"], "us-east-1a");
    // disco's one extension, which Synapse ignores: the service's name.
    assert_eq!(json["service"], "web");
    disco.stop().await;
}

#[tokio::test]
async fn after_its_session_expired_the_registrar_registers_again() {
    let zk = ZooKeeper::start_short_sessions();
    let registry = zk.url("zk", "/disco");
    let disco = Disco::start(std::slice::from_ref(&registry)).await;
    let web = TestService::start().await;
    let registrar = web_registrar(&registry, &web.port(), &["--check", "tcp", "--ttl", "2s"]);
    until_answered(&disco, NAME).await;

    // Frozen past its session timeout: ZooKeeper expires the session and
    // deletes its node.
    registrar.signal(Signal::SIGSTOP);
    until_gone(&disco, NAME).await;
    tokio::time::sleep(SHORT_SESSION / 2).await;
    registrar.signal(Signal::SIGCONT);
    // Thawed, it finds its session expired, opens a new one, registers.
    until_answered(&disco, NAME).await;
    disco.stop().await;
}

/// A TCP service on `addr` that accepts and closes: all a `tcp` check asks
/// of a database.
fn accepting(listener: TcpListener) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream);
        }
    })
}

/// One port free on both `a` and `b`: two hosts running the same service.
async fn one_port_on(a: IpAddr, b: IpAddr) -> (TcpListener, TcpListener) {
    for _ in 0..20 {
        let first = TcpListener::bind(SocketAddr::new(a, 0)).await.unwrap();
        let port = first.local_addr().unwrap().port();
        if let Ok(second) = TcpListener::bind(SocketAddr::new(b, port)).await {
            return (first, second);
        }
    }
    panic!("no port free on both {a} and {b}");
}

#[tokio::test]
async fn two_hosts_registering_one_service_in_the_dockstack_form_both_answer() {
    let zk = ZooKeeper::start();
    let disco = Disco::start(&[zk.url("nerve+zk", "/nerve")]).await;
    // Two hosts, one machine's registrars: the same host name, the same
    // port, two addresses.
    let hosts: [IpAddr; 2] = ["127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap()];
    let (first, second) = one_port_on(hosts[0], hosts[1]).await;
    let port = first.local_addr().unwrap().port();
    let _services = [accepting(first), accepting(second)];
    let registry = zk.url("zk", "/nerve");
    let _registrars = hosts.map(|host| {
        // No container is called 127.0.0.2: the field is the host.
        let spec = format!("mysql:tcp:{host}:{port}:/test");
        let mut args = vec!["-d", &registry, "-s", &spec];
        args.extend(&FAST[..8]);
        Registrar::start(&args)
    });
    let both = ok(&["127.0.0.2", "127.0.0.3"]);
    disco
        .until_answers("mysql.disco.internal.", RecordType::A, both.clone())
        .await;
    // And stays so: neither registrar takes the other's node for an older
    // session of its own.
    disco
        .answers_steadily("mysql.disco.internal.", RecordType::A, &both)
        .await;
    let message = disco.query("mysql.disco.internal.", RecordType::SRV).await;
    assert_eq!(
        srv(&message),
        [
            format!("0 100 {port} 127-0-0-2-{port}.mysql.disco.internal."),
            format!("0 100 {port} 127-0-0-3-{port}.mysql.disco.internal."),
        ]
    );
    // What Synapse reads in /nerve/test: a node per host.
    let observer = client(&zk).await;
    let mut children = observer.list_children("/nerve/test").await.unwrap();
    children.sort();
    assert_eq!(children.len(), 2, "{children:?}");
    for (child, host) in children.iter().zip(["127-0-0-2", "127-0-0-3"]) {
        assert!(
            child.starts_with(&format!("{host}-{port}_")),
            "{children:?}"
        );
    }
    disco.stop().await;
}
