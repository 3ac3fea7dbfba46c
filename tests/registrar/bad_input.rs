//! Every bad input exits 64 with a message naming it, and nothing reaches
//! the store.

use std::time::{Duration, Instant};

use crate::cluster::Etcd;
use crate::harness::command;

#[tokio::test]
async fn bad_input_exits_64_naming_it_and_publishes_nothing() {
    let etcd = Etcd::start();
    let registry = etcd.url("etcd", "/disco");
    let dir = tempfile::tempdir().unwrap();
    let unknown_key = dir.path().join("unknown.toml");
    std::fs::write(
        &unknown_key,
        format!("[registrar]\nregistry = \"{registry}\"\n\n[[registrar.service]]\nservice = \"web\"\nport = 80\nchecks = [\"tcp\"]\nhelth = \"x\"\n"),
    )
    .unwrap();
    let unknown_top = dir.path().join("top.toml");
    std::fs::write(&unknown_top, "[registrar]\nregistery = \"etcd://x\"\n").unwrap();
    let unknown_path = unknown_key.to_str().unwrap();
    let unknown_top_path = unknown_top.to_str().unwrap();
    let base = ["--registry", registry.as_str(), "--address", "127.0.0.1"];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--service", "we b", "--port", "80"], "--service"),
        (vec!["--service", "_web", "--port", "80"], "--service"),
        (
            vec!["--service", "web", "--port", "80", "--instance", "web.1"],
            "--instance",
        ),
        (
            vec![
                "--service",
                "web",
                "--port",
                "80",
                "--instance",
                "w1",
                "--tag",
                "w1",
            ],
            "--tag",
        ),
        (vec!["--service", "web", "--port", "70000"], "--port"),
        (vec!["--service", "web", "--port", "0"], "--port"),
        (
            vec!["--service", "web", "--port", "80", "--check", "ftp://x/"],
            "--check",
        ),
        (
            vec!["--service", "web", "--port", "80", "--check", "exec:"],
            "--check",
        ),
        (
            vec!["--service", "web", "--port", "80", "--rise", "0"],
            "--rise",
        ),
        (
            vec!["--service", "web", "--port", "80", "--fall", "0"],
            "--fall",
        ),
        (
            vec![
                "--service",
                "web",
                "--port",
                "80",
                "--interval",
                "1s",
                "--timeout",
                "2s",
            ],
            "--timeout",
        ),
        (
            vec!["--service", "web", "--port", "80", "--format", "bind"],
            "--format",
        ),
        (
            vec!["--service", "web", "--port", "80", "--format", "nerve"],
            "--format",
        ),
        (
            vec![
                "--service",
                "web",
                "--port",
                "80",
                "--address",
                "10.0.0.300",
            ],
            "--address",
        ),
        (
            vec!["--service", "web", "--port", "80", "--meta", "novalue"],
            "--meta",
        ),
        (vec!["-s", "mysql:tcp:mysql:3306"], "field 5 (path)"),
        (vec!["-s", "mysql:udp:mysql:3306:/test"], "field 2 (type)"),
        (vec!["-s", "mysql:tcp:mysql:99999:/test"], "field 4 (port)"),
        (
            vec![
                "-s",
                "db:tcp:10.0.0.5:5432:/db",
                "-s",
                "db:tcp:10.0.0.5:5432:/db",
            ],
            "one instance twice",
        ),
        (vec!["--config", unknown_path], "unknown key `helth`"),
        (
            vec!["--config", unknown_top_path],
            "unknown key `registery`",
        ),
        (vec!["--port", "80"], "--service"),
        (vec![], "nothing to register"),
    ];
    for (args, names) in &cases {
        let mut all: Vec<&str> = base.to_vec();
        all.extend(args);
        let started = Instant::now();
        let output = command(&all, &[]).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(64), "{args:?}: {stderr}");
        assert!(
            stderr.contains(names),
            "{args:?} does not name {names:?}: {stderr}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{args:?} took {:?}",
            started.elapsed()
        );
    }
    // SkyDNS entries on ZooKeeper: refused the same way, before any
    // session is opened (nothing listens on that port).
    let output = command(
        &[
            "--registry",
            "zk://127.0.0.1:1/disco",
            "--format",
            "skydns",
            "--service",
            "web",
            "--port",
            "80",
            "--address",
            "127.0.0.1",
        ],
        &[],
    )
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(64));
    let mut client = etcd.client().await;
    let everything = client
        .get("", Some(etcd_client::GetOptions::new().with_all_keys()))
        .await
        .unwrap();
    assert_eq!(everything.kvs().len(), 0, "bad input reached the store");
}
