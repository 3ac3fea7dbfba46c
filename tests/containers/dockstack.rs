//! docker/compose.zookeeper.yaml, the DockStack demo: MariaDB on "host 1",
//! registered in ZooKeeper by the DockStack-form registrar (which asks the
//! Docker engine for its published port), reached from "host 2" by a client
//! whose only nameserver is disco; gone from DNS while MariaDB is stopped,
//! back when it starts.

use std::process::Command;
use std::time::Duration;

use crate::project::Project;
use crate::support::{
    TOOLS_IMAGE, eventually, getent_addresses, images, mariadb_image, run, zookeeper_image,
};

/// The name the client asks for MariaDB: the service `-s mysql:…` names,
/// which the registrar writes into its Nerve node (`"service":"mysql"`)
/// beside Nerve's fields, in `/nerve/test` where Synapse looks.
const MYSQL: &str = "mysql.disco.internal";

/// "Host 2"'s network, on whose address (`.1`) MariaDB's port is published
/// and registered (SERVICE_HOST).
const HOST2_NET: &str = "172.31.55";

/// The registrar's --interval and --fall, and disco's default TTL: MariaDB
/// stopped leaves DNS within fall × interval + TTL, plus a check's timeout
/// and the watch's delivery.
const WITHDRAWN: Duration = Duration::from_secs(3 + 5 + 3);

/// How long a registration may take to reach the client.
const CONVERGE: Duration = Duration::from_secs(60);

/// `mariadb -h NAME -e 'select 1'` in the client: the row, or why not.
fn select_one(project: &Project) -> Result<String, String> {
    project.exec(
        "client",
        &[
            "timeout",
            "10",
            "mariadb",
            "--batch",
            "--skip-column-names",
            "-h",
            MYSQL,
            "-e",
            "select 1",
        ],
    )
}

#[test]
fn a_client_on_host_2_reaches_mariadb_on_host_1_through_disco() {
    let images = images();
    let zookeeper = zookeeper_image();
    let mariadb = mariadb_image();
    let socket_group = run(Command::new("stat").args(["-c", "%g", "/var/run/docker.sock"]));
    let project = Project::new(
        "disco-test-dockstack",
        &["docker/compose.zookeeper.yaml"],
        &[
            ("DISCO_IMAGE", &images.disco),
            ("ZOOKEEPER_IMAGE", &zookeeper),
            ("MARIADB_IMAGE", &mariadb),
            ("CLIENT_IMAGE", TOOLS_IMAGE),
            ("HOST1_NET", "172.31.54"),
            ("HOST2_NET", HOST2_NET),
            ("MYSQL_CONTAINER", "disco-test-dockstack-mysql"),
            ("DOCKER_GID", &socket_group),
        ],
    );
    project.up(&[]);

    let row = eventually(
        "the client selects 1 from MariaDB through disco",
        CONVERGE,
        || select_one(&project),
    );
    assert_eq!(row, "1");
    // The instance is named after the address and port registered, so that
    // another host's registrar of mysql would be another instance.
    let instance = format!("{}-1-3306.{MYSQL}", HOST2_NET.replace('.', "-"));
    let found = project
        .exec("client", &["getent", "ahostsv4", &instance])
        .unwrap_or_else(|e| panic!("{instance}: {e}"));
    assert_eq!(getent_addresses(&found), [format!("{HOST2_NET}.1")]);

    project.compose(&["stop", "--timeout", "5", "mysql"]);
    eventually(&format!("{MYSQL} leaves DNS"), WITHDRAWN, || match project
        .exec("client", &["getent", "hosts", MYSQL])
    {
        Err(_) => Ok(()),
        Ok(found) => Err(format!("still resolves: {found}")),
    });

    project.compose(&["start", "mysql"]);
    let row = eventually("MariaDB is back in DNS", CONVERGE, || select_one(&project));
    assert_eq!(row, "1");
}
