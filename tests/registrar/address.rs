//! `--address auto` on an IPv6-only host: a network namespace of the
//! test's own with one interface, an IPv6 address and an IPv6 default
//! route, and no IPv4 at all. The registrar registers the IPv6 address.
//! (Needs root and iproute2's `ip`, as CI has; the namespace is deleted
//! whatever happens.)

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A network namespace, deleted on drop.
struct Namespace(String);

impl Namespace {
    fn ipv6_only() -> Namespace {
        let namespace = Namespace(format!("disco-reg6-{}", std::process::id()));
        let name = namespace.0.as_str();
        ip(&["netns", "add", name]);
        for args in [
            &["link", "add", "va", "type", "veth", "peer", "name", "vb"][..],
            &["addr", "add", "fd00::5/64", "dev", "va", "nodad"],
            &["link", "set", "va", "up"],
            &["link", "set", "vb", "up"],
            &["link", "set", "lo", "up"],
            &[
                "-6", "route", "add", "default", "via", "fd00::1", "dev", "va", "onlink",
            ],
        ] {
            let mut all = vec!["-n", name];
            all.extend(args);
            ip(&all);
        }
        namespace
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn ip(args: &[&str]) {
    let output = Command::new("ip")
        .args(args)
        .output()
        .expect("this test needs iproute2's ip (apt-get install iproute2) and root");
    assert!(
        output.status.success(),
        "ip {args:?}: {} (this test needs root)",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn address_auto_on_an_ipv6_only_host_is_its_ipv6_address() {
    let namespace = Namespace::ipv6_only();
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("registrar.log");
    let log = std::fs::File::create(&log_path).unwrap();
    // Nothing answers on [::1]:9 in the namespace: the registrar starts,
    // says what it registers, and keeps retrying the store.
    let mut child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &namespace.0,
            env!("CARGO_BIN_EXE_disco"),
            "registrar",
        ])
        .args([
            "--registry",
            "etcd://[::1]:9/disco",
            "--service",
            "web",
            "--port",
            "80",
        ])
        .args([
            "--check",
            "exec:true",
            "--interval",
            "200ms",
            "--timeout",
            "100ms",
        ])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if text.contains("address=") || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(text.contains("address=fd00::5 "), "{text}");
}
