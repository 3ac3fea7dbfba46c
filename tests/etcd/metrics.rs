//! `/metrics` as Prometheus reads it: `promtool check metrics` (Debian's
//! `prometheus` package) on the real output of a disco watching etcd in
//! both formats and ZooKeeper, one registry's URL holding characters that
//! must be escaped in a label value.

use hickory_proto::rr::RecordType;

use crate::cluster::Etcd;
use crate::support::{Disco, ok, put, register};
use crate::zookeeper::ZooKeeper;

/// The metric families of a text exposition: name → TYPE, from the
/// comments; panics on a sample whose family has no HELP or TYPE.
fn families(text: &str) -> Vec<(String, String)> {
    let mut typed = Vec::new();
    let mut helped = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.splitn(4, ' ').collect();
        match words.as_slice() {
            ["#", "TYPE", name, kind] => typed.push((name.to_string(), kind.to_string())),
            ["#", "HELP", name, ..] => helped.push(name.to_string()),
            _ if line.starts_with('#') => {}
            _ => {
                let sample = line.split(['{', ' ']).next().unwrap();
                let family = (typed.iter().map(|(name, _)| name))
                    .find(|name| {
                        sample == name.as_str()
                            || ["_bucket", "_sum", "_count"]
                                .iter()
                                .any(|suffix| sample.strip_suffix(suffix) == Some(name.as_str()))
                    })
                    .unwrap_or_else(|| panic!("no TYPE for {sample}:\n{text}"));
                assert!(helped.contains(family), "no HELP for {family}:\n{text}");
            }
        }
    }
    typed
}

#[tokio::test]
async fn promtool_accepts_the_metrics_of_a_disco_watching_etcd_skydns_and_zookeeper() {
    let etcd = Etcd::start();
    let zookeeper = ZooKeeper::start();
    let zk = zookeeper.url("zk", "/disco");
    let native = etcd.url("etcd", "/disco");
    // A prefix with a quote and a backslash: legal in etcd keys, and in a
    // label value only escaped.
    let odd_prefix = r#"/sky"dns\team"#;
    let skydns = etcd.url("skydns+etcd", odd_prefix);
    let mut client = etcd.client().await;
    register(&mut client, "web", "web-1", "10.0.0.5", 8080).await;
    put(
        &mut client,
        &format!("{odd_prefix}/internal/disco/db/x1"),
        r#"{"host":"10.0.0.9","port":5432}"#,
    )
    .await;
    put(
        &mut client,
        &format!("{odd_prefix}/internal/disco/db/x2"),
        "{not json",
    )
    .await;
    let disco = Disco::start(&[native.clone(), skydns.clone(), zk.clone()]).await;
    assert_eq!(
        disco.answers("web.disco.internal.", RecordType::A).await,
        ok(&["10.0.0.5"])
    );
    assert_eq!(
        disco.answers("db.disco.internal.", RecordType::A).await,
        ok(&["10.0.0.9"])
    );
    let _ = disco.answers("nope.disco.internal.", RecordType::SRV).await;

    let text = disco.metrics().await;
    crate::promtool::assert_accepts(&text);

    let escaped = skydns.replace('\\', r"\\").replace('"', r#"\""#);
    for line in [
        format!(r#"disco_registry_up{{registry="{native}"}} 1"#),
        format!(r#"disco_registry_up{{registry="{escaped}"}} 1"#),
        format!(r#"disco_registry_up{{registry="{zk}"}} 1"#),
        format!(r#"disco_registry_skipped_total{{registry="{escaped}"}} 1"#),
    ] {
        assert!(text.contains(&line), "no {line:?} in\n{text}");
    }
    for (name, kind) in families(&text) {
        assert!(name.starts_with("disco_"), "{name}");
        assert_eq!(
            name.ends_with("_total"),
            kind == "counter",
            "{name} is a {kind}"
        );
    }
    disco.stop().await;
}
