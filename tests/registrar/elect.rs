//! `--elect` (DESIGN §5, "Roles"): three registrars of one service on a
//! real store, while a prober asks `primary.db` every 10 ms from start to
//! end. Exactly one primary after start; kill -9 of the leader gives a new
//! primary within TTL + interval; a leader frozen (SIGSTOP) past its TTL is
//! replaced, and after SIGCONT never answers as primary again and its role
//! file says so; a leader whose checks fail steps down and another leads.
//! Across every scenario the prober never sees two primaries.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_net::client::{Client as DnsClient, ClientHandle};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::udp::UdpClientStream;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use nix::sys::signal::Signal;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::harness::{Registrar, TestService};
use crate::support::Disco;

/// The lease TTL (etcd) or session timeout (ZooKeeper) the registrars ask.
pub const TTL: Duration = Duration::from_secs(2);
/// The check interval they run.
pub const INTERVAL: Duration = Duration::from_millis(200);
const PRIMARY: &str = "primary.db.disco.internal.";
const REPLICA: &str = "replica.db.disco.internal.";

/// What the prober saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// Questions answered.
    pub probes: usize,
    /// Answers with more than one primary (must stay 0).
    pub doubles: Vec<Vec<IpAddr>>,
    /// The last answer, and since when.
    pub current: Vec<IpAddr>,
    pub since: Option<Instant>,
    /// Every primary ever answered, in order of first appearance, with when.
    pub history: Vec<(Instant, IpAddr)>,
}

/// Asks `primary.db` every 10 ms until stopped.
pub struct Prober {
    pub seen: Arc<Mutex<Seen>>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

async fn addresses(dns: SocketAddr, name: &str) -> Option<Vec<IpAddr>> {
    let stream = UdpClientStream::builder(dns, TokioRuntimeProvider::default())
        .with_timeout(Some(Duration::from_secs(1)))
        .build();
    let (mut client, bg) = DnsClient::<TokioRuntimeProvider>::from_sender(stream);
    tokio::spawn(bg);
    let response = client
        .query(Name::from_str(name).unwrap(), DNSClass::IN, RecordType::A)
        .await
        .ok()?
        .into_message();
    if response.metadata.response_code != ResponseCode::NoError
        && response.metadata.response_code != ResponseCode::NXDomain
    {
        return None;
    }
    let mut found: Vec<IpAddr> = response
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            _ => None,
        })
        .collect();
    found.sort();
    Some(found)
}

