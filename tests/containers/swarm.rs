//! docker/stack.yaml and docker/stack.zookeeper.yaml on a single-node
//! swarm: `docker stack deploy` with a size of 3 forms a healthy etcd
//! cluster (or ZooKeeper ensemble) on the backend overlay, and a container
//! on the frontend network resolves a registered service through disco.

use std::process::Command;
use std::time::Duration;

use crate::support::{
    Images, REPO, Scope, TOOLS_IMAGE, address_on, docker, eventually, images, run, try_docker,
    try_run, zookeeper_image,
};

/// The stack's name, and the frontend network's (the stack file's
/// SD_FRONTEND), so that a user's own `sd_frontend` is never touched.
pub(crate) const STACK: &str = "disco-test";
pub(crate) const FRONTEND: &str = "disco-test-sd-frontend";

/// The node label that marks a swarm this test made, so that a later run
/// knows a swarm left by a killed run is its own to leave.
const OURS: &str = "disco-test.swarm";

/// A single-node swarm for the test: made (and left at the end) unless the
/// engine already is in one, which is used as it is and kept.
pub(crate) struct Swarm {
    leave: bool,
    /// Whether docker_gwbridge, which `swarm init` makes, existed before.
    had_gwbridge: bool,
}

impl Swarm {
    pub(crate) fn join() -> Swarm {
        let state = docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]);
        let had_gwbridge = try_docker(&["network", "inspect", "docker_gwbridge"]).is_ok();
        if state == "active" {
            // One a killed run made is left at the end, with its
            // docker_gwbridge; anyone else's is kept as it is.
            let labels = docker(&[
                "node",
                "inspect",
                "self",
                "--format",
                "{{json .Spec.Labels}}",
            ]);
            let ours = labels.contains(OURS);
            let swarm = Swarm {
                leave: ours,
                had_gwbridge: !ours,
            };
            swarm.remove_stack();
            return swarm;
        }
        if let Err(e) = try_docker(&["swarm", "init", "--advertise-addr", "127.0.0.1"]) {
            panic!("this engine cannot run a swarm: {e}");
        }
        // The guard first: whatever fails from here on, the swarm is left.
        let swarm = Swarm {
            leave: true,
            had_gwbridge,
        };
        let node = docker(&["info", "--format", "{{.Swarm.NodeID}}"]);
        docker(&["node", "update", "--label-add", &format!("{OURS}=1"), &node]);
        swarm
    }

    fn remove_stack(&self) {
        let _ = try_docker(&["stack", "rm", STACK]);
        // The networks go once their tasks have: wait, or leaving fails.
        let filter = format!("label=com.docker.stack.namespace={STACK}");
        eventually(
            "the test stack's networks are removed",
            Duration::from_secs(60),
            || match docker(&["network", "ls", "--quiet", "--filter", &filter]).as_str() {
                "" => Ok(()),
                left => Err(format!("networks left: {left}")),
            },
        );
    }
}

impl Drop for Swarm {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for service in ["etcd", "disco", "registrar"] {
                let logs = try_run(Command::new("docker").args([
                    "service",
                    "logs",
                    "--tail",
                    "20",
                    &format!("{STACK}_{service}"),
                ]));
                eprintln!("--- logs of {STACK}_{service}: {logs:?}");
            }
        }
        self.remove_stack();
        if self.leave {
            if let Err(e) = try_docker(&["swarm", "leave", "--force"]) {
                eprintln!("leaving the test's swarm: {e}");
            }
            // Leaving stops the tasks but may keep their containers.
            let filter = format!("label=com.docker.stack.namespace={STACK}");
            for id in docker(&["ps", "--all", "--quiet", "--filter", &filter]).lines() {
                let _ = try_docker(&["rm", "--force", "--volumes", id]);
            }
            if !self.had_gwbridge {
                let _ = try_docker(&["network", "rm", "docker_gwbridge"]);
            }
        }
    }
}

/// The containers of the stack's `service` on this node.
pub(crate) fn containers(service: &str) -> Vec<String> {
    let filter = format!("label=com.docker.swarm.service.name={STACK}_{service}");
    docker(&["ps", "--quiet", "--filter", &filter])
        .lines()
        .map(String::from)
        .collect()
}

/// Deploys `file` (in docker/) with `env`, waits for three tasks of the
/// store's `service`, and returns them.
fn deploy(file: &str, env: &[(&str, &str)], service: &str) -> Vec<String> {
    deploy_sized(file, env, service, 3)
}

