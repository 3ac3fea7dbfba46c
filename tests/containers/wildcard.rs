//! A wildcard listener (`0.0.0.0:53`, `[::]:53`, what the image uses) on a
//! host with two addresses answers each query from the address it was
//! asked at: a network namespace whose one link carries two IPv4 and two
//! IPv6 addresses, disco listening on both wildcards, and dig in a second
//! namespace asking each address. dig's socket takes replies only from the
//! address it asked (else "reply from unexpected source" and a timeout).

use std::process::{Child, Command};
use std::time::Duration;

use crate::netns::{in_ns, ip, link};
use crate::support::{REPO, eventually, run, try_run};

const CLIENT: &str = "disco-test-wclient";
const DISCO: &str = "disco-test-wdns";
/// disco's end of the link (`link` names it after the client's).
const DISCO_LINK: &str = "vwclient-p";
const CLIENT_LINK: &str = "vwclient";

/// disco's addresses: two of each family on one link.
const ADDRESSES: [&str; 4] = ["10.53.3.1", "10.53.3.2", "fd53:3::1", "fd53:3::2"];

/// The two namespaces and disco in one of them; removed on drop, as is
/// what a killed run left.
struct Namespaces {
    disco: Option<Child>,
}

impl Namespaces {
    fn make() -> Namespaces {
        let who = run(Command::new("id").arg("-u"));
        assert_eq!(who, "0", "the wildcard test needs root (ip netns add)");
        remove();
        for ns in [CLIENT, DISCO] {
            ip(&["netns", "add", ns]);
            in_ns(ns, &["ip", "link", "set", "lo", "up"]);
        }
        link(CLIENT, "10.53.3.10/24", DISCO, "10.53.3.1/24");
        in_ns(
            DISCO,
            &["ip", "addr", "add", "10.53.3.2/24", "dev", DISCO_LINK],
        );
        // nodad: usable at once, not after duplicate address detection.
        for (ns, dev, addr) in [
            (CLIENT, CLIENT_LINK, "fd53:3::10/64"),
            (DISCO, DISCO_LINK, "fd53:3::1/64"),
            (DISCO, DISCO_LINK, "fd53:3::2/64"),
        ] {
            in_ns(ns, &["ip", "-6", "addr", "add", addr, "dev", dev, "nodad"]);
        }
        Namespaces { disco: None }
    }

    fn serve(&mut self, args: &[&str]) {
        let child = Command::new("ip")
            .args(["netns", "exec", DISCO, env!("CARGO_BIN_EXE_disco"), "serve"])
            .args(args)
            .spawn()
            .expect("disco starts");
        self.disco = Some(child);
    }
}

fn remove() {
    for ns in [CLIENT, DISCO] {
        let _ = try_run(Command::new("ip").args(["netns", "delete", ns]));
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        if let Some(disco) = &mut self.disco {
            let _ = disco.kill();
            let _ = disco.wait();
        }
        remove();
    }
}

/// dig in the client namespace asking `server` over UDP, once, with a
/// 2-second wait: the sorted addresses, or what dig said.
fn dig(server: &str) -> Result<Vec<String>, String> {
    let at = format!("@{server}");
    let out = try_run(Command::new("ip").args([
        "netns",
        "exec",
        CLIENT,
        "dig",
        &at,
        "docs.disco.internal",
        "A",
        "+short",
        "+tries=1",
        "+time=2",
    ]))?;
    let mut addresses: Vec<String> = out.lines().map(str::to_owned).collect();
    addresses.sort();
    match addresses
        .iter()
        .all(|a| a.parse::<std::net::Ipv4Addr>().is_ok())
    {
        true => Ok(addresses),
        false => Err(out),
    }
}

#[test]
fn a_wildcard_listener_answers_each_address_from_that_address_over_ipv4_and_ipv6() {
    let mut namespaces = Namespaces::make();
    let zones = format!("{REPO}/zones");
    namespaces.serve(&[
        "--listen",
        "0.0.0.0:53",
        "--listen",
        "[::]:53",
        "--zones-dir",
        &zones,
        "--upstream",
        "off",
        "--http-listen",
        "off",
    ]);
    let docs = ["192.0.2.10", "192.0.2.11"];
    // Up: answered over TCP, which always answers from the address asked.
    eventually("disco answers", Duration::from_secs(20), || {
        let out = try_run(Command::new("ip").args([
            "netns",
            "exec",
            CLIENT,
            "dig",
            "@10.53.3.1",
            "docs.disco.internal",
            "+tcp",
            "+short",
        ]))?;
        match out.lines().count() {
            2 => Ok(()),
            _ => Err(out),
        }
    });
    // Each address, over UDP, once: an answer from another address is
    // never taken, so a single try shows where it came from.
    for server in ADDRESSES {
        assert_eq!(
            dig(server),
            Ok(docs.map(str::to_owned).to_vec()),
            "asking {server}"
        );
    }
}
