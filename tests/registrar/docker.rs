//! The DockStack form against a real Docker engine: a container publishing
//! its port on a random host port, found through the engine's API, checked
//! and registered at SERVICE_HOST and the published port.
//!
//! No image can be pulled here, so the test imports its own: Debian's static
//! busybox in an otherwise empty file system (`docker import`), running
//! `busybox httpd` as the service. The container and the image are removed
//! whatever happens.
//!
//! When the container is restarted or recreated and Docker publishes
//! another host port, the registrar follows it.

use std::process::{Command, Stdio};

use hickory_proto::rr::RecordType;

use crate::cluster::Etcd;
use crate::harness::{FAST, Registrar, until_answered};
use crate::support::{CONVERGE, Disco, eventually, srv};

fn docker(args: &[&str]) -> String {
    let output = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("this test needs the Docker engine and its CLI: apt-get install docker.io");
    assert!(
        output.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// An image of a static busybox, and a container of it serving TCP on
/// `8080/tcp`, published on a free host port of 127.0.0.1.
struct Container {
    name: String,
    image: String,
}

impl Container {
    /// `test` tells the containers and images of two tests in one process
    /// apart.
    fn start(test: &str) -> Container {
        let busybox = which("busybox")
            .expect("this test needs a static busybox: apt-get install busybox-static");
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        std::fs::copy(&busybox, dir.path().join("bin/busybox")).unwrap();
        let id = std::process::id();
        let container = Container {
            name: format!("disco-registrar-test-{test}-{id}"),
            image: format!("disco-registrar-test/busybox:{test}-{id}"),
        };
        let tar = dir.path().join("root.tar");
        let status = Command::new("tar")
            .arg("-C")
            .arg(dir.path())
            .arg("-cf")
            .arg(&tar)
            .arg("bin")
            .status()
            .unwrap();
        assert!(status.success());
        docker(&["import", tar.to_str().unwrap(), &container.image]);
        container.run();
        container
    }

    /// `docker run`s the container (again, after `docker rm`).
    fn run(&self) {
        docker(&[
            "run",
            "-d",
            "--name",
            &self.name,
            "-p",
            "127.0.0.1::8080",
            &self.image,
            "/bin/busybox",
            "httpd",
            "-f",
            "-p",
            "8080",
        ]);
    }

    /// Restarts it until Docker publishes another host port than `old`
    /// (random mappings are reassigned on start, but the engine may hand
    /// the same one back), recreating it from the second try on; the new
    /// port.
    fn move_from(&self, old: u16) -> u16 {
        for attempt in 0..5 {
            if attempt == 0 {
                docker(&["stop", "-t", "0", &self.name]);
                docker(&["start", &self.name]);
            } else {
                docker(&["rm", "-f", &self.name]);
                self.run();
            }
            let new = self.published_port();
            if new != old {
                return new;
            }
        }
        panic!("Docker published {old} again after five restarts");
    }

    /// What `docker port NAME 8080` says: the host port.
    fn published_port(&self) -> u16 {
        let printed = docker(&["port", &self.name, "8080/tcp"]);
        printed
            .lines()
            .next()
            .and_then(|line| line.rsplit(':').next())
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("docker port printed {printed:?}"))
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let quiet = |args: &[&str]| {
            let _ = Command::new("docker")
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        };
        quiet(&["rm", "-f", &self.name]);
        quiet(&["rmi", "-f", &self.image]);
    }
}

fn which(binary: &str) -> Option<std::path::PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(binary))
        .find(|path| path.is_file())
}

/// etcd, disco reading `/nerve/test`, and `disco registrar -d
/// etcd://…/nerve -s mysql:tcp:CONTAINER:8080:/test` at SERVICE_HOST
/// 127.0.0.1, once disco answers the registration.
async fn registered(container: &Container) -> (Etcd, Disco, Registrar) {
    let etcd = Etcd::start();
    let disco = Disco::start(&[etcd.url("etcd", "/nerve/test")]).await;
    let registry = etcd.url("etcd", "/nerve");
    let spec = format!("mysql:tcp:{}:8080:/test", container.name);
    let mut args = vec!["-d", &registry, "-s", &spec];
    args.extend(&FAST[..8]);
    let registrar = Registrar::start_with_env(&args, &[("SERVICE_HOST", "127.0.0.1")]);
    until_answered(&disco, "mysql.disco.internal.").await;
    (etcd, disco, registrar)
}

#[tokio::test]
async fn the_dockstack_form_finds_the_published_port_through_the_engine() {
    let container = Container::start("port");
    let published = container.published_port();
    let (_etcd, disco, registrar) = registered(&container).await;
    let message = disco.query("mysql.disco.internal.", RecordType::SRV).await;
    let ports: Vec<String> = srv(&message);
    assert_eq!(ports.len(), 1, "{ports:?}");
    assert!(
        ports[0].contains(&format!(" {published} ")),
        "SRV {ports:?}, published {published}"
    );
    eventually("the log names the lookup", CONVERGE, || async {
        registrar
            .log()
            .contains("Docker publishes the container's port")
    })
    .await;
}

/// The SRV answers' ports.
fn srv_ports(message: &hickory_proto::op::Message) -> Vec<u16> {
    srv(message)
        .iter()
        .filter_map(|record| record.split(' ').nth(2)?.parse().ok())
        .collect()
}

#[tokio::test]
async fn the_registrar_follows_the_container_to_its_new_published_port() {
    let container = Container::start("follow");
    let old = container.published_port();
    let (_etcd, disco, registrar) = registered(&container).await;
    let message = disco.query("mysql.disco.internal.", RecordType::SRV).await;
    assert_eq!(srv_ports(&message), [old], "{:?}", srv(&message));

    let moved = std::time::Instant::now();
    let new = container.move_from(old);
    // Fall (2 × 200 ms), a lookup at most an interval later, rise (2 ×
    // 200 ms): about a second (0.8 s measured); ten allow for a loaded
    // machine.
    eventually(
        &format!("SRV answers {new}, not {old}"),
        CONVERGE,
        || async {
            let message = disco.query("mysql.disco.internal.", RecordType::SRV).await;
            srv_ports(&message) == [new]
        },
    )
    .await;
    let took = moved.elapsed();
    let message = disco.query("mysql.disco.internal.", RecordType::SRV).await;
    let last = srv(&message);
    assert_eq!(last.len(), 1, "{last:?}");
    assert!(
        last[0].ends_with(&format!(" 127-0-0-1-{new}.mysql.disco.internal.")),
        "the new instance id: {last:?}"
    );
    let log = registrar.log();
    assert!(
        log.contains("the container publishes another port now"),
        "{log}"
    );
    eprintln!("moved from {old} to {new}; SRV followed in {took:?}");
}