/// The same, waiting for `size` tasks of `service`.
pub(crate) fn deploy_sized(
    file: &str,
    env: &[(&str, &str)],
    service: &str,
    size: usize,
) -> Vec<String> {
    let stack_file = format!("{REPO}/docker/{file}");
    run(Command::new("docker")
        .args(["stack", "deploy", "--compose-file", &stack_file, STACK])
        .envs(env.iter().copied())
        .env("SD_FRONTEND", FRONTEND));
    eventually(
        &format!("{size} {service} tasks run"),
        Duration::from_secs(120),
        || match containers(service) {
            tasks if tasks.len() == size => Ok(tasks),
            other => Err(format!("{} running", other.len())),
        },
    )
}

/// disco's stack with one etcd member and the Docker socket's group, for
/// the tests whose subject is what registers beside it; returns the etcd
/// task.
pub(crate) fn deploy_single_etcd_stack(images: &Images) -> Vec<String> {
    let socket_group = run(Command::new("stat").args(["-c", "%g", "/var/run/docker.sock"]));
    deploy_sized(
        "stack.yaml",
        &[
            ("ETCD_CLUSTER_SIZE", "1"),
            ("DISCO_REGISTRY", "etcd://etcd1:2379/disco"),
            ("ETCD_IMAGE", &images.etcd),
            ("DISCO_IMAGE", &images.disco),
            ("DOCKER_GID", &socket_group),
        ],
        "etcd",
        1,
    )
}

