//! The DockStack form against a real Docker engine: a container publishing
//! its port on a random host port, found through the engine's API, checked
//! and registered at SERVICE_HOST and the published port.
//!
//! No image can be pulled here, so the test imports its own: Debian's static
//! busybox in an otherwise empty file system (`docker import`), running
//! `busybox httpd` as the service. The container and the image are removed
//! whatever happens.

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
    fn start() -> Container {
        let busybox = which("busybox")
            .expect("this test needs a static busybox: apt-get install busybox-static");
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        std::fs::copy(&busybox, dir.path().join("bin/busybox")).unwrap();
        let id = std::process::id();
        let container = Container {
            name: format!("disco-registrar-test-{id}"),
            image: format!("disco-registrar-test/busybox:{id}"),
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
        docker(&[
            "run",
            "-d",
            "--name",
            &container.name,
            "-p",
            "127.0.0.1::8080",
            &container.image,
            "/bin/busybox",
            "httpd",
            "-f",
            "-p",
            "8080",
        ]);
        container
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

#[tokio::test]
async fn the_dockstack_form_finds_the_published_port_through_the_engine() {
    let container = Container::start();
    let published = container.published_port();
    let etcd = Etcd::start();
    let disco = Disco::start(&[etcd.url("etcd", "/nerve/test")]).await;
    let registry = etcd.url("etcd", "/nerve");
    let spec = format!("mysql:tcp:{}:8080:/test", container.name);
    let mut args = vec!["-d", &registry, "-s", &spec];
    args.extend(&FAST[..8]);
    let registrar = Registrar::start_with_env(&args, &[("SERVICE_HOST", "127.0.0.1")]);
    until_answered(&disco, "mysql.disco.internal.").await;
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
