//! The glibc resolver of a network namespace pointed at disco alone: three
//! namespaces the test makes, a client whose /etc/netns/NAME/resolv.conf
//! names disco with a search domain, disco, and an upstream DNS server
//! (a second disco serving a zone of its own) that disco forwards other
//! names to. No images, no Docker.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use crate::support::{REPO, eventually, getent_addresses, run, try_run};

const CLIENT: &str = "disco-test-client";
const DISCO: &str = "disco-test-dns";
const UPSTREAM: &str = "disco-test-upstream";

/// The three namespaces, their veth links and resolv.conf, and the servers
/// in them; all removed on drop, as is what a killed run left.
struct Namespaces {
    servers: Vec<Child>,
}

pub(crate) fn ip(args: &[&str]) -> String {
    run(Command::new("ip").args(args))
}

pub(crate) fn in_ns(ns: &str, args: &[&str]) -> String {
    let mut all = vec!["netns", "exec", ns];
    all.extend_from_slice(args);
    ip(&all)
}

fn resolv_conf_dir(ns: &str) -> PathBuf {
    Path::new("/etc/netns").join(ns)
}

impl Namespaces {
    fn make() -> Namespaces {
        let who = run(Command::new("id").arg("-u"));
        assert_eq!(
            who, "0",
            "the network-namespace test needs root (ip netns add)"
        );
        assert!(
            try_run(Command::new("ip").arg("-V")).is_ok(),
            "the network-namespace test needs `ip`: apt-get install iproute2"
        );
        remove();
        for ns in [CLIENT, DISCO, UPSTREAM] {
            ip(&["netns", "add", ns]);
            in_ns(ns, &["ip", "link", "set", "lo", "up"]);
        }
        // client 10.53.1.2 — 10.53.1.1 disco 10.53.2.1 — 10.53.2.2 upstream
        link(CLIENT, "10.53.1.2/24", DISCO, "10.53.1.1/24");
        link(UPSTREAM, "10.53.2.2/24", DISCO, "10.53.2.1/24");
        std::fs::create_dir_all(resolv_conf_dir(CLIENT)).unwrap();
        std::fs::write(
            resolv_conf_dir(CLIENT).join("resolv.conf"),
            "nameserver 10.53.1.1\nsearch disco.internal\noptions timeout:2 attempts:2\n",
        )
        .unwrap();
        Namespaces {
            servers: Vec::new(),
        }
    }

    /// Starts `disco serve ARGS` in `ns`.
    fn serve(&mut self, ns: &str, args: &[&str]) {
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                env!("CARGO_BIN_EXE_disco"),
                "serve",
                "--http-listen",
                "off",
            ])
            .args(args)
            .spawn()
            .expect("disco starts");
        self.servers.push(child);
    }
}

/// A veth pair from `a` (address `a_addr`) to `b` (address `b_addr`).
pub(crate) fn link(a: &str, a_addr: &str, b: &str, b_addr: &str) {
    // Named after `a`'s end: vclient, and vclient-p inside disco's.
    let a_if = format!("v{}", a.trim_start_matches("disco-test-"));
    let b_if = format!("{a_if}-p");
    ip(&[
        "link", "add", &a_if, "netns", a, "type", "veth", "peer", "name", &b_if, "netns", b,
    ]);
    for (ns, dev, addr) in [(a, &a_if, a_addr), (b, &b_if, b_addr)] {
        in_ns(ns, &["ip", "addr", "add", addr, "dev", dev]);
        in_ns(ns, &["ip", "link", "set", dev, "up"]);
    }
}

/// Removes the namespaces (and with them their links) and resolv.conf.
fn remove() {
    for ns in [CLIENT, DISCO, UPSTREAM] {
        let _ = try_run(Command::new("ip").args(["netns", "delete", ns]));
        let _ = std::fs::remove_dir_all(resolv_conf_dir(ns));
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for server in &mut self.servers {
            let _ = server.kill();
            let _ = server.wait();
        }
        remove();
    }
}

/// `getent ahostsv4 NAME` in the client namespace, through glibc and its
/// resolv.conf: the sorted addresses, or why not.
fn resolve(name: &str) -> Result<Vec<String>, String> {
    let out =
        try_run(Command::new("ip").args(["netns", "exec", CLIENT, "getent", "ahostsv4", name]))?;
    Ok(getent_addresses(&out))
}

#[test]
fn a_namespace_with_disco_alone_in_resolv_conf_resolves_zone_names_and_forwarded_ones() {
    let mut namespaces = Namespaces::make();
    let upstream_zones = tempfile::tempdir().unwrap();
    std::fs::write(
        upstream_zones.path().join("elsewhere.test.zone"),
        "$TTL 60\n@ IN SOA ns hostmaster 1 3600 600 86400 60\n@ IN NS ns\nns IN A 10.53.2.2\nwww IN A 198.51.100.7\n",
    )
    .unwrap();
    let upstream_zones = upstream_zones.path().to_str().unwrap().to_owned();
    namespaces.serve(
        UPSTREAM,
        &[
            "--listen",
            "10.53.2.2:53",
            "--zones-dir",
            &upstream_zones,
            "--upstream",
            "off",
        ],
    );
    let zones = format!("{REPO}/zones");
    namespaces.serve(
        DISCO,
        &[
            "--listen",
            "10.53.1.1:53",
            "--zones-dir",
            &zones,
            "--upstream",
            "10.53.2.2:53",
            "--allow-recursion",
            "10.53.1.0/24",
        ],
    );

    // A short name through the search domain, and the full name.
    let docs = ["192.0.2.10", "192.0.2.11"];
    eventually(
        "the client resolves docs",
        Duration::from_secs(20),
        || match resolve("docs")? {
            found if found == docs => Ok(()),
            found => Err(format!("got {found:?}")),
        },
    );
    assert_eq!(resolve("docs.disco.internal").unwrap(), docs);
    // Outside disco's zone: forwarded to the upstream in its namespace.
    assert_eq!(resolve("www.elsewhere.test").unwrap(), ["198.51.100.7"]);
    // Nowhere: glibc says so (getent exits 2), quickly.
    let started = std::time::Instant::now();
    assert!(resolve("nope.disco.internal").is_err());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a negative answer took {:?}",
        started.elapsed()
    );
}
