//! `disco registrar --docker` against the real engine: containers started
//! with labels are registered in a real etcd and answered by `disco serve`
//! (in-process, watching it), withdrawn as Docker stops, kills, pauses or
//! calls them unhealthy, and the registrar repairs what it missed (killed
//! and restarted, its event stream cut).
//!
//! The containers run Debian's static busybox imported as an image of its
//! own (no registry is reached): `httpd` is the service, `test -f` the
//! HEALTHCHECK. Every container and network carries the scenario's label
//! and is removed by its [`Scope`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use hickory_net::client::{Client as DnsClient, ClientHandle};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::udp::UdpClientStream;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, Name, RecordType};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::cluster::Etcd;
use crate::disco::{CONVERGE, Disco, ok, srv};
use crate::ports::free_ports;
use crate::support::{Scope, docker, require_engine, try_docker};

/// The service image: a static busybox and the links a HEALTHCHECK's
/// `sh -c` needs.
const IMAGE: &str = "disco-test/busybox:1";

/// Makes [`IMAGE`] once per machine.
fn image() -> &'static str {
    static MADE: OnceLock<()> = OnceLock::new();
    MADE.get_or_init(|| {
        require_engine();
        if try_docker(&["image", "inspect", IMAGE]).is_ok() {
            return;
        }
        let busybox = std::env::split_paths(&std::env::var_os("PATH").unwrap())
            .map(|dir| dir.join("busybox"))
            .find(|path| path.is_file())
            .expect("these tests need a static busybox: apt-get install busybox-static");
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
        std::fs::create_dir_all(dir.path().join("www")).unwrap();
        std::fs::copy(&busybox, bin.join("busybox")).unwrap();
        for tool in ["sh", "httpd", "test", "touch", "rm", "sleep"] {
            std::os::unix::fs::symlink("busybox", bin.join(tool)).unwrap();
        }
        let tar = dir.path().join("root.tar");
        let status = Command::new("tar")
            .arg("-C")
            .arg(dir.path())
            .arg("-cf")
            .arg(&tar)
            .args(["bin", "tmp", "www"])
            .status()
            .unwrap();
        assert!(status.success());
        docker(&[
            "import",
            "--change",
            "ENV PATH=/bin",
            "--change",
            "EXPOSE 8080",
            tar.to_str().unwrap(),
            IMAGE,
        ]);
    });
    IMAGE
}

/// The command of a service container: httpd on 8080, and a PID 1 that
/// takes two seconds to exit after SIGTERM (a service draining), so that
/// "withdrawn before it exited" can be seen.
const SERVE: [&str; 3] = [
    "sh",
    "-c",
    "trap 'sleep 2; exit 0' TERM; httpd -p 8080 -h /www; while :; do sleep 0.1; done",
];

/// Starts a service container `name` in `scope` with `args` (labels,
/// ports) before the image.
fn service(scope: &Scope, name: &str, args: &[&str]) -> String {
    let mut all = vec!["--name", name];
    all.extend_from_slice(args);
    all.push(image());
    all.extend_from_slice(&SERVE);
    scope.run(&all);
    name.to_owned()
}

/// The host port Docker published `8080/tcp` of `container` on.
fn published(container: &str) -> u16 {
    let printed = docker(&["port", container, "8080/tcp"]);
    printed
        .lines()
        .next()
        .and_then(|line| line.rsplit(':').next())
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("docker port printed {printed:?}"))
}

/// The instance id the registrar gives `container`: the engine's host name
/// and the container's name, as a DNS label.
fn instance(container: &str) -> String {
    let host = docker(&["info", "--format", "{{.Name}}"]);
    let mut id: String = format!("{host}-{container}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    while id.contains("--") {
        id = id.replace("--", "-");
    }
    assert!(id.len() <= 63, "{id}: the test's names are short");
    id.trim_matches('-').to_owned()
}

