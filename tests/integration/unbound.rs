//! Debian's unbound, started by a test with a configuration of its own and
//! killed when dropped: the site resolver of the delegation test and the
//! DNS-over-TLS upstream of the forwarding tests.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use hickory_net::client::{Client, ClientHandle};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::udp::UdpClientStream;
use hickory_proto::op::Message;
use hickory_proto::rr::{DNSClass, Name, RecordType};

use crate::support::query_message;

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

/// A running unbound, killed and reaped when dropped.
pub struct Unbound {
    child: Child,
    /// Where it answers plain DNS (UDP and TCP).
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Unbound {
    /// unbound in the foreground on `listen`, one thread, no IPv6, no
    /// control socket, loopback clients allowed, iterator only; `more`
    /// gets its directory (to write files into) and returns the rest of
    /// the `server:` clause and any further clauses.
    pub fn start(listen: SocketAddr, more: impl FnOnce(&Path) -> String) -> Unbound {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("unbound.conf");
        let text = format!(
            r#"remote-control:
    control-enable: no
server:
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
    access-control: 127.0.0.0/8 allow
    module-config: "iterator"
{more}"#,
            ip = listen.ip(),
            port = listen.port(),
            dir = dir.path().display(),
            more = more(dir.path()),
        );
        std::fs::write(&config, text).unwrap();
        // The configuration is checked, never skipped: unbound-checkconf
        // ships in the unbound package, beside the daemon.
        let checkconf = unbound_binary().with_file_name("unbound-checkconf");
        let checked = Command::new(&checkconf)
            .arg(&config)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {}: {e}; it comes with unbound: apt-get install unbound \
                     (scripts/test installs it)",
                    checkconf.display()
                )
            });
        assert!(checked.status.success(), "unbound-checkconf: {checked:?}");
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

    /// Asks unbound over UDP, waiting up to 3 s.
    pub async fn ask(&self, name: &str, rtype: RecordType) -> Message {
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
    pub async fn wait_ready(&self) {
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

/// A port on `ip` free for both UDP and TCP (unbound binds it a moment
/// later).
pub fn free_port(ip: IpAddr) -> u16 {
    let socket = std::net::UdpSocket::bind((ip, 0)).unwrap();
    let tcp = std::net::TcpListener::bind((ip, socket.local_addr().unwrap().port()));
    match tcp {
        Ok(_) => socket.local_addr().unwrap().port(),
        Err(_) => free_port(ip),
    }
}
