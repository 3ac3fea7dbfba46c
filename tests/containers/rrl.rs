//! Response rate limiting against a real spoofed-source flood: three
//! network namespaces, disco in one; a flooder in the second forging
//! queries from a victim network (192.0.2.0/24, which its namespace routes
//! to its own loopback, so that what disco sends the victim is counted
//! there: tests/containers/rrl_flood.py); an honest client in the third
//! asking with kdig. The flood's answers shrink to the rate while the
//! honest client's are all answered; a flooder that learned a server cookie
//! for the address it sends from (RFC 7873) is exempt. None of the
//! addresses is in the private ranges `--allow-recursion` (and so
//! `--rrl-exempt`) holds by default.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::netns::{in_ns, ip, link};
use crate::support::{REPO, eventually, run, try_run};

const DISCO: &str = "disco-test-rdns";
const FLOOD: &str = "disco-test-rflood";
const CLIENT: &str = "disco-test-rclient";
/// disco's address toward the flooder, and toward the client.
const DISCO_FLOOD_SIDE: &str = "198.51.100.1";
const DISCO_CLIENT_SIDE: &str = "203.0.113.1";
/// The network the flood forges its sources from.
const VICTIM_NET: &str = "192.0.2";
/// The answers a second to one network for one name: low, so that a flood
/// of a few seconds shows the cut.
const RATE: u32 = 100;
const FLOOD_QUERIES: usize = 8000;
const FLOOD_SECONDS: f64 = 4.0;

/// The namespaces and disco; removed on drop, as is what a killed run left.
struct Namespaces {
    disco: Option<Child>,
}

