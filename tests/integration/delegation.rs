//! A site resolver delegating the zone to disco: Debian's unbound, with a
//! stub zone for `disco.internal.` pointing at disco and `stub-prime: yes`,
//! so that unbound first asks disco for the zone's NS and then sends every
//! query to the address the NS's glue gives, on port 53.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use hickory_net::client::{Client, ClientHandle};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::udp::UdpClientStream;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RecordType};

use crate::support::*;

/// The unbound binary (Debian installs it in /usr/sbin, which a non-root
/// PATH may lack).
fn unbound_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("unbound"))
        .find(|candidate| candidate.is_file())
        .expect("unbound is not installed: apt-get install unbound (scripts/test installs it)")
}

/// A loopback address of this test's own: a delegation reaches disco on
/// port 53, which other tests and servers on this machine must not share.
fn own_loopback() -> Ipv4Addr {
    let [a, b]: [u8; 2] = rand::random();
    Ipv4Addr::new(127, 53, a, b.max(1))
}

/// A running unbound, killed and reaped when dropped.
struct Unbound {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Unbound {
    /// unbound on `listen`, with `disco.internal.` a primed stub zone whose
    /// stub address is `disco`.
    fn start(listen: SocketAddr, disco: SocketAddr) -> Unbound {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("unbound.conf");
        std::fs::write(&config, config_text(dir.path(), listen, disco)).unwrap();
        let checked = Command::new(unbound_binary().with_file_name("unbound-checkconf"))
            .arg(&config)
            .output();
        if let Ok(checked) = checked {
            assert!(checked.status.success(), "unbound-checkconf: {checked:?}");
        }
        let child = Command::new(unbound_binary())
            .args(["-d", "-c"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("unbound starts");
        Unbound {
            child,
            addr: listen,
            _dir: dir,
        }
    }

    async fn ask(&self, name: &str, rtype: RecordType) -> Message {
        let stream = UdpClientStream::builder(self.addr, TokioRuntimeProvider::default())
            .with_timeout(Some(Duration::from_secs(3)))
            .build();
        let (mut client, bg) = Client::<TokioRuntimeProvider>::from_sender(stream);
        tokio::spawn(bg);
        let response = client
            .query(Name::from_str(name).unwrap(), DNSClass::IN, rtype)
            .await
            .unwrap_or_else(|err| panic!("unbound did not answer {name} {rtype}: {err}"));
        response.into_message()
    }

    /// Waits (at most 10 s) until unbound answers at all.
    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let probe = query_message("ready.invalid.", RecordType::A, None);
            socket.send_to(&probe, self.addr).await.unwrap();
            let mut buf = [0; 512];
            let wait = tokio::time::timeout(Duration::from_millis(200), socket.recv(&mut buf));
            if let Ok(Ok(_)) = wait.await {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "unbound never answered on {}",
                self.addr
            );
        }
    }
}

fn config_text(dir: &Path, listen: SocketAddr, disco: SocketAddr) -> String {
    let dir = dir.display();
    format!(
        r#"server:
    interface: {ip}@{port}
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "{dir}"
    pidfile: "{dir}/unbound.pid"
    use-syslog: no
    logfile: ""
    verbosity: 1
    num-threads: 1
    do-ip6: no
    # disco is on loopback, which unbound refuses to query by default.
    do-not-query-localhost: no
    access-control: 127.0.0.0/8 allow
    module-config: "iterator"
    domain-insecure: "disco.internal."
remote-control:
    control-enable: no
stub-zone:
    name: "disco.internal."
    stub-addr: {disco_ip}@{disco_port}
    stub-prime: yes
"#,
        ip = listen.ip(),
        port = listen.port(),
        disco_ip = disco.ip(),
        disco_port = disco.port(),
    )
}

/// A free UDP port on `ip` (unbound binds it a moment later).
fn free_port(ip: IpAddr) -> u16 {
    let socket = std::net::UdpSocket::bind((ip, 0)).unwrap();
    let tcp = std::net::TcpListener::bind((ip, socket.local_addr().unwrap().port()));
    match tcp {
        Ok(_) => socket.local_addr().unwrap().port(),
        Err(_) => free_port(ip),
    }
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
    let unbound = Unbound::start(SocketAddr::new(ip.into(), free_port(ip.into())), server.dns);
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
