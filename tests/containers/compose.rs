//! docker/compose.yaml: a client whose `dns:` is disco finds the web service
//! by name through Docker's embedded resolver; the machine's `--docker`
//! registrar publishes it from its labels, withdraws it while it is stopped
//! and publishes it again; a disco replica or an etcd member may be down.

use std::time::Duration;

use crate::project::Project;
use std::process::Command;

use crate::support::{TOOLS_IMAGE, eventually, getent_addresses, health, images, run};

/// The first three octets of the test's frontend subnet.
const NET: &str = "172.31.53";

/// How long a registration may take to reach the client, through etcd's
/// watch, disco and Docker's resolver. Far above the real figure.
const CONVERGE: Duration = Duration::from_secs(20);

/// The registrar withdraws a stopping container at its `kill` event; then
/// disco's DISCO_TTL for resolvers that cached it, and the watch's
/// delivery, which this allows.
const WITHDRAWN: Duration = Duration::from_secs(5 + 3);

/// How long nine containers may take to start and etcd to form its
/// cluster, on a loaded 2-core machine with fuse-overlayfs (seen: 20 s
/// not enough once).
const STARTUP: Duration = Duration::from_secs(90);

/// With one disco replica down, Docker's resolver waits 4 s for it before
/// it asks the other, for every query, and glibc asks several.
const FAILOVER: Duration = Duration::from_secs(60);

/// `getent ahostsv4 NAME` in the client: the addresses, or why not.
fn resolve(project: &Project, name: &str) -> Result<Vec<String>, String> {
    let out = project.exec("client", &["getent", "ahostsv4", name])?;
    Ok(getent_addresses(&out))
}

/// Waits until the client resolves `name` to exactly `expected`.
fn resolves_to(project: &Project, name: &str, expected: &[&str], within: Duration) {
    eventually(
        &format!("the client resolves {name} to {expected:?}"),
        within,
        || match resolve(project, name)? {
            found if found == expected => Ok(()),
            found => Err(format!("got {found:?}")),
        },
    )
}

/// Registers `service`/`instance` at `address` through etcd member `member`.
fn register(project: &Project, member: &str, service: &str, instance: &str, address: &str) {
    let key = format!("/disco/services/{service}/{instance}");
    let value = format!(r#"{{"address":"{address}","port":8080,"ports":{{"http":8080}}}}"#);
    let endpoint = format!("--endpoints=http://{member}:2379");
    project
        .exec(member, &["etcdctl", &endpoint, "put", &key, &value])
        .unwrap_or_else(|e| panic!("registering {key}: {e}"));
}

#[test]
fn the_client_finds_web_through_disco_and_the_registrar_withdraws_it_while_it_is_down() {
    let images = images();
    let socket_group = run(Command::new("stat").args(["-c", "%g", "/var/run/docker.sock"]));
    let project = Project::new(
        "disco-test-compose",
        &["docker/compose.yaml"],
        &[
            ("DISCO_IMAGE", &images.disco),
            ("ETCD_IMAGE", &images.etcd),
            ("WEB_IMAGE", TOOLS_IMAGE),
            ("CLIENT_IMAGE", TOOLS_IMAGE),
            ("FRONTEND_NET", NET),
            ("DOCKER_GID", &socket_group),
        ],
    );
    project.up(&[]);
    let web = format!("{NET}.80");
    eventually("etcd has quorum", STARTUP, || {
        project.exec("etcd1", &["etcdctl", "endpoint", "health", "--cluster"])
    });

    // "web" is not a container (the container is web-1), so Docker's
    // resolver forwards it to disco, first as is (ndots:0), then with the
    // search domain.
    resolves_to(&project, "web", &[&web], CONVERGE);
    resolves_to(&project, "web.disco.internal", &[&web], CONVERGE);
    // (Debian's busybox wget crashes on -T: coreutils' timeout bounds it.)
    let wget = [
        "timeout",
        "10",
        "busybox",
        "wget",
        "-q",
        "-O",
        "-",
        "http://web:8080/",
    ];
    let page = project
        .exec("client", &wget)
        .expect("an HTTP request to web");
    assert_eq!(page, "hello from web-1");

    eventually(
        "the registrar's HEALTHCHECK reports healthy",
        CONVERGE,
        || match health(&project.container("registrar")).as_str() {
            "healthy" => Ok(()),
            other => Err(other.to_owned()),
        },
    );

    // The web container stopped: the registrar withdraws it at once.
    project.compose(&["stop", "--timeout", "1", "web-1"]);
    eventually("web leaves DNS", WITHDRAWN, || {
        match resolve(&project, "web") {
            Err(_) => Ok(()),
            Ok(found) => Err(format!("still resolves to {found:?}")),
        }
    });
    // Started again: one passing check (--rise=1) publishes it.
    project.compose(&["start", "web-1"]);
    resolves_to(&project, "web", &[&web], CONVERGE);

    // One replica down: the client's second nameserver answers.
    project.compose(&["stop", "--timeout", "1", "disco1"]);
    resolves_to(&project, "web", &[&web], FAILOVER);
    project.compose(&["start", "disco1"]);

    // One etcd member down: the other two hold quorum, disco's watch moves to
    // them, and a new registration still reaches the client.
    project.compose(&["stop", "--timeout", "1", "etcd1"]);
    resolves_to(&project, "web", &[&web], CONVERGE);
    register(&project, "etcd2", "api", "api-1", &format!("{NET}.81"));
    resolves_to(
        &project,
        "api.disco.internal",
        &[&format!("{NET}.81")],
        CONVERGE,
    );
    project.compose(&["start", "etcd1"]);
}