impl Prober {
    pub fn start(dns: SocketAddr) -> Prober {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = CancellationToken::new();
        let task = tokio::spawn({
            let (seen, stop) = (seen.clone(), stop.clone());
            async move {
                while !stop.is_cancelled() {
                    if let Some(found) = addresses(dns, PRIMARY).await {
                        let now = Instant::now();
                        let mut seen = seen.lock().unwrap();
                        seen.probes += 1;
                        if found.len() > 1 {
                            seen.doubles.push(found.clone());
                        }
                        if found != seen.current {
                            seen.since = Some(now);
                            seen.current = found.clone();
                        }
                        if found.len() == 1 && seen.history.last().map(|h| h.1) != Some(found[0]) {
                            seen.history.push((now, found[0]));
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        });
        Prober { seen, stop, task }
    }

    /// The one primary answered now, if exactly one.
    pub fn primary(&self) -> Option<IpAddr> {
        let seen = self.seen.lock().unwrap();
        (seen.current.len() == 1).then(|| seen.current[0])
    }

    /// Waits (at most `limit`) until exactly one primary other than
    /// `other` is answered; when it first was.
    pub async fn until_primary_other_than(
        &self,
        other: Option<IpAddr>,
        limit: Duration,
    ) -> (IpAddr, Instant) {
        let deadline = Instant::now() + limit;
        loop {
            {
                let seen = self.seen.lock().unwrap();
                if seen.current.len() == 1 && Some(seen.current[0]) != other {
                    return (seen.current[0], seen.since.unwrap());
                }
                assert!(
                    Instant::now() < deadline,
                    "no primary other than {other:?} within {limit:?}: {:?}",
                    seen.current
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub async fn stop(self) -> Seen {
        self.stop.cancel();
        self.task.await.unwrap();
        Arc::try_unwrap(self.seen).unwrap().into_inner().unwrap()
    }
}

/// One instance: its service, its registrar, its role file and hook log.
pub struct Member {
    pub address: IpAddr,
    pub service: TestService,
    pub registrar: Registrar,
    pub role_file: PathBuf,
    pub hook_log: PathBuf,
}

impl Member {
    pub fn role(&self) -> String {
        std::fs::read_to_string(&self.role_file)
            .unwrap_or_default()
            .trim()
            .to_owned()
    }
}

/// Three registrars of `db` at 127.0.0.1, .2, .3, campaigning on
/// `registries` (one each).
pub async fn members(registries: &[&str; 3], dir: &Path) -> Vec<Member> {
    let mut members = Vec::new();
    for (n, registry) in (1..=3).zip(registries) {
        let service = TestService::start().await;
        let address: IpAddr = format!("127.0.0.{n}").parse().unwrap();
        let role_file = dir.join(format!("db-{n}.role"));
        let hook_log = dir.join(format!("db-{n}.hooks"));
        let hook = format!(
            "echo \"$DISCO_ROLE $DISCO_SERVICE $DISCO_PRIMARY_ADDRESS\" >> {}",
            hook_log.display()
        );
        let (url, port, instance) = (service.url(), service.port(), format!("db-{n}"));
        let (address_text, role_text) = (address.to_string(), role_file.display().to_string());
        let ttl = format!("{}s", TTL.as_secs());
        let interval = format!("{}ms", INTERVAL.as_millis());
        let registrar = Registrar::start(&[
            "--registry",
            registry,
            "--service",
            "db",
            "--instance",
            &instance,
            "--port",
            &port,
            "--address",
            &address_text,
            "--check",
            &url,
            "--interval",
            &interval,
            "--timeout",
            "150ms",
            "--rise",
            "1",
            "--fall",
            "2",
            "--ttl",
            &ttl,
            "--elect",
            "--role-file",
            &role_text,
            "--on-role-change",
            &hook,
        ]);
        members.push(Member {
            address,
            service,
            registrar,
            role_file,
            hook_log,
        });
    }
    members
}

/// Waits until `check` holds, polling every 10 ms (at most `limit`).
pub async fn until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The bound a new primary is answered within after the leader dies:
/// the TTL (the store's expiry of its lease or session), the store's own
/// expiry check (etcd's lessor looks every 500 ms), one check interval,
/// and the slack of a loaded test machine.
pub fn failover_bound() -> Duration {
    TTL + Duration::from_millis(500) + INTERVAL + Duration::from_millis(1000)
}

/// The whole scenario on `registry`, which `disco` watches.
pub async fn scenario(registry: &str, disco: &Disco) {
    let dir = tempfile::tempdir().unwrap();
    let prober = Prober::start(disco.dns);
    let members = members(&[registry; 3], dir.path()).await;
    let index = |members: &[Member], address: IpAddr| {
        members.iter().position(|m| m.address == address).unwrap()
    };

    // Exactly one primary, the others replicas, in DNS and in the files.
    let (first, _) = prober
        .until_primary_other_than(None, Duration::from_secs(20))
        .await;
    disco
        .until_answers(REPLICA, RecordType::A, Ok(replicas(&members, first)))
        .await;
    let leader = index(&members, first);
    until("the roles are written", Duration::from_secs(10), || {
        members.iter().all(|m| {
            m.role()
                == if m.address == first {
                    "primary"
                } else {
                    "replica"
                }
        })
    })
    .await;
    let hooks = std::fs::read_to_string(&members[leader].hook_log).unwrap();
    assert!(hooks.starts_with("none db \n"), "{hooks}");
    assert!(hooks.contains(&format!("primary db {first}\n")), "{hooks}");

    // kill -9 of the leader: a new primary within TTL + interval.
    members[leader].registrar.signal(Signal::SIGKILL);
    let killed = Instant::now();
    let (second, answered) = prober
        .until_primary_other_than(Some(first), failover_bound() + Duration::from_secs(5))
        .await;
    let failover = answered.saturating_duration_since(killed);
    eprintln!("kill -9 failover: {failover:?}");
    assert!(failover < failover_bound(), "failover took {failover:?}");
    let leader = index(&members, second);
    // The replica left is told the new primary's address (its hook runs
    // again), within a keep-alive: Redis' `replicaof` must follow it.
    let other = (0..3)
        .find(|&i| members[i].address != first && i != leader)
        .unwrap();
    until(
        "the remaining replica's hook hears of the new primary",
        TTL + Duration::from_secs(2),
        || {
            std::fs::read_to_string(&members[other].hook_log)
                .unwrap_or_default()
                .contains(&format!("replica db {second}\n"))
        },
    )
    .await;

    // SIGSTOP past the TTL: replaced; after SIGCONT never primary again.
    members[leader].registrar.signal(Signal::SIGSTOP);
    let (third, _) = prober
        .until_primary_other_than(Some(second), failover_bound() + Duration::from_secs(5))
        .await;
    assert_ne!(third, first, "the killed one came back");
    members[leader].registrar.signal(Signal::SIGCONT);
    until(
        "the thawed leader's role file leaves primary",
        Duration::from_secs(5),
        || members[leader].role() != "primary",
    )
    .await;
    // It campaigns again and is a replica once more (its checks pass).
    until(
        "the thawed leader is a replica again",
        Duration::from_secs(15),
        || members[leader].role() == "replica",
    )
    .await;
    assert_eq!(prober.primary(), Some(third));
    let thawed = members[leader].address;

    // The leader's checks fail: it steps down, the other one leads.
    let leader = index(&members, third);
    members[leader].service.set_healthy(false);
    let (fourth, _) = prober
        .until_primary_other_than(Some(third), Duration::from_secs(10))
        .await;
    assert_eq!(fourth, thawed, "the one left leads");
    until(
        "the unhealthy leader's role file says none",
        Duration::from_secs(5),
        || members[leader].role() == "none",
    )
    .await;

    let seen = prober.stop().await;
    eprintln!(
        "probes: {}, double primaries: {}",
        seen.probes,
        seen.doubles.len()
    );
    assert!(
        seen.doubles.is_empty(),
        "two primaries answered: {:?}",
        seen.doubles
    );
    assert!(
        seen.probes > 200,
        "the prober asked only {} times",
        seen.probes
    );
    // After SIGCONT the thawed leader was never primary again until it was
    // elected fairly, after the unhealthy leader left.
    let thawed_again: Vec<_> = seen.history.iter().filter(|(_, a)| *a == thawed).collect();
    assert_eq!(thawed_again.len(), 2, "{:?}", seen.history);
    drop(members);
}

fn replicas(members: &[Member], primary: IpAddr) -> Vec<String> {
    let mut others: Vec<String> = members
        .iter()
        .filter(|m| m.address != primary)
        .map(|m| m.address.to_string())
        .collect();
    others.sort();
    others
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_one_fenced_primary_through_kill_freeze_and_failing_checks() {
    let etcd = crate::cluster::Etcd::start();
    let registry = etcd.url("etcd", "/disco");
    let disco = Disco::start(std::slice::from_ref(&registry)).await;
    scenario(&registry, &disco).await;
}

/// The leader cut off from the store (its own proxy frozen) while its
/// service stays up: its role file leaves `primary` before another leader
/// is answered, and no two primaries are answered meanwhile.
pub async fn cut_off(
    upstream: SocketAddr,
    registry_of: impl Fn(SocketAddr) -> String,
    disco: &Disco,
) {
    let dir = tempfile::tempdir().unwrap();
    let prober = Prober::start(disco.dns);
    let mut proxies = Vec::new();
    for _ in 0..3 {
        proxies.push(crate::proxy::Proxy::start(upstream).await);
    }
    let urls: Vec<String> = proxies.iter().map(|p| registry_of(p.addr)).collect();
    let members = members(&[&urls[0], &urls[1], &urls[2]], dir.path()).await;
    let (first, _) = prober
        .until_primary_other_than(None, Duration::from_secs(20))
        .await;
    let leader = members.iter().position(|m| m.address == first).unwrap();
    until(
        "the leader's role file says primary",
        Duration::from_secs(10),
        || members[leader].role() == "primary",
    )
    .await;
    proxies[leader].freeze();
    let frozen = Instant::now();
    // Watch the role file steadily until another primary is answered.
    let mut left_primary = None;
    let deadline = frozen + failover_bound() + Duration::from_secs(10);
    let answered = loop {
        if left_primary.is_none() && members[leader].role() != "primary" {
            left_primary = Some(Instant::now());
        }
        if let Some(now) = prober.primary().filter(|p| *p != first) {
            let _ = now;
            break Instant::now();
        }
        assert!(Instant::now() < deadline, "no new primary after the cut");
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let left = left_primary.expect("the role file still said primary when another was answered");
    eprintln!(
        "cut off: role file left primary after {:?}, new primary answered after {:?}",
        left - frozen,
        answered - frozen
    );
    assert!(left < answered);
    proxies[leader].thaw();
    let seen = prober.stop().await;
    assert!(
        seen.doubles.is_empty(),
        "two primaries answered: {:?}",
        seen.doubles
    );
    drop(members);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_a_leader_cut_from_the_store_leaves_primary_before_another_is_answered() {
    let etcd = crate::cluster::Etcd::start();
    let registry = etcd.url("etcd", "/disco");
    let disco = Disco::start(std::slice::from_ref(&registry)).await;
    let upstream: SocketAddr = registry
        .trim_start_matches("etcd://")
        .trim_end_matches("/disco")
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    cut_off(upstream, |proxy| format!("etcd://{proxy}/disco"), &disco).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zookeeper_one_fenced_primary_through_kill_freeze_and_failing_checks() {
    let zookeeper = crate::zk_server::ZooKeeper::start();
    let registry = zookeeper.url("zk", "/disco");
    let disco = Disco::start(std::slice::from_ref(&registry)).await;
    scenario(&registry, &disco).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zookeeper_a_leader_cut_from_the_store_leaves_primary_before_another_is_answered() {
    let zookeeper = crate::zk_server::ZooKeeper::start();
    let registry = zookeeper.url("zk", "/disco");
    let disco = Disco::start(std::slice::from_ref(&registry)).await;
    cut_off(
        zookeeper.endpoint(0),
        |proxy| format!("zk://{proxy}/disco"),
        &disco,
    )
    .await;
}

/// etcd losing a member (SIGKILL) under three campaigning registrars: the
/// prober, asking on throughout, never sees two primaries, and one is
/// answered after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_member_loss_never_gives_two_primaries() {
    let mut etcd = crate::cluster::Etcd::start_with(3, &[]);
    let registry = etcd.url("etcd", "/disco");
    let disco = Disco::start(std::slice::from_ref(&registry)).await;
    let dir = tempfile::tempdir().unwrap();
    let prober = Prober::start(disco.dns);
    let members = members(&[&registry; 3], dir.path()).await;
    prober
        .until_primary_other_than(None, Duration::from_secs(30))
        .await;
    etcd.kill(0);
    let before = prober.seen.lock().unwrap().probes;
    until(
        "400 more probes after the member's loss",
        Duration::from_secs(60),
        || prober.seen.lock().unwrap().probes >= before + 400,
    )
    .await;
    prober
        .until_primary_other_than(None, Duration::from_secs(20))
        .await;
    let seen = prober.stop().await;
    eprintln!(
        "member loss: probes {}, double primaries {}",
        seen.probes,
        seen.doubles.len()
    );
    assert!(
        seen.doubles.is_empty(),
        "two primaries answered: {:?}",
        seen.doubles
    );
    drop(members);
}
