//! The Docker side of the harness: the engine's command line, the images the
//! scenarios run (made once per machine and reused while they exist), and
//! guards that remove what a test made, whether it passes or panics. A test
//! killed outright leaves its things behind; the next run of the same test
//! removes them first, since every name and label is fixed per scenario.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The repository, where `docker/` lives.
pub const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// The image a container of a scenario uses for its tools: busybox (httpd,
/// wget), getent, dig, the MariaDB client.
pub const TOOLS_IMAGE: &str = "disco-test/tools:1";

/// The label every container and network a scenario makes carries, with the
/// scenario's name as its value: what a guard removes.
const SCOPE_LABEL: &str = "disco-test.scope";

/// Runs `command`: its standard output, trimmed, or what it printed on
/// failure.
pub fn try_run(command: &mut Command) -> Result<String, String> {
    let output = command
        .output()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if output.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "{command:?} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim(),
            if stdout.is_empty() {
                String::new()
            } else {
                format!("\nstdout: {stdout}")
            }
        ))
    }
}

/// Runs `command`, failing the test if it fails.
pub fn run(command: &mut Command) -> String {
    try_run(command).unwrap_or_else(|e| panic!("{e}"))
}

/// `docker ARGS`, or what it printed on failure.
pub fn try_docker(args: &[&str]) -> Result<String, String> {
    try_run(Command::new("docker").args(args))
}

/// `docker ARGS`, failing the test if it fails.
pub fn docker(args: &[&str]) -> String {
    try_docker(args).unwrap_or_else(|e| panic!("{e}"))
}

/// Fails the test, never skips it, when no Docker engine answers.
pub fn require_engine() {
    if let Err(e) = try_docker(&["info", "--format", "{{.ServerVersion}}"]) {
        panic!(
            "the container tests need a running Docker engine, and `docker info` failed \
             (install docker.io and start dockerd): {e}"
        );
    }
}