impl Namespaces {
    fn make() -> Namespaces {
        let who = run(Command::new("id").arg("-u"));
        assert_eq!(who, "0", "the RRL test needs root (ip netns add)");
        assert!(
            try_run(Command::new("kdig").arg("-V")).is_ok(),
            "the RRL test needs kdig: apt-get install knot-dnsutils"
        );
        remove();
        for ns in [DISCO, FLOOD, CLIENT] {
            ip(&["netns", "add", ns]);
            in_ns(ns, &["ip", "link", "set", "lo", "up"]);
        }
        link(FLOOD, "198.51.100.2/24", DISCO, "198.51.100.1/24");
        link(CLIENT, "203.0.113.2/24", DISCO, "203.0.113.1/24");
        // What disco sends the victim network goes to the flooder's
        // namespace, which takes every address of it as its own (AnyIP).
        in_ns(
            DISCO,
            &["ip", "route", "add", "192.0.2.0/24", "via", "198.51.100.2"],
        );
        in_ns(
            FLOOD,
            &["ip", "route", "add", "local", "192.0.2.0/24", "dev", "lo"],
        );
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
    for ns in [DISCO, FLOOD, CLIENT] {
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

/// kdig in the client namespace asking disco once over UDP, no retry:
/// the sorted addresses, or what kdig said.
fn kdig(extra: &[&str]) -> Result<String, String> {
    let at = format!("@{DISCO_CLIENT_SIDE}");
    let mut args = vec![
        "netns",
        "exec",
        CLIENT,
        "kdig",
        &at,
        "docs.disco.internal",
        "A",
        "+notcp",
        "+retry=0",
        "+timeout=2",
    ];
    args.extend_from_slice(extra);
    try_run(Command::new("ip").args(args))
}

/// The flood, started in its namespace: its JSON report comes on stdout.
fn flood(cookie: bool) -> Child {
    let script = format!("{REPO}/tests/containers/rrl_flood.py");
    let count = FLOOD_QUERIES.to_string();
    let seconds = FLOOD_SECONDS.to_string();
    let mut args = vec![
        "netns",
        "exec",
        FLOOD,
        "python3",
        &script,
        DISCO_FLOOD_SIDE,
        &count,
        &seconds,
        VICTIM_NET,
    ];
    if cookie {
        args.push("cookie");
    }
    Command::new("ip")
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs the flood")
}

/// What the flood got back.
#[derive(Debug, serde::Deserialize)]
struct Report {
    full: usize,
    truncated: usize,
    bad_cookie: usize,
    dropped: usize,
    sent: usize,
    /// How long the sending took.
    seconds: f64,
    /// From the first query sent to the last answer read.
    answering: f64,
}

fn report(flood: Child) -> Report {
    let out = flood.wait_with_output().unwrap();
    assert!(out.status.success(), "the flood failed: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn a_spoofed_flood_shrinks_to_the_rate_while_another_network_is_answered_and_a_cookie_exempts() {
    let mut namespaces = Namespaces::make();
    let zones = format!("{REPO}/zones");
    let rate = RATE.to_string();
    let http = format!("{DISCO_FLOOD_SIDE}:9153");
    namespaces.serve(&[
        "--listen",
        &format!("{DISCO_FLOOD_SIDE}:53"),
        "--listen",
        &format!("{DISCO_CLIENT_SIDE}:53"),
        "--zones-dir",
        &zones,
        "--upstream",
        "off",
        "--http-listen",
        &http,
        "--rrl-responses",
        &rate,
    ]);
    eventually("disco answers", Duration::from_secs(20), || {
        match kdig(&["+short"])?.lines().count() {
            2 => Ok(()),
            _ => Err("not two addresses".to_owned()),
        }
    });

    // The flood, and meanwhile 40 queries from the other network.
    let flooding = flood(false);
    let started = Instant::now();
    let mut answered = 0;
    for _ in 0..40 {
        let out = kdig(&["+short"]).unwrap_or_default();
        let mut addresses: Vec<&str> = out.lines().collect();
        addresses.sort();
        if addresses == ["192.0.2.10", "192.0.2.11"] {
            answered += 1;
        }
    }
    let asking = started.elapsed();
    let flooded = report(flooding);
    eprintln!("flood without cookies: {flooded:?}; the other network: {answered}/40 in {asking:?}");
    assert!(
        asking.as_secs_f64() < flooded.seconds,
        "the 40 queries took {asking:?}, longer than the flood"
    );
    assert_eq!(answered, 40, "the other network's answers are untouched");
    // One second's burst, then the rate, while disco read the flood: on
    // a loaded machine it is still reading after the last query left (600
    // full answers to a 4.0 s flood in one CI run, read over 5 s).
    let window = flooded.seconds.max(flooded.answering);
    let allowed = (f64::from(RATE) * (1.0 + window + 0.5)) as usize;
    assert!(
        flooded.full <= allowed && flooded.full >= RATE as usize,
        "{} full answers to the flood, {allowed} allowed: {flooded:?}",
        flooded.full
    );
    let limited = flooded.sent - flooded.full;
    assert_eq!(flooded.truncated + flooded.dropped, limited, "{flooded:?}");
    assert!(
        flooded.truncated.abs_diff(limited / 2) <= 2,
        "every second one slipped: {flooded:?}"
    );
    assert_eq!(flooded.bad_cookie, 0);

    // The flooder learns a server cookie for one address, and sends it
    // back with every query: it receives what is sent there, so it is
    // answered in full.
    let with_cookie = report(flood(true));
    eprintln!("flood with a valid cookie: {with_cookie:?}");
    assert_eq!(with_cookie.full, FLOOD_QUERIES, "{with_cookie:?}");
    assert_eq!(
        (
            with_cookie.truncated,
            with_cookie.bad_cookie,
            with_cookie.dropped
        ),
        (0, 0, 0)
    );

    // kdig sends a client cookie and checks the one it gets back.
    let out = kdig(&["+cookie"]).expect("kdig +cookie is answered");
    let cookie = out
        .lines()
        .find_map(|line| line.strip_prefix(";; COOKIE: "))
        .unwrap_or_else(|| panic!("no COOKIE in the answer: {out}"));
    // The client's 8 bytes, then an RFC 9018 server cookie: version 1.
    assert_eq!((cookie.len(), &cookie[16..18]), (48, "01"), "{out}");
    assert!(out.contains("192.0.2.10"), "{out}");
}
