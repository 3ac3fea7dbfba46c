//! docker/compose.redis.yaml, the origin's case end to end: three Redis
//! containers from Debian's packages, each with `disco registrar --elect`
//! beside it and the redis-role hook. A client writes through
//! `primary.redis.disco.internal`; the primary's container is stopped; a
//! replica is promoted, the name moves, writes by name succeed again, the
//! other replica follows the new primary and the value is read from it; the
//! old primary comes back as a replica.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::project::Project;
use crate::support::{REPO, base_images, build, docker, eventually, images};

/// The first three octets of the test's subnet.
const NET: &str = "172.31.63";

/// Startup of five containers and etcd on a loaded 2-core machine, and the
/// first election (rise 2 of the tcp check).
const STARTUP: Duration = Duration::from_secs(90);

/// A change reaching the client: etcd's watch, disco, Docker's resolver;
/// a replica's hook runs within a keep-alive (a third of the 5 s lease).
const CONVERGE: Duration = Duration::from_secs(20);

const PRIMARY: &str = "primary.redis.disco.internal";

/// docker/redis on the base with Debian's Redis and this build's disco,
/// tagged by a hash of the directory and disco's image.
pub(crate) fn redis_image(disco: &str) -> String {
    base_images(&["disco-test/redis-base:1"]);
    let dir = Path::new(REPO).join("docker/redis");
    let mut hasher = DefaultHasher::new();
    disco.hash(&mut hasher);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for file in files {
        file.file_name().hash(&mut hasher);
        std::fs::read(&file).unwrap().hash(&mut hasher);
    }
    let tag = format!("disco-test/redis:{:016x}", hasher.finish());
    build(
        &tag,
        &dir.join("Dockerfile"),
        &dir,
        &[
            "BASE_IMAGE=disco-test/redis-base:1",
            &format!("DISCO_IMAGE={disco}"),
        ],
    );
    tag
}

/// `redis-cli ARGS` in the client.
fn cli(project: &Project, args: &[&str]) -> Result<String, String> {
    let mut command = vec!["redis-cli"];
    command.extend_from_slice(args);
    project.exec("client", &command)
}

/// The address `name` resolves to in the client (exactly one), through
/// Docker's resolver and disco.
fn resolve(project: &Project, name: &str) -> Result<String, String> {
    let out = project.exec("client", &["getent", "ahostsv4", name])?;
    match crate::support::getent_addresses(&out).as_slice() {
        [one] => Ok(one.clone()),
        other => Err(format!("{name} resolves to {other:?}")),
    }
}

/// Each Redis service's address on the demo's network.
fn addresses(project: &Project) -> Vec<(&'static str, String)> {
    ["redis-1", "redis-2", "redis-3"]
        .into_iter()
        .map(|service| {
            let id = project.container(service);
            let address = docker(&[
                "inspect",
                "--format",
                "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                &id,
            ]);
            (service, address)
        })
        .collect()
}

/// The first line of `ROLE` of the Redis at `address`: master or slave.
fn redis_role(project: &Project, address: &str) -> Result<String, String> {
    let out = cli(project, &["-h", address, "role"])?;
    Ok(out.lines().next().unwrap_or_default().to_owned())
}

#[test]
fn writes_by_name_reach_the_primary_across_a_failover_and_the_old_one_returns_as_a_replica() {
    let images = images();
    let redis = redis_image(&images.disco);
    let project = Project::new(
        "disco-test-redis",
        &["docker/compose.redis.yaml"],
        &[
            ("DISCO_IMAGE", &images.disco),
            ("ETCD_IMAGE", &images.etcd),
            ("REDIS_IMAGE", &redis),
            ("REDIS_NET", NET),
        ],
    );
    project.up(&[]);
    let members = addresses(&project);
    let name_of = |address: &str| {
        members
            .iter()
            .find(|(_, a)| a == address)
            .map(|(s, _)| *s)
            .unwrap_or_else(|| panic!("{address} is none of {members:?}"))
    };

    // One primary in DNS, a master in Redis; the others replicate from it.
    let first = eventually("primary.redis answers", STARTUP, || {
        resolve(&project, PRIMARY)
    });
    let leader = name_of(&first);
    eventually(
        "the primary's Redis is a master",
        CONVERGE,
        || match redis_role(&project, &first)?.as_str() {
            "master" => Ok(()),
            other => Err(other.to_owned()),
        },
    );
    let write = |value: &str| {
        eventually(
            &format!("a write of {value} by name"),
            CONVERGE,
            || match cli(&project, &["-h", PRIMARY, "set", "greeting", value])?.as_str() {
                "OK" => Ok(()),
                other => Err(other.to_owned()),
            },
        )
    };
    let read_at = |address: &str, value: &str| {
        eventually(
            &format!("{} reads {value}", name_of(address)),
            CONVERGE,
            || match cli(&project, &["-h", address, "get", "greeting"])? {
                got if got == value => Ok(()),
                got => Err(format!("got {got:?}")),
            },
        )
    };
    write("hello");
    for (_, address) in members.iter().filter(|(s, _)| *s != leader) {
        read_at(address, "hello");
        assert_eq!(redis_role(&project, address).unwrap(), "slave");
    }

    // The primary's container stops: withdrawn first, another elected and
    // promoted; writes by name succeed again.
    let container = project.container(leader);
    let stopped = Instant::now();
    let stopping = std::thread::spawn(move || docker(&["stop", "--time", "10", &container]));
    let second = eventually("primary.redis moves", CONVERGE, || {
        match resolve(&project, PRIMARY)? {
            same if same == first => Err("still the stopped one".to_owned()),
            other => Ok(other),
        }
    });
    let moved = stopped.elapsed();
    write("again");
    let written = stopped.elapsed();
    stopping.join().unwrap();
    let exited = stopped.elapsed();
    eprintln!(
        "docker stop of the primary: {PRIMARY} moved after {moved:?} (asked through \
         docker-compose exec), written by name again after {written:?}; the container \
         exited after {exited:?}"
    );
    // The replica left follows the new primary: the value is read from it.
    let (_, third) = members
        .iter()
        .find(|(_, a)| *a != first && *a != second)
        .unwrap();
    read_at(third, "again");

    // The old primary comes back as a replica of the new one.
    project.compose(&["start", leader]);
    read_at(&first, "again");
    assert_eq!(redis_role(&project, &first).unwrap(), "slave");
    assert_eq!(resolve(&project, PRIMARY).unwrap(), second);
    let mut expected = vec![first.clone(), third.clone()];
    expected.sort();
    eventually("both replicas answer", CONVERGE, || {
        let found = crate::support::getent_addresses(
            &project
                .exec(
                    "client",
                    &["getent", "ahostsv4", "replica.redis.disco.internal"],
                )
                .unwrap_or_default(),
        );
        if found == expected {
            Ok(())
        } else {
            Err(format!("{found:?}"))
        }
    });
}
