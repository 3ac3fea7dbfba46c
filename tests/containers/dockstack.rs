//! docker/compose.zookeeper.yaml, the DockStack demo: MariaDB on "host 1",
//! registered in ZooKeeper by the DockStack-form registrar (which asks the
//! Docker engine for its published port), reached from "host 2" by a client
//! whose only nameserver is disco; gone from DNS while MariaDB is stopped,
//! back when it starts.

use std::process::Command;
use std::time::Duration;

use crate::project::Project;
use crate::support::{TOOLS_IMAGE, eventually, images, mariadb_image, run, zookeeper_image};

/// The name the client asks for MariaDB: the Nerve node's directory
/// (`/nerve` + `/test`) names the service, as it does for Synapse; the
/// instance is `mysql.test.disco.internal`.
const MYSQL: &str = "test.disco.internal";

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
            ("HOST2_NET", "172.31.55"),
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