/// A running `disco registrar --docker`.
struct Registrar {
    child: Option<Child>,
    log: PathBuf,
    http: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Registrar {
    /// `disco registrar --docker --registry REGISTRY --address 127.0.0.1
    /// ARGS`, its endpoints on a free port, with `env`.
    fn start(registry: &str, args: &[&str], env: &[(&str, &str)]) -> Registrar {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("registrar.log");
        let file = std::fs::File::create(&log).unwrap();
        let http: SocketAddr = format!("127.0.0.1:{}", free_ports(1)[0]).parse().unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_disco"));
        command
            .args(["registrar", "--docker", "--registry", registry])
            .args(["--address", "127.0.0.1", "--ttl", "3s"])
            .args([
                "--http-listen",
                &http.to_string(),
                "--log-level",
                "disco=debug",
            ])
            .args(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        for (name, _) in std::env::vars() {
            if name.starts_with("DISCO_") || name == "DOCKER_HOST" {
                command.env_remove(name);
            }
        }
        command.envs(env.iter().copied());
        let child = command.spawn().expect("disco registrar starts");
        Registrar {
            child: Some(child),
            log,
            http,
            _dir: dir,
        }
    }

    fn signal(&self, signal: Signal) {
        let pid = self.child.as_ref().expect("running").id();
        kill(Pid::from_raw(pid as i32), signal).unwrap();
    }

    /// SIGKILL, and waits for it to be gone.
    fn kill(&mut self) {
        self.signal(Signal::SIGKILL);
        self.child.take().unwrap().wait().unwrap();
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (at most `limit`) for the registrar to exit.
    fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        let child = self.child.as_mut().expect("running");
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(Instant::now() < deadline, "no exit within {limit:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    async fn get(&self, path: &str) -> (u16, String) {
        crate::disco::http::get(self.http, path).await
    }

    /// Polls `path` until its body contains every one of `needles`.
    async fn until_says(&self, path: &str, needles: &[&str]) -> String {
        let deadline = Instant::now() + CONVERGE;
        loop {
            let body = match tokio::net::TcpStream::connect(self.http).await {
                Ok(_) => self.get(path).await.1,
                Err(_) => String::new(),
            };
            if needles.iter().all(|n| body.contains(n)) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "{path} never said {needles:?}; it says:\n{body}\nlog:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Registrar {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if std::thread::panicking() {
                eprintln!("--- registrar log:\n{}", self.log());
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `name` A is 127.0.0.1 (the `--address` of published ports).
async fn until_answered(disco: &Disco, name: &str) {
    disco
        .until_answers(name, RecordType::A, ok(&["127.0.0.1"]))
        .await;
}

/// `name` A is NXDOMAIN.
async fn until_gone(disco: &Disco, name: &str) {
    disco
        .until_answers(name, RecordType::A, Err(ResponseCode::NXDomain))
        .await;
}

/// Polls `name` A until NXDOMAIN; how long that took.
async fn time_to_nxdomain(disco: &Disco, name: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if disco.answers(name, RecordType::A).await == Err(ResponseCode::NXDomain) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "{name} still answered after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Asks `dns` over UDP, as [`Disco::answers`] does, from a task of its own.
async fn ask(dns: SocketAddr, name: &str, rtype: RecordType) -> Result<Vec<String>, ResponseCode> {
    let stream = UdpClientStream::builder(dns, TokioRuntimeProvider::default())
        .with_timeout(Some(Duration::from_secs(2)))
        .build();
    let (mut client, bg) = DnsClient::<TokioRuntimeProvider>::from_sender(stream);
    tokio::spawn(bg);
    let name = std::str::FromStr::from_str(name).unwrap();
    let _: &Name = &name;
    match client.query(name, DNSClass::IN, rtype).await {
        Ok(response) => {
            let message = response.into_message();
            match message.metadata.response_code {
                ResponseCode::NoError => Ok(crate::disco::answers(&message)),
                code => Err(code),
            }
        }
        Err(_) => Err(ResponseCode::ServFail),
    }
}

fn running(container: &str) -> bool {
    docker(&["inspect", "--format", "{{.State.Running}}", container]) == "true"
}

/// etcd, disco watching it.
async fn store() -> (Etcd, Disco, String) {
    let etcd = Etcd::start();
    let registry = etcd.url("etcd", "/disco");
    let disco = Disco::start(std::slice::from_ref(&registry)).await;
    (etcd, disco, registry)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labelled_containers_are_answered_unlabelled_ignored_bad_labels_skipped_and_counted() {
    let scope = Scope::open("registrar-docker-labels");
    let (_etcd, disco, registry) = store().await;
    let web = service(
        &scope,
        "disco-rd-web",
        &[
            "-p",
            "127.0.0.1::8080",
            "--label",
            "disco.service=web",
            "--label",
            "disco.port-name=http",
            "--label",
            "disco.tags=v2,primary",
            "--label",
            "disco.meta.version=1.4.2",
        ],
    );
    let plain = service(&scope, "disco-rd-plain", &["-p", "127.0.0.1::8080"]);
    let bad = service(
        &scope,
        "disco-rd-bad",
        &[
            "-p",
            "127.0.0.1::8080",
            "--label",
            "disco.service=web",
            "--label",
            "disco.tags=not a label",
        ],
    );
    // registrator's labels and environment, read as registrator read them.
    let api = service(
        &scope,
        "disco-rd-api",
        &[
            "-p",
            "127.0.0.1::8080",
            "--label",
            "SERVICE_NAME=api",
            "--label",
            "SERVICE_TAGS=blue",
            "--env",
            "SERVICE_REGION=eu",
        ],
    );
    let registrar = Registrar::start(&registry, &[], &[]);
    let web_id = instance(&web);
    until_answered(&disco, "web.disco.internal.").await;
    let port = published(&web);
    assert_eq!(
        srv(&disco.query("web.disco.internal.", RecordType::SRV).await),
        [format!("0 100 {port} {web_id}.web.disco.internal.")]
    );
    assert_eq!(
        srv(&disco
            .query("_http._tcp.web.disco.internal.", RecordType::SRV)
            .await),
        [format!("0 100 {port} {web_id}.web.disco.internal.")]
    );
    until_answered(&disco, "primary.v2.web.disco.internal.").await;
    assert_eq!(
        disco
            .answers(&format!("{web_id}.web.disco.internal."), RecordType::TXT)
            .await,
        Ok(vec!["version=1.4.2".to_owned()])
    );
    until_answered(&disco, "blue.api.disco.internal.").await;
    let api_id = instance(&api);
    assert_eq!(
        disco
            .answers(&format!("{api_id}.api.disco.internal."), RecordType::TXT)
            .await,
        Ok(vec!["region=eu".to_owned()])
    );
    // The unlabelled one is not registered; the bad one is skipped and
    // counted, named with its label, and the others went on.
    assert_eq!(
        disco
            .answers("disco-rd-plain.disco.internal.", RecordType::A)
            .await,
        Err(ResponseCode::NXDomain)
    );
    assert_eq!(
        disco
            .answers("busybox.disco.internal.", RecordType::A)
            .await,
        Err(ResponseCode::NXDomain)
    );
    registrar
        .until_says(
            "/ready",
            &[&format!("\"container\":\"{bad}\""), "disco.tags"],
        )
        .await;
    let metrics = registrar
        .until_says(
            "/metrics",
            &["disco_registrar_docker_containers_skipped{reason=\"label\"}"],
        )
        .await;
    let skipped: u64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("disco_registrar_docker_containers_skipped{reason=\"label\"} ")
        })
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(skipped >= 1, "{metrics}");
    let logged = registrar.log();
    assert_eq!(
        logged
            .lines()
            .filter(|l| l.contains(&bad) && l.contains("not registered"))
            .count(),
        1,
        "the bad label is logged once, with the container: {logged}"
    );
    drop(registrar);

    // With --all the unlabelled container is registered, named after its
    // image (busybox), as registrator did.
    let mut all = Registrar::start(&registry, &["--all"], &[]);
    until_answered(
        &disco,
        &format!("{}.busybox.disco.internal.", instance(&plain)),
    )
    .await;

    // SIGTERM: every registration withdrawn (the shared lease revoked by
    // the last one), then exit 0; not left to expire with the lease.
    all.signal(Signal::SIGTERM);
    let status = all.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{status}: {}", all.log());
    // Well within the lease's 3 s: deleted, not expired.
    for name in ["web", "api", "busybox"] {
        let name = format!("{name}.disco.internal.");
        time_to_nxdomain(&disco, &name, Duration::from_secs(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_healthcheck_decides_publication() {
    let scope = Scope::open("registrar-docker-health");
    let (_etcd, disco, registry) = store().await;
    let web = service(
        &scope,
        "disco-rd-checked",
        &[
            "-p",
            "127.0.0.1::8080",
            "--label",
            "disco.service=checked",
            "--health-cmd",
            "test -f /tmp/ok",
            "--health-interval",
            "200ms",
            "--health-retries",
            "1",
        ],
    );
    let _registrar = Registrar::start(&registry, &[], &[]);
    let name = "checked.disco.internal.";
    // Starting, then unhealthy: never published.
    crate::support::eventually(
        "the HEALTHCHECK fails",
        CONVERGE,
        || match crate::support::health(&web).as_str() {
            "unhealthy" => Ok(()),
            other => Err(other.to_owned()),
        },
    );
    assert_eq!(
        disco.answers(name, RecordType::A).await,
        Err(ResponseCode::NXDomain)
    );
    docker(&["exec", &web, "touch", "/tmp/ok"]);
    until_answered(&disco, name).await;
    docker(&["exec", &web, "rm", "/tmp/ok"]);
    until_gone(&disco, name).await;
    docker(&["exec", &web, "touch", "/tmp/ok"]);
    until_answered(&disco, name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_stop_withdraws_before_the_container_exits_and_kill_within_a_second() {
    let scope = Scope::open("registrar-docker-stop");
    let (_etcd, disco, registry) = store().await;
    let label = ["-p", "127.0.0.1::8080", "--label", "disco.service=stopped"];
    let stopped = service(&scope, "disco-rd-stopped", &label);
    let killed = service(
        &scope,
        "disco-rd-killed",
        &["-p", "127.0.0.1::8080", "--label", "disco.service=killed"],
    );
    let _registrar = Registrar::start(&registry, &[], &[]);
    until_answered(&disco, "stopped.disco.internal.").await;
    until_answered(&disco, "killed.disco.internal.").await;

    let stopping = {
        let stopped = stopped.clone();
        std::thread::spawn(move || docker(&["stop", "--time", "10", &stopped]))
    };
    let withdrawn = time_to_nxdomain(&disco, "stopped.disco.internal.", CONVERGE).await;
    assert!(
        running(&stopped),
        "NXDOMAIN {withdrawn:?} after docker stop, and the container is still draining"
    );
    stopping.join().unwrap();
    assert!(!running(&stopped));

    let started = Instant::now();
    docker(&["kill", &killed]);
    let withdrawn = time_to_nxdomain(&disco, "killed.disco.internal.", CONVERGE).await;
    let total = started.elapsed();
    assert!(
        total < Duration::from_secs(1),
        "docker kill withdrew in {total:?} (NXDOMAIN {withdrawn:?} after docker kill returned)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_registrar_takes_over_its_entries_and_repairs_what_it_missed() {
    let scope = Scope::open("registrar-docker-restart");
    let (_etcd, disco, registry) = store().await;
    let stays = ["-p", "127.0.0.1::8080", "--label", "disco.service=stays"];
    let stays = service(&scope, "disco-rd-stays", &stays);
    let goes = ["-p", "127.0.0.1::8080", "--label", "disco.service=goes"];
    let goes = service(&scope, "disco-rd-goes", &goes);
    let mut registrar = Registrar::start(&registry, &[], &[]);
    let stays_name = format!("{}.stays.disco.internal.", instance(&stays));
    until_answered(&disco, &stays_name).await;
    until_answered(&disco, "goes.disco.internal.").await;

    // The one that stays must answer throughout: watched from here on.
    let watch = {
        let dns = disco.dns;
        let name = stays_name.clone();
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut misses = Vec::new();
            let mut asked = 0u32;
            loop {
                if stop_rx.try_recv().is_ok() {
                    return (asked, misses);
                }
                let answer = ask(dns, &name, RecordType::A).await;
                asked += 1;
                if answer != ok(&["127.0.0.1"]) {
                    misses.push(format!("{answer:?}"));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        (stop_tx, task)
    };

    registrar.kill();
    docker(&["rm", "--force", &goes]);
    let new = ["-p", "127.0.0.1::8080", "--label", "disco.service=new"];
    service(&scope, "disco-rd-new", &new);
    let _registrar = Registrar::start(&registry, &[], &[]);
    until_answered(&disco, "new.disco.internal.").await;
    // The removed one's entry sat on the killed registrar's lease (3 s).
    until_gone(&disco, "goes.disco.internal.").await;
    // Past the old lease: the entries taken over are on the new one.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (stop, task) = watch;
    stop.send(()).unwrap();
    let (asked, misses) = task.await.unwrap();
    assert!(asked > 100, "asked {asked} times");
    assert_eq!(misses, Vec::<String>::new(), "{stays_name} left DNS");
    until_answered(&disco, &stays_name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_event_stream_is_reopened_and_the_reconcile_repairs_within_resync() {
    let scope = Scope::open("registrar-docker-cut");
    let (_etcd, disco, registry) = store().await;
    let proxy = crate::proxy::Proxy::start_unix("/var/run/docker.sock".into()).await;
    let host = format!("tcp://{}", proxy.addr);
    let first = ["-p", "127.0.0.1::8080", "--label", "disco.service=first"];
    let first = service(&scope, "disco-rd-first", &first);
    let registrar = Registrar::start(&registry, &["--resync", "2s"], &[("DOCKER_HOST", &host)]);
    until_answered(&disco, "first.disco.internal.").await;

    // The engine unreachable while containers change: no event arrives.
    proxy.freeze();
    proxy.cut();
    docker(&["rm", "--force", &first]);
    let second = ["-p", "127.0.0.1::8080", "--label", "disco.service=second"];
    service(&scope, "disco-rd-second", &second);
    proxy.thaw();
    let repaired = Instant::now();
    until_answered(&disco, "second.disco.internal.").await;
    until_gone(&disco, "first.disco.internal.").await;
    let took = repaired.elapsed();
    assert!(
        took < Duration::from_secs(2) + Duration::from_secs(5),
        "repaired in {took:?}: within --resync and the backoff"
    );
    registrar
        .until_says("/metrics", &["disco_registrar_docker_engine_up 1"])
        .await;
    let metrics = registrar.get("/metrics").await.1;
    assert!(
        !metrics.contains("disco_registrar_docker_stream_reopens_total 0"),
        "{metrics}"
    );
    assert!(
        registrar.log().contains("lost the Docker engine's events"),
        "the cut is logged"
    );
}

/// `name` A, once it answers `address`.
async fn until_at(disco: &Disco, name: &str, address: &str) {
    disco
        .until_answers(name, RecordType::A, ok(&[address]))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_on_two_networks_is_registered_on_the_named_one() {
    let scope = Scope::open("registrar-docker-networks");
    let (_etcd, disco, registry) = store().await;
    let front = scope.network("disco-rd-front", "172.31.60.0/24");
    let back = scope.network("disco-rd-back", "172.31.61.0/24");
    // Named by its label: the front address, whatever --network says.
    let labelled = service(
        &scope,
        "disco-rd-labelled",
        &[
            "--network",
            &front,
            "--label",
            "disco.service=labelled",
            "--label",
            &format!("disco.network={front}"),
        ],
    );
    docker(&["network", "connect", &back, &labelled]);
    // On the front alone, then connected to the back: --network names it.
    let moving = service(
        &scope,
        "disco-rd-moving",
        &["--network", &front, "--label", "disco.service=moving"],
    );
    let registrar = Registrar::start(&registry, &["--internal", "--network", &back], &[]);
    let labelled_front = crate::support::address_on(&labelled, &front);
    until_at(&disco, "labelled.disco.internal.", &labelled_front).await;
    let srv_ports = srv(&disco
        .query("labelled.disco.internal.", RecordType::SRV)
        .await);
    assert!(
        srv_ports[0].starts_with("0 100 8080 "),
        "the container port: {srv_ports:?}"
    );
    // Only on the front, which --network does not name: skipped, saying so.
    registrar
        .until_says(
            "/ready",
            &["disco-rd-moving", "not on network disco-rd-back"],
        )
        .await;
    docker(&["network", "connect", &back, &moving]);
    let moving_back = crate::support::address_on(&moving, &back);
    until_at(&disco, "moving.disco.internal.", &moving_back).await;
    // Disconnected from the named network: withdrawn (and skipped again).
    docker(&["network", "disconnect", &back, &moving]);
    until_gone(&disco, "moving.disco.internal.").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_are_registered_in_zookeeper_on_the_registrar_s_session() {
    let scope = Scope::open("registrar-docker-zookeeper");
    let zookeeper = crate::zk_server::ZooKeeper::start();
    let registry = zookeeper.url("zk", "/disco");
    let disco = Disco::start(std::slice::from_ref(&registry)).await;
    let zk = service(
        &scope,
        "disco-rd-zk",
        &[
            "-p",
            "127.0.0.1::8080",
            "--label",
            "disco.service=zk-web",
            "--label",
            "disco.tags=blue",
        ],
    );
    let _registrar = Registrar::start(&registry, &[], &[]);
    until_answered(&disco, "blue.zk-web.disco.internal.").await;
    let port = published(&zk);
    assert_eq!(
        srv(&disco.query("zk-web.disco.internal.", RecordType::SRV).await),
        [format!(
            "0 100 {port} {}.zk-web.disco.internal.",
            instance(&zk)
        )]
    );
    let started = Instant::now();
    docker(&["kill", &zk]);
    time_to_nxdomain(&disco, "zk-web.disco.internal.", CONVERGE).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

/// The ports `name` SRV answers (each instance's published port), sorted;
/// empty for NXDOMAIN or NODATA.
async fn srv_ports(disco: &Disco, name: &str) -> Vec<u16> {
    let Some(message) = disco.try_query(name, RecordType::SRV).await else {
        return Vec::new();
    };
    let mut ports: Vec<u16> = srv(&message)
        .iter()
        .filter_map(|line| line.split_whitespace().nth(2)?.parse().ok())
        .collect();
    ports.sort();
    ports
}

/// Polls until `primary.db` and `replica.db` SRV answer these ports.
async fn until_roles(disco: &Disco, primary: &[u16], replica: &[u16]) {
    let deadline = Instant::now() + CONVERGE;
    loop {
        let now = (
            srv_ports(disco, "primary.db.disco.internal.").await,
            srv_ports(disco, "replica.db.disco.internal.").await,
        );
        if now.0 == primary && now.1 == replica {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "primary {primary:?} and replica {replica:?} wanted; DNS says {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disco_elect_labels_give_one_primary_that_moves_when_its_container_stops() {
    let scope = Scope::open("registrar-docker-elect");
    let (_etcd, disco, registry) = store().await;
    elect_scenario(&scope, &disco, &registry).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disco_elect_labels_elect_through_zookeeper_too() {
    let scope = Scope::open("registrar-docker-elect-zk");
    let zookeeper = crate::zk_server::ZooKeeper::start();
    let registry = zookeeper.url("zk", "/disco");
    let disco = Disco::start(std::slice::from_ref(&registry)).await;
    elect_scenario(&scope, &disco, &registry).await;
}

/// Two containers labelled `disco.elect` for service `db`: one primary,
/// one replica; the primary's container stops and the other leads at once;
/// started again, the old one is a replica; a prober never sees two.
async fn elect_scenario(scope: &Scope, disco: &Disco, registry: &str) {
    let labels = [
        "-p",
        "127.0.0.1::8080",
        "--label",
        "disco.service=db",
        "--label",
        "disco.elect=",
    ];
    let first = service(scope, "disco-rd-db-1", &labels);
    // The first is elected before the second exists: which one leads is
    // known.
    let registrar = Registrar::start(registry, &[], &[]);
    let first_port = published(&first);
    until_roles(disco, &[first_port], &[]).await;
    let second = service(scope, "disco-rd-db-2", &labels);
    let second_port = published(&second);
    until_roles(disco, &[first_port], &[second_port]).await;

    // From here on, a prober asks `primary.db` every 10 ms: never two.
    let prober = {
        let dns = disco.dns;
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let (mut asked, mut two) = (0u32, Vec::new());
            while stop_rx.try_recv().is_err() {
                if let Ok(answer) = ask(dns, "primary.db.disco.internal.", RecordType::SRV).await {
                    asked += 1;
                    if answer.len() > 1 {
                        two.push(answer);
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (asked, two)
        });
        (stop_tx, task)
    };

    // The primary's container stops: withdrawn at once, its candidacy with
    // it (its lease is its own), and the other is elected.
    let started = Instant::now();
    let stopping = {
        let first = first.clone();
        std::thread::spawn(move || docker(&["stop", "--time", "10", &first]))
    };
    until_roles(disco, &[second_port], &[]).await;
    let moved = started.elapsed();
    stopping.join().unwrap();

    // Started again, it comes back as a replica: the leader keeps leading.
    docker(&["start", &first]);
    let first_port = published(&first);
    until_roles(disco, &[second_port], &[first_port]).await;
    let (stop, task) = prober;
    stop.send(()).unwrap();
    let (asked, two) = task.await.unwrap();
    eprintln!("primary moved {moved:?} after docker stop; {asked} probes, none saw two");
    assert!(asked > 50, "the prober asked {asked} times");
    assert_eq!(two, Vec::<Vec<String>>::new(), "two primaries answered");
    assert!(
        moved < Duration::from_secs(3),
        "primary moved {moved:?} after docker stop (the lease is 3 s; it should not wait for it)"
    );
    let ready = registrar.get("/metrics").await.1;
    assert!(ready.contains("role=\"primary\""), "{ready}");
}

/// A service container whose PID 1 drains `seconds` after SIGTERM before
/// it exits.
fn draining_service(scope: &Scope, name: &str, seconds: u32, args: &[&str]) -> String {
    let script = format!(
        "trap 'sleep {seconds}; exit 0' TERM; httpd -p 8080 -h /www; while :; do sleep 0.1; done"
    );
    let mut all = vec!["--name", name];
    all.extend_from_slice(args);
    all.push(image());
    all.extend_from_slice(&["sh", "-c", &script]);
    scope.run(&all);
    name.to_owned()
}

/// Asserts `name` stays NXDOMAIN from now until `until` after `from`
/// (reconciles run every second meanwhile).
async fn stays_gone(disco: &Disco, name: &str, from: Instant, until: Duration) {
    while from.elapsed() < until {
        assert_eq!(
            disco.answers(name, RecordType::A).await,
            Err(ResponseCode::NXDomain),
            "{name} answered again {:?} after it was stopped, while it drains",
            from.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_container_stays_withdrawn_through_its_stop_timeout_and_disco_drain() {
    let scope = Scope::open("registrar-docker-drain");
    let (_etcd, disco, registry) = store().await;
    // Drains 8 s after SIGTERM; `docker stop` lets it (stop timeout 20 s).
    let stopped = draining_service(
        &scope,
        "disco-rd-drains",
        8,
        &[
            "-p",
            "127.0.0.1::8080",
            "--stop-timeout",
            "20",
            "--label",
            "disco.service=drains",
        ],
    );
    // Drains 8 s after a `docker kill -s TERM`, which has no timeout:
    // disco.drain keeps it withdrawn 6 s.
    let killed = draining_service(
        &scope,
        "disco-rd-drain-label",
        8,
        &[
            "-p",
            "127.0.0.1::8080",
            "--stop-timeout",
            "1",
            "--label",
            "disco.service=drain-label",
            "--label",
            "disco.drain=6s",
        ],
    );
    // A reconcile every second: each would publish a running container.
    let _registrar = Registrar::start(&registry, &["--resync", "1s"], &[]);
    until_answered(&disco, "drains.disco.internal.").await;
    until_answered(&disco, "drain-label.disco.internal.").await;

    let started = Instant::now();
    let stopping = {
        let stopped = stopped.clone();
        std::thread::spawn(move || docker(&["stop", "--time", "20", &stopped]))
    };
    let withdrawn = time_to_nxdomain(&disco, "drains.disco.internal.", CONVERGE).await;
    stays_gone(
        &disco,
        "drains.disco.internal.",
        started,
        Duration::from_secs(6),
    )
    .await;
    assert!(running(&stopped), "it drains 8 s");
    stopping.join().unwrap();
    let exited = started.elapsed();
    eprintln!("docker stop → NXDOMAIN {withdrawn:?}, → exit {exited:?} (drains 8 s)");
    assert!(exited >= Duration::from_secs(8), "{exited:?}");

    let started = Instant::now();
    docker(&["kill", "--signal", "TERM", &killed]);
    time_to_nxdomain(&disco, "drain-label.disco.internal.", CONVERGE).await;
    // Past its stop timeout (1 s) and two reconciles: still withdrawn.
    stays_gone(
        &disco,
        "drain-label.disco.internal.",
        started,
        Duration::from_millis(4500),
    )
    .await;
    assert!(running(&killed));
}