/// Retries `attempt` every 250 ms until it succeeds or `limit` has passed,
/// then fails the test saying what was awaited and the last error.
pub fn eventually<T>(
    what: &str,
    limit: Duration,
    mut attempt: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match attempt() {
            Ok(value) => return value,
            Err(e) if Instant::now() >= deadline => {
                panic!("{what}: not within {limit:?}; last: {e}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

/// The images the scenarios run, by tag.
pub struct Images {
    /// docker/Dockerfile with this build's `disco`.
    pub disco: String,
    /// docker/etcd on Debian's etcd.
    pub etcd: String,
}

/// Makes the images once per test process: the base images through
/// docker/test/base-images.sh (skipped when they exist), then disco's and
/// etcd's from the project's Dockerfiles, tagged by a hash of what goes into
/// them so that an unchanged build is reused.
pub fn images() -> &'static Images {
    static IMAGES: OnceLock<Images> = OnceLock::new();
    IMAGES.get_or_init(|| {
        require_engine();
        base_images(&[
            "disco-test/bookworm-base:1",
            "disco-test/etcd-base:1",
            TOOLS_IMAGE,
        ]);
        Images {
            disco: disco_image(),
            etcd: etcd_image(),
        }
    })
}

/// Makes the named base images that do not exist yet.
pub fn base_images(tags: &[&str]) {
    let status = Command::new(Path::new(REPO).join("docker/test/base-images.sh"))
        .args(tags)
        .status()
        .expect("docker/test/base-images.sh runs");
    assert!(
        status.success(),
        "docker/test/base-images.sh {tags:?} failed ({status})"
    );
}

/// disco's image, built from docker/Dockerfile with the binary cargo built
/// for these tests, handed in through DISCO_BINARY: no Rust toolchain in an
/// image, no registry.
fn disco_image() -> String {
    let context = tempfile::tempdir().unwrap();
    let binary = context.path().join("disco");
    // Debug symbols are five sixths of a debug build; the image needs none.
    if try_run(
        Command::new("strip")
            .arg("-o")
            .arg(&binary)
            .arg(env!("CARGO_BIN_EXE_disco")),
    )
    .is_err()
    {
        std::fs::copy(env!("CARGO_BIN_EXE_disco"), &binary).unwrap();
    }
    copy_tree(
        &Path::new(REPO).join("zones"),
        &context.path().join("zones"),
    );
    std::fs::create_dir(context.path().join("docker")).unwrap();
    std::fs::copy(
        Path::new(REPO).join("docker/healthcheck"),
        context.path().join("docker/healthcheck"),
    )
    .unwrap();
    let dockerfile = Path::new(REPO).join("docker/Dockerfile");
    let tag = format!(
        "disco-test/disco:{}",
        content_hash(&[context.path(), &dockerfile])
    );
    build(
        &tag,
        &dockerfile,
        context.path(),
        &[
            "RUST_IMAGE=disco-test/bookworm-base:1",
            "RUNTIME_IMAGE=disco-test/bookworm-base:1",
            "DISCO_BINARY=disco",
        ],
    );
    tag
}

/// etcd's image from docker/etcd, on the base with Debian's etcd.
fn etcd_image() -> String {
    directory_image("docker/etcd", "disco-test/etcd", "disco-test/etcd-base:1")
}

/// ZooKeeper's image from docker/zookeeper, on the base with Debian's
/// ZooKeeper (made on first use: it is the largest).
pub fn zookeeper_image() -> String {
    base_images(&["disco-test/zookeeper-base:1"]);
    directory_image(
        "docker/zookeeper",
        "disco-test/zookeeper",
        "disco-test/zookeeper-base:1",
    )
}

/// The tests' stand-in for the official mariadb image, from
/// docker/test/mariadb on the base with Debian's MariaDB.
pub fn mariadb_image() -> String {
    base_images(&["disco-test/mariadb-base:1"]);
    directory_image(
        "docker/test/mariadb",
        "disco-test/mariadb",
        "disco-test/mariadb-base:1",
    )
}

/// The image of a directory holding its Dockerfile and all it copies, built
/// on `base` (its BASE_IMAGE) and tagged `repository:<hash of the directory>`.
fn directory_image(dir: &str, repository: &str, base: &str) -> String {
    let dir = Path::new(REPO).join(dir);
    let tag = format!("{repository}:{}", content_hash(&[&dir]));
    build(
        &tag,
        &dir.join("Dockerfile"),
        &dir,
        &[&format!("BASE_IMAGE={base}")],
    );
    tag
}

/// The addresses `getent ahostsv4` printed, sorted, each once.
pub fn getent_addresses(out: &str) -> Vec<String> {
    let mut addresses: Vec<String> = out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect();
    addresses.sort();
    addresses.dedup();
    addresses
}

/// `docker build` of `tag` unless it exists, then removes the repository's
/// other tags (builds of earlier sources), which would pile up.
pub fn build(tag: &str, dockerfile: &Path, context: &Path, args: &[&str]) {
    if try_docker(&["image", "inspect", tag]).is_ok() {
        return;
    }
    let mut command = Command::new("docker");
    command
        .arg("build")
        .arg("--quiet")
        .arg("-t")
        .arg(tag)
        .arg("-f")
        .arg(dockerfile);
    for arg in args {
        command.arg("--build-arg").arg(arg);
    }
    run(command.arg(context));
    // The classic builder leaves docker/Dockerfile's build stage behind.
    let _ = try_docker(&[
        "image",
        "prune",
        "--force",
        "--filter",
        "label=disco.stage=build",
    ]);
    let repository = tag.split(':').next().unwrap();
    let others = docker(&[
        "image",
        "ls",
        repository,
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ]);
    for other in others.lines().filter(|t| *t != tag) {
        // One still used by a container stays; the next build removes it.
        let _ = try_docker(&["rmi", other]);
    }
}

/// A hash of the files under `paths` (names and contents), for image tags.
fn content_hash(paths: &[&Path]) -> String {
    let mut files = Vec::new();
    for path in paths {
        collect_files(path, &mut files);
    }
    files.sort();
    let mut hasher = DefaultHasher::new();
    for file in files {
        file.file_name().hash(&mut hasher);
        std::fs::read(&file).unwrap().hash(&mut hasher);
    }
    format!("{:016x}", hasher.finish())
}

fn collect_files(path: &Path, files: &mut Vec<PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            collect_files(&entry.unwrap().path(), files);
        }
    } else {
        files.push(path.to_owned());
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// Containers and networks of one scenario, all labelled with its name:
/// whatever an earlier, killed run left is removed when the scope opens, and
/// everything is removed when it drops.
pub struct Scope {
    name: &'static str,
}

impl Scope {
    pub fn open(name: &'static str) -> Scope {
        require_engine();
        let scope = Scope { name };
        scope.remove_all();
        scope
    }

    /// The label to put on what the scenario makes (`--label` value).
    pub fn label(&self) -> String {
        format!("{SCOPE_LABEL}={}", self.name)
    }

    /// Makes a bridge network with `subnet`; its name is returned.
    pub fn network(&self, name: &str, subnet: &str) -> String {
        docker(&[
            "network",
            "create",
            "--label",
            &self.label(),
            "--subnet",
            subnet,
            name,
        ]);
        name.to_owned()
    }

    /// `docker run --detach` with the scope's label: the container's id.
    pub fn run(&self, args: &[&str]) -> String {
        let label = self.label();
        let mut all = vec!["run", "--detach", "--label", &label];
        all.extend_from_slice(args);
        docker(&all)
    }

    fn remove_all(&self) {
        let filter = format!("label={}", self.label());
        let containers = docker(&["ps", "--all", "--quiet", "--filter", &filter]);
        if !containers.is_empty() {
            let mut args = vec!["rm", "--force", "--volumes"];
            args.extend(containers.lines());
            let _ = try_docker(&args);
        }
        let networks = docker(&["network", "ls", "--quiet", "--filter", &filter]);
        for network in networks.lines() {
            let _ = try_docker(&["network", "rm", network]);
        }
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let filter = format!("label={}", self.label());
            for id in docker(&["ps", "--all", "--quiet", "--filter", &filter]).lines() {
                let logs = try_run(Command::new("docker").args(["logs", "--tail", "30", id]));
                eprintln!("--- logs of container {id}:\n{logs:?}");
            }
        }
        self.remove_all();
    }
}

/// The inspected `{{.State.Health.Status}}` of a container.
pub fn health(container: &str) -> String {
    docker(&["inspect", "--format", "{{.State.Health.Status}}", container])
}

/// A container's address on `network`.
pub fn address_on(container: &str, network: &str) -> String {
    let format = format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}");
    docker(&["inspect", "--format", &format, container])
}
