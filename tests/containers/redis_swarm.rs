//! docker/stack.redis.yaml on a single-node swarm beside disco's stack
//! (docker/stack.yaml, one etcd member): three Redis tasks elect a primary
//! through disco's etcd; a client on the Redis network writes through
//! `primary.redis.disco.internal`; the primary's container is stopped; a
//! replica is promoted and written by name; swarm starts the stopped task
//! again, and it comes back as a replica holding the new value.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::redis::redis_image;
use crate::support::{Scope, address_on, docker, eventually, images, run, try_docker};
use crate::swarm::{FRONTEND, STACK, Swarm, containers, deploy_single_etcd_stack};

/// The Redis stack, and its network (the stack file's REDIS_NETWORK).
const REDIS_STACK: &str = "disco-test-redis";
const REDIS_NETWORK: &str = "disco-test-redis";
const REDIS_SUBNET: &str = "10.163.0.0/24";

const PRIMARY: &str = "primary.redis.disco.internal";

/// Removes the Redis stack, then disco's, when dropped (before the swarm
/// guard, which then finds nothing left to wait for).
struct RedisStack;

/// `docker stack rm NAME`, its containers waited for, then whatever of its
/// networks `stack rm` left (it removes them once, while the tasks are
/// still stopping, and a network in use stays). Never panics: it may run
/// while one unwinds.
fn remove_stack(name: &str) {
    let _ = try_docker(&["stack", "rm", name]);
    let filter = format!("label=com.docker.stack.namespace={name}");
    for _ in 0..240 {
        match try_docker(&["ps", "--all", "--quiet", "--filter", &filter]) {
            Ok(left) if !left.is_empty() => std::thread::sleep(Duration::from_millis(250)),
            _ => break,
        }
    }
    for _ in 0..120 {
        let networks =
            try_docker(&["network", "ls", "--quiet", "--filter", &filter]).unwrap_or_default();
        if networks.is_empty() {
            break;
        }
        for network in networks.lines() {
            let _ = try_docker(&["network", "rm", network]);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

impl Drop for RedisStack {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let logs = crate::support::try_run(Command::new("docker").args([
                "service",
                "logs",
                "--tail",
                "30",
                &format!("{REDIS_STACK}_redis"),
            ]));
            eprintln!("--- logs of {REDIS_STACK}_redis: {logs:?}");
        }
        remove_stack(REDIS_STACK);
        remove_stack(STACK);
    }
}

/// The running Redis task containers.
fn redis_tasks() -> Vec<String> {
    let filter = format!("label=com.docker.swarm.service.name={REDIS_STACK}_redis");
    docker(&["ps", "--quiet", "--filter", &filter])
        .lines()
        .map(String::from)
        .collect()
}

/// A client on the Redis network and disco's frontend, asking disco's
/// tasks: a container of the Redis image, commands run in it.
struct Client {
    id: String,
}

/// Removed first: it holds the Redis network, which the stack's removal
/// waits for.
impl Drop for Client {
    fn drop(&mut self) {
        let _ = try_docker(&["rm", "--force", &self.id]);
    }
}

impl Client {
    fn start(scope: &Scope, image: &str, dns: &[String]) -> Client {
        let mut args = vec![
            "--name",
            "disco-test-redis-client",
            "--network",
            REDIS_NETWORK,
            "--entrypoint",
            "sleep",
        ];
        for address in dns {
            args.extend(["--dns", address]);
        }
        args.extend([image, "infinity"]);
        let id = scope.run(&args);
        // One network at `docker run`: this engine refuses two there.
        docker(&["network", "connect", FRONTEND, &id]);
        Client { id }
    }

    fn run(&self, command: &str, args: &[&str]) -> Result<String, String> {
        let mut all = vec!["exec", self.id.as_str(), command];
        all.extend_from_slice(args);
        try_docker(&all)
    }

    fn cli(&self, args: &[&str]) -> Result<String, String> {
        self.run("redis-cli", args)
    }

    /// The one address `name` resolves to.
    fn resolve(&self, name: &str) -> Result<String, String> {
        let out = self.run("getent", &["ahostsv4", name])?;
        match crate::support::getent_addresses(&out).as_slice() {
            [one] => Ok(one.clone()),
            other => Err(format!("{name} resolves to {other:?}")),
        }
    }

    fn role(&self, address: &str) -> Result<String, String> {
        let out = self.cli(&["-h", address, "role"])?;
        Ok(out.lines().next().unwrap_or_default().to_owned())
    }
}

#[test]
fn the_redis_stack_fails_over_by_name_on_a_swarm() {
    let images = images();
    let redis = redis_image(&images.disco);
    let scope = Scope::open("swarm-redis");
    let swarm = Swarm::join();
    deploy_single_etcd_stack(images);
    let stack = RedisStack;
    let backend = format!("{STACK}_sd_backend");
    run(Command::new("docker")
        .args(["stack", "deploy", "--compose-file"])
        .arg(format!("{}/docker/stack.redis.yaml", crate::support::REPO))
        .arg(REDIS_STACK)
        .env("REDIS_IMAGE", &redis)
        .env("REDIS_NETWORK", REDIS_NETWORK)
        .env("REDIS_SUBNET", REDIS_SUBNET)
        .env("SD_BACKEND", &backend)
        .env("DISCO_REGISTRY", "etcd://etcd1:2379/disco"));
    let tasks = eventually(
        "three redis tasks run",
        Duration::from_secs(120),
        || match redis_tasks() {
            tasks if tasks.len() == 3 => Ok(tasks),
            other => Err(format!("{} running", other.len())),
        },
    );
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
    let client = Client::start(&scope, &redis, &dns);
    let members: Vec<(String, String)> = tasks
        .iter()
        .map(|id| (id.clone(), address_on(id, REDIS_NETWORK)))
        .collect();

    // One primary, registered at its address on the Redis network.
    let first = eventually("primary.redis answers", Duration::from_secs(120), || {
        client.resolve(PRIMARY)
    });
    let (leader, _) = members
        .iter()
        .find(|(_, a)| *a == first)
        .unwrap_or_else(|| panic!("{first} is no task's address: {members:?}"));
    let write = |value: &str| {
        eventually(
            &format!("a write of {value} by name"),
            Duration::from_secs(30),
            || match client
                .cli(&["-h", PRIMARY, "set", "greeting", value])?
                .as_str()
            {
                "OK" => Ok(()),
                other => Err(other.to_owned()),
            },
        )
    };
    let read_at = |address: &str, value: &str| {
        eventually(
            &format!("{address} reads {value}"),
            Duration::from_secs(30),
            || match client.cli(&["-h", address, "get", "greeting"])? {
                got if got == value => Ok(()),
                got => Err(format!("got {got:?}")),
            },
        )
    };
    write("hello");
    for (_, address) in members.iter().filter(|(_, a)| *a != first) {
        read_at(address, "hello");
    }

    // The primary's task container stops: another is promoted, by name.
    let stopped = Instant::now();
    docker(&["stop", "--time", "10", leader]);
    let second = eventually(
        "primary.redis moves",
        Duration::from_secs(30),
        || match client.resolve(PRIMARY)? {
            same if same == first => Err("still the stopped one".to_owned()),
            other => Ok(other),
        },
    );
    write("again");
    eprintln!(
        "swarm: {PRIMARY} moved and was written again {:?} after docker stop",
        stopped.elapsed()
    );
    let (_, third) = members
        .iter()
        .find(|(_, a)| *a != first && *a != second)
        .unwrap();
    read_at(third, "again");

    // Swarm starts the task again (a new container in the same slot): it
    // comes back as a replica of the new primary.
    let back = eventually(
        "the stopped task is replaced",
        Duration::from_secs(120),
        || match redis_tasks().into_iter().find(|t| !tasks.contains(t)) {
            Some(new) if redis_tasks().len() == 3 => Ok(new),
            _ => Err("not yet".to_owned()),
        },
    );
    let back = address_on(&back, REDIS_NETWORK);
    read_at(&back, "again");
    assert_eq!(client.role(&back).unwrap(), "slave");
    assert_eq!(client.resolve(PRIMARY).unwrap(), second);
    // The client holds the Redis and frontend networks: it goes first.
    drop(client);
    drop(stack);
    drop(swarm);
}