/// A container of another stack joins the frontend network, points its DNS
/// at disco and resolves `name`: the address, first of getent's lines.
///
/// This engine has no IPVS ("Could not get ipvs family information from
/// the kernel"), so a service's virtual IP carries no traffic here: the
/// client names the disco tasks' addresses instead, the same servers.
fn resolve_on_frontend(scope: &Scope, name: &str) -> String {
    let dns: Vec<String> = eventually("two disco tasks run", Duration::from_secs(120), || {
        let addresses: Vec<String> = containers("disco")
            .iter()
            .map(|id| address_on(id, FRONTEND))
            .collect();
        if addresses.len() == 2 {
            Ok(addresses)
        } else {
            Err(format!("{addresses:?}"))
        }
    });
    let label = scope.label();
    let mut client = vec!["run", "--rm", "--label", &label, "--network", FRONTEND];
    for address in &dns {
        client.extend(["--dns", address]);
    }
    client.extend([
        "--dns-search",
        "disco.internal",
        TOOLS_IMAGE,
        "getent",
        "ahostsv4",
        name,
    ]);
    let answer = eventually(
        &format!("a frontend container resolves {name}"),
        Duration::from_secs(60),
        || try_docker(&client),
    );
    answer
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn the_etcd_stack_forms_a_cluster_and_disco_answers_the_frontend() {
    let images = images();
    let scope = Scope::open("swarm");
    let swarm = Swarm::join();
    let members = deploy(
        "stack.yaml",
        &[
            ("ETCD_CLUSTER_SIZE", "3"),
            ("ETCD_IMAGE", &images.etcd),
            ("DISCO_IMAGE", &images.disco),
        ],
        "etcd",
    );
    // Every member healthy, as etcd sees it: the cluster formed from the
    // size alone.
    let health = eventually(
        "every etcd member is healthy",
        Duration::from_secs(120),
        || {
            let json = try_docker(&[
                "exec",
                &members[0],
                "etcdctl",
                "endpoint",
                "health",
                "--cluster",
                "--write-out=json",
            ])?;
            match json.matches(r#""health":true"#).count() {
                3 => Ok(json),
                _ => Err(json),
            }
        },
    );
    assert_eq!(health.matches(r#""endpoint""#).count(), 3, "{health}");
    docker(&[
        "exec",
        &members[0],
        "etcdctl",
        "put",
        "/disco/services/web/web-1",
        r#"{"address":"10.53.0.80","port":8080}"#,
    ]);
    assert_eq!(resolve_on_frontend(&scope, "web"), "10.53.0.80");
    drop(swarm);
}

/// What ZooKeeper server `container` says it is: leader, follower or
/// standalone.
fn zookeeper_mode(container: &str) -> Result<String, String> {
    let srvr = "exec 3<>/dev/tcp/127.0.0.1/2181 && printf srvr >&3 && timeout 2 cat <&3";
    let out = try_docker(&["exec", container, "bash", "-c", srvr])?;
    out.lines()
        .find_map(|l| l.strip_prefix("Mode: "))
        .map(String::from)
        .ok_or(out)
}

#[test]
fn the_zookeeper_stack_forms_an_ensemble_and_disco_answers_the_frontend() {
    let images = images();
    let zookeeper = zookeeper_image();
    let scope = Scope::open("swarm");
    let swarm = Swarm::join();
    let servers = deploy(
        "stack.zookeeper.yaml",
        &[
            ("ZK_ENSEMBLE_SIZE", "3"),
            ("ZOOKEEPER_IMAGE", &zookeeper),
            ("DISCO_IMAGE", &images.disco),
        ],
        "zookeeper",
    );
    // One leader and two followers: the ensemble formed from the size alone.
    let mut modes = eventually(
        "the ensemble has a leader",
        Duration::from_secs(120),
        || {
            let modes: Vec<String> = servers
                .iter()
                .map(|c| zookeeper_mode(c))
                .collect::<Result<_, _>>()?;
            if modes.iter().any(|m| m == "leader") {
                Ok(modes)
            } else {
                Err(format!("{modes:?}"))
            }
        },
    );
    modes.sort();
    assert_eq!(modes, ["follower", "follower", "leader"]);
    let zk_cli = "for node in /disco /disco/services /disco/services/web; do \
                  /usr/share/zookeeper/bin/zkCli.sh -server 127.0.0.1:2181 create $node '' >/dev/null 2>&1; done; \
                  /usr/share/zookeeper/bin/zkCli.sh -server 127.0.0.1:2181 create /disco/services/web/web-1 \
                  '{\"address\":\"10.53.0.81\",\"port\":8080}' 2>&1 | grep -q '^Created'";
    docker(&["exec", &servers[0], "bash", "-c", zk_cli]);
    assert_eq!(resolve_on_frontend(&scope, "web"), "10.53.0.81");
    drop(swarm);
}

/// The replicated service of another stack that the global registrar
/// registers: two busybox httpd tasks on the frontend network, labelled
/// `disco.service=web` on the service.
const WEB: &str = "disco-test-web";

#[test]
fn the_global_registrar_registers_a_replicated_service_s_tasks_under_its_name() {
    let images = images();
    let scope = Scope::open("swarm");
    let swarm = Swarm::join();
    deploy_single_etcd_stack(images);
    let label = scope.label();
    let web = WebService;
    docker(&[
        "service",
        "create",
        "--detach",
        "--name",
        WEB,
        "--replicas",
        "2",
        "--network",
        FRONTEND,
        "--label",
        "disco.service=web",
        "--label",
        "disco.port=8080",
        "--container-label",
        &label,
        TOOLS_IMAGE,
        "busybox",
        "httpd",
        "-f",
        "-p",
        "8080",
    ]);
    let filter = format!("label=com.docker.swarm.service.name={WEB}");
    let tasks: Vec<String> = eventually("two web tasks run", Duration::from_secs(120), || {
        let tasks: Vec<String> = docker(&["ps", "--quiet", "--filter", &filter])
            .lines()
            .map(String::from)
            .collect();
        if tasks.len() == 2 {
            Ok(tasks)
        } else {
            Err(format!("{} running", tasks.len()))
        }
    });
    let mut expected: Vec<String> = tasks.iter().map(|t| address_on(t, FRONTEND)).collect();
    expected.sort();
    // Both tasks answer under the service's name, at their own addresses
    // on the service's network.
    let found = eventually(
        "web answers both tasks' addresses",
        Duration::from_secs(120),
        || {
            let mut found = resolve_all_on_frontend(&scope, "web.disco.internal");
            found.sort();
            if found == expected {
                Ok(found)
            } else {
                Err(format!("{found:?}, expected {expected:?}"))
            }
        },
    );
    assert_eq!(found.len(), 2);
    drop(web);
    eventually(
        "web leaves DNS",
        Duration::from_secs(60),
        || match resolve_all_on_frontend(&scope, "web.disco.internal").as_slice() {
            [] => Ok(()),
            left => Err(format!("{left:?}")),
        },
    );
    drop(swarm);
}

/// Removes [`WEB`] when dropped (before the swarm, whose networks it uses).
struct WebService;

impl Drop for WebService {
    fn drop(&mut self) {
        let _ = try_docker(&["service", "rm", WEB]);
        let filter = format!("label=com.docker.swarm.service.name={WEB}");
        // Never a panic here: it may run while one unwinds.
        for _ in 0..240 {
            match try_docker(&["ps", "--all", "--quiet", "--filter", &filter]) {
                Ok(left) if !left.is_empty() => {
                    std::thread::sleep(Duration::from_millis(250));
                }
                _ => break,
            }
        }
    }
}

/// Every address a frontend container resolves `name` to (none when it
/// does not resolve).
fn resolve_all_on_frontend(scope: &Scope, name: &str) -> Vec<String> {
    let dns: Vec<String> = containers("disco")
        .iter()
        .map(|id| address_on(id, FRONTEND))
        .collect();
    let label = scope.label();
    let mut client = vec!["run", "--rm", "--label", &label, "--network", FRONTEND];
    for address in &dns {
        client.extend(["--dns", address]);
    }
    client.extend([TOOLS_IMAGE, "getent", "ahostsv4", name]);
    crate::support::getent_addresses(&try_docker(&client).unwrap_or_default())
}
