//! Several services from one config file, each with its own checks: one
//! failing does not touch the others. The endpoints say which is which.

use crate::cluster::Etcd;
use crate::harness::{Registrar, TestService, answered, until_answered};
use crate::support::{CONVERGE, Disco, eventually, http, key};

#[tokio::test]
async fn a_config_file_registers_several_services_and_one_failing_stays_out() {
    let etcd = Etcd::start();
    let registry = etcd.url("etcd", "/disco");
    let disco = Disco::start(std::slice::from_ref(&registry)).await;
    let web = TestService::start().await;
    // A plain TCP listener for the database, and a port nothing listens on.
    let db = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let db_port = db.local_addr().unwrap().port();
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("registrar.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[registrar]
registry = "{registry}"
interval = "200ms"
timeout = "150ms"
rise = 2
fall = 2
http-listen = "127.0.0.1:0"

[[registrar.service]]
service = "web"
instance = "web-1"
address = "127.0.0.1"
port = {web_port}
tags = ["v2"]
meta = {{ version = "1.4.2" }}
checks = [{{ url = "{web_url}", body = "ok" }}, "tcp"]

[[registrar.service]]
service = "db"
instance = "db-1"
address = "127.0.0.1"
port = {db_port}
checks = ["tcp"]

[[registrar.service]]
service = "cache"
instance = "cache-1"
address = "127.0.0.1"
port = {closed_port}
checks = ["tcp"]
interval = "100ms"
timeout = "50ms"
"#,
            web_port = web.port(),
            web_url = web.url(),
        ),
    )
    .unwrap();
    let registrar = Registrar::start(&["--config", config.to_str().unwrap()]);
    until_answered(&disco, "web-1.web.disco.internal.").await;
    until_answered(&disco, "v2.web.disco.internal.").await;
    until_answered(&disco, "db-1.db.disco.internal.").await;
    // The services of one registry share one lease, kept alive once.
    let mut client = etcd.client().await;
    let mut leases = Vec::new();
    for (service, id) in [("web", "web-1"), ("db", "db-1")] {
        let stored = client.get(key(service, id), None).await.unwrap();
        leases.push(stored.kvs()[0].lease());
    }
    assert!(
        leases[0] != 0 && leases[0] == leases[1],
        "leases {leases:?}"
    );
    let txt = disco
        .answers(
            "web-1.web.disco.internal.",
            hickory_proto::rr::RecordType::TXT,
        )
        .await;
    assert_eq!(txt, Ok(vec!["version=1.4.2".to_owned()]));
    // Absent after the registrar's own sign that cache's checks have run
    // (fall is 2: four runs leave no doubt), never after a mere sleep.
    registrar.until_checked("cache/cache-1", 4).await;
    assert!(!answered(&disco, "cache-1.cache.disco.internal.").await);
    assert_eq!(
        (registrar.metric(r#"disco_registrar_publishes_total{service="cache/cache-1"}"#)).await,
        Some(0.0),
        "cache-1 was never written"
    );
    drop(db);

    // The endpoints: not ready (one service is not published), and why.
    let log = registrar.log();
    let http_addr = log
        .lines()
        .find_map(|l| l.split("endpoints on ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no endpoints address in the log:\n{log}"));
    let (status, body) = http::get(http_addr, "/ready").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains(r#""service":"cache/cache-1""#), "{body}");
    let (status, _) = http::get(http_addr, "/health").await;
    assert_eq!(status, 200);
    eventually(
        "db withdrawn once its listener closed",
        CONVERGE,
        || async { !answered(&disco, "db-1.db.disco.internal.").await },
    )
    .await;
    assert!(answered(&disco, "web-1.web.disco.internal.").await);
    let (_, metrics) = http::get(http_addr, "/metrics").await;
    assert!(
        metrics.contains(r#"disco_registrar_published{service="web/web-1"} 1"#)
            && metrics.contains(r#"disco_registrar_published{service="cache/cache-1"} 0"#),
        "{metrics}"
    );
    crate::promtool::assert_accepts(&metrics);
    // The page says the same for people.
    let (status, page) = http::get(http_addr, "/ui/").await;
    assert_eq!(status, 200, "{page}");
    let web = page
        .split(r#"<tr data-service="web/web-1">"#)
        .nth(1)
        .unwrap_or_else(|| panic!("no web/web-1 row: {page}"));
    let web = web.split("</tr>").next().unwrap();
    assert_eq!(web.matches(r#"<span class="ok">"#).count(), 3, "{web}");
    let cache = page
        .split(r#"<tr data-service="cache/cache-1">"#)
        .nth(1)
        .unwrap()
        .split("</tr>")
        .next()
        .unwrap();
    assert!(cache.contains(r#"<span class="bad">no</span>"#), "{cache}");
    assert!(cache.contains("none yet"), "never published: {cache}");
    assert!(page.contains("passed"), "{page}");
    // Why db is out: its check, with the error, and when.
    let db = page
        .split(r#"<tr data-service="db/db-1">"#)
        .nth(1)
        .unwrap()
        .split("</tr>")
        .next()
        .unwrap();
    assert!(
        db.contains("<strong>withdrawn</strong>: <span class=\"why\">check failed 2× (tcp"),
        "{db}"
    );
    assert!(db.contains("<time "), "{db}");
}
