//! Real ZooKeeper servers for the tests: Debian's `zookeeper` package run
//! with java directly (its init scripts want /etc and /var), on free
//! 127.0.0.1 ports, a temporary data dir per server, killed by pid when
//! dropped. The tick is short (100 ms) and sessions may last 0.2 s to 10 s
//! (disco asks for 10 s), or at most 2 s where a test lets a session
//! expire, so that it takes seconds.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::ports::free_ports;

/// The jar the package installs; its manifest names its dependencies.
const JAR: &str = "/usr/share/java/zookeeper.jar";
/// What `scripts/test` checks for (the package's own launcher).
const LAUNCHER: &str = "/usr/share/zookeeper/bin/zkServer.sh";
/// ZooKeeper's tick.
pub const TICK: Duration = Duration::from_millis(100);
/// The longest session a server grants, unless a test asks for short ones.
const MAX_SESSION: Duration = Duration::from_secs(10);
/// The longest session of [`ZooKeeper::start_short_sessions`].
pub const SHORT_SESSION: Duration = Duration::from_secs(2);
/// How long a server gets to start serving.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// The most data one request may carry: room for the tests' 1 MiB node.
const MAX_BUFFER: usize = 4 << 20;

/// One ZooKeeper server.
struct Server {
    client_port: u16,
    config: PathBuf,
    log: PathBuf,
    process: Option<Child>,
}

/// A ZooKeeper ensemble of one or more servers, started for one test.
pub struct ZooKeeper {
    servers: Vec<Server>,
    _dir: tempfile::TempDir,
}

fn check_installed() {
    assert!(
        Path::new(JAR).is_file() && Path::new(LAUNCHER).is_file(),
        "the ZooKeeper tests need Debian's zookeeper package ({JAR}): apt-get install zookeeper \
         (./scripts/test installs it when run as root)"
    );
}

impl ZooKeeper {
    /// A standalone server.
    pub fn start() -> ZooKeeper {
        ZooKeeper::ensemble(1)
    }

    /// A standalone server granting sessions of [`SHORT_SESSION`] at most,
    /// whatever the client asks for.
    pub fn start_short_sessions() -> ZooKeeper {
        ZooKeeper::launch_all(1, SHORT_SESSION)
    }

    /// An ensemble of `count` servers, all serving.
    pub fn ensemble(count: usize) -> ZooKeeper {
        ZooKeeper::launch_all(count, MAX_SESSION)
    }

    fn launch_all(count: usize, max_session: Duration) -> ZooKeeper {
        check_installed();
        let dir = tempfile::tempdir().unwrap();
        let ports = free_ports(3 * count);
        let peers: String = (0..count)
            .map(|i| {
                format!(
                    "server.{}=127.0.0.1:{}:{}\n",
                    i + 1,
                    ports[3 * i + 1],
                    ports[3 * i + 2]
                )
            })
            .collect();
        let servers = (0..count)
            .map(|i| {
                let data = dir.path().join(format!("zk{i}"));
                std::fs::create_dir_all(&data).unwrap();
                let mut config = format!(
                    "tickTime={}\ninitLimit=50\nsyncLimit=20\ndataDir={}\nclientPort={}\n\
                     clientPortAddress=127.0.0.1\nadmin.enableServer=false\n\
                     4lw.commands.whitelist=*\nmaxClientCnxns=0\nmaxSessionTimeout={}\n",
                    TICK.as_millis(),
                    data.display(),
                    ports[3 * i],
                    max_session.as_millis()
                );
                if count > 1 {
                    std::fs::write(data.join("myid"), format!("{}\n", i + 1)).unwrap();
                    config.push_str(&peers);
                }
                let path = dir.path().join(format!("zoo{i}.cfg"));
                std::fs::write(&path, config).unwrap();
                Server {
                    client_port: ports[3 * i],
                    config: path,
                    log: dir.path().join(format!("zk{i}.log")),
                    process: None,
                }
            })
            .collect();
        let mut zk = ZooKeeper { servers, _dir: dir };
        for i in 0..count {
            zk.launch(i);
        }
        for i in 0..count {
            zk.wait_serving(i);
        }
        zk
    }

    fn launch(&mut self, i: usize) {
        let server = &mut self.servers[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&server.log)
            .unwrap();
        let child = Command::new("java")
            .args([
                "-Xmx256m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                &format!("-Djute.maxbuffer={MAX_BUFFER}"),
                "-Dzookeeper.admin.enableServer=false",
                "-cp",
                JAR,
                "org.apache.zookeeper.server.quorum.QuorumPeerMain",
            ])
            .arg(&server.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("java starts (default-jre comes with the zookeeper package)");
        server.process = Some(child);
    }

    /// Waits until server `i` answers requests (standalone, leader or
    /// follower).
    fn wait_serving(&mut self, i: usize) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let status = self.four_letters(i, "srvr");
            if status.contains("Mode: ") {
                return;
            }
            if let Some(Ok(Some(exit))) = self.servers[i].process.as_mut().map(Child::try_wait) {
                panic!(
                    "ZooKeeper {i} exited ({exit}):\n{}",
                    std::fs::read_to_string(&self.servers[i].log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "ZooKeeper {i} not serving within {START_TIMEOUT:?}:\n{}",
                std::fs::read_to_string(&self.servers[i].log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A four-letter-word command's answer ("" if the server does not
    /// answer).
    pub fn four_letters(&self, i: usize, command: &str) -> String {
        let addr = self.endpoint(i);
        let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
            return String::new();
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        if stream.write_all(command.as_bytes()).is_err() {
            return String::new();
        }
        let mut out = String::new();
        let _ = stream.read_to_string(&mut out);
        out
    }

    /// How many clients server `i` has connected now.
    pub fn connections(&self, i: usize) -> usize {
        self.four_letters(i, "mntr")
            .lines()
            .find_map(|l| l.strip_prefix("zk_num_alive_connections\t"))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Server `i`'s client address.
    pub fn endpoint(&self, i: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.servers[i].client_port))
    }

    /// Every server's client address, comma-separated, as a URL takes them.
    pub fn hosts(&self) -> String {
        (0..self.servers.len())
            .map(|i| self.endpoint(i).to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A registry URL of `scheme` (`zk`, `nerve+zk`) at `path`.
    pub fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://{}{path}", self.hosts())
    }

    /// Kills server `i` (SIGKILL) and waits for it to go.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.servers[i].process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts server `i` again on its data dir and waits until it serves.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.launch(i);
        self.wait_serving(i);
    }
}

impl Drop for ZooKeeper {
    fn drop(&mut self) {
        // SIGKILL ends a frozen (stopped) server too.
        for i in 0..self.servers.len() {
            self.kill(i);
        }
    }
}
