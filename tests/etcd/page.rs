//! The web page in headless Chromium (Debian's `chromium`): the rendered
//! DOM shows the services, an instance's fields and its dig lines, and a
//! registration made while the page is open appears in its live
//! timeline (read live through the DevTools protocol,
//! `tests/common/cdp_dom.py`). Screenshots at desktop and phone widths,
//! and dark, go to
//! `target/tmp/ui-screenshots/`.

use std::time::Duration;

use crate::chromium::{dump_dom, screenshot};
use crate::cluster::Etcd;
use crate::support::{Disco, key, put, register};

#[tokio::test]
async fn the_page_shows_services_instances_and_a_live_timeline() {
    let etcd = Etcd::start();
    let mut client = etcd.client().await;
    put(
        &mut client,
        &key("web", "web-1"),
        r#"{"address":"10.0.0.5","port":8080,"ports":{"http":8080},
            "tags":["v2","primary"],"meta":{"version":"1.4.2"}}"#,
    )
    .await;
    register(&mut client, "api", "api-1", "10.0.1.1", 80).await;
    put(
        &mut client,
        "/skydns/internal/disco/cache/c1",
        r#"{"host":"10.0.2.1","port":6379,"text":"redis primary"}"#,
    )
    .await;
    put(
        &mut client,
        "/skydns/internal/disco/cache/c2",
        r#"{"host":"cache.example.org","port":6379,"priority":20}"#,
    )
    .await;
    let url = format!("etcd://{}/disco", etcd.endpoint(0));
    let sky = etcd.url("skydns+etcd", "/skydns");
    let disco = Disco::start(&[url, sky]).await;
    let base = format!("http://{}", disco.http);

    let dom = dump_dom(&format!("{base}/ui/"), &[]).await;
    assert!(dom.contains(r#"<tr data-name="web">"#), "{dom}");
    assert!(dom.contains(r#"href="/ui/services/web""#), "{dom}");
    assert!(dom.contains(r#"<span class="tag">primary</span>"#), "{dom}");
    assert!(dom.contains("3 services, 4 instances"), "{dom}");
    assert!(dom.contains("synced"), "{dom}");

    let dom = dump_dom(&format!("{base}/ui/services/web"), &[]).await;
    assert!(dom.contains(r#"<tr data-id="web-1">"#), "{dom}");
    assert!(dom.contains("10.0.0.5"), "{dom}");
    assert!(dom.contains("8080 http=8080"), "{dom}");
    assert!(dom.contains("version=1.4.2"), "{dom}");
    let dig = format!(
        "dig @{} -p {} web.disco.internal. SRV",
        disco.dns.ip(),
        disco.dns.port()
    );
    assert!(dom.contains(&dig), "{dom}");

    // SkyDNS entries: the instances of the name above them.
    let dom = dump_dom(&format!("{base}/ui/services/cache"), &[]).await;
    assert!(dom.contains(r#"<tr data-id="c1">"#), "{dom}");
    assert!(dom.contains("cache.example.org"), "{dom}");
    assert!(dom.contains("key=/skydns/internal/disco/cache/c1"), "{dom}");
    assert!(dom.contains("text=redis primary"), "{dom}");
    assert!(!dom.contains("_cache._tcp"), "no RFC 2782 name: {dom}");

    // The live timeline: the page open in Chromium, read through the
    // DevTools protocol; a registration made once its event stream has
    // connected appears in the timeline without a reload.
    let live = tokio::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/common/cdp_dom.py"
        ))
        .arg(format!("{base}/ui/"))
        .arg("<td>web-live.web</td>")
        .arg("30")
        .kill_on_drop(true)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    disco.until_metric("disco_http_event_streams 1").await;
    register(&mut client, "web", "web-live", "10.0.0.9", 8080).await;
    let output = tokio::time::timeout(Duration::from_secs(60), live.wait_with_output())
        .await
        .expect("the DevTools reader finished")
        .unwrap();
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "no live timeline entry: {}\n{dom}",
        String::from_utf8_lossy(&output.stderr)
    );
    let timeline = dom.split(r#"id="timeline""#).nth(1).expect("a timeline");
    assert!(timeline.contains("<td>added</td>"), "{dom}");

    let sizes = [
        ("desktop.png", 1280, 900, false),
        ("phone.png", 390, 844, false),
        ("desktop-dark.png", 1280, 900, true),
    ];
    for (name, width, height, dark) in sizes {
        let path = screenshot(&format!("{base}/ui/"), name, width, height, dark).await;
        eprintln!("screenshot {}", path.display());
    }
    for (path, name, width) in [
        ("web", "service-phone.png", 390),
        ("cache", "service-skydns-desktop.png", 1280),
        ("cache", "service-skydns-phone.png", 390),
    ] {
        let url = format!("{base}/ui/services/{path}");
        let path = screenshot(&url, name, width, 844, false).await;
        eprintln!("screenshot {}", path.display());
    }
    disco.stop().await;
}
