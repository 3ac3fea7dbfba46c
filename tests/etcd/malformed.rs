//! Values disco cannot use: skipped, logged, counted in `/metrics`, and
//! never in the way of the other instances.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::cluster::Etcd;
use crate::support::{Disco, key, ok, put, register, registration};

fn skipped_line(url: &str, count: u64) -> String {
    format!("disco_registry_skipped_total{{registry=\"{url}\"}} {count}")
}

#[tokio::test]
async fn bad_values_and_stray_keys_are_skipped_counted_and_hide_nothing() {
    // Room for a value of several MiB.
    let etcd = Etcd::start_with(1, &["--max-request-bytes", "8388608"]);
    let url = etcd.url("etcd", "/disco");
    let mut client = etcd.client().await;
    register(&mut client, "web", "web-1", "10.0.0.1", 80).await;
    register(&mut client, "web", "web-2", "10.0.0.2", 80).await;
    put(&mut client, &key("web", "bad-json"), "{not json").await;
    put(
        &mut client,
        &key("web", "bad-address"),
        r#"{"address":"10.0.0.300"}"#,
    )
    .await;
    put(
        &mut client,
        "/disco/services/web",
        &registration("10.0.0.9", 80),
    )
    .await;
    put(&mut client, "/disco/other/x", &registration("10.0.0.9", 80)).await;
    put(
        &mut client,
        "/disco/services/web/x/deeper",
        &registration("10.0.0.9", 80),
    )
    .await;
    let huge = format!(
        r#"{{"address":"10.0.0.9","meta":{{"pad":"{}"}}}}"#,
        "x".repeat(5 << 20)
    );
    put(&mut client, &key("web", "huge"), &huge).await;

    let disco = Disco::start(std::slice::from_ref(&url)).await;
    assert_eq!(
        disco.answers("web.disco.internal.", RecordType::A).await,
        ok(&["10.0.0.1", "10.0.0.2"])
    );
    disco.until_metric(&skipped_line(&url, 6)).await;

    // Through the watch: a bad value at a good instance's key withdraws it
    // (a key holding garbage registers nothing) ...
    put(
        &mut client,
        &key("web", "web-1"),
        r#"{"address":"not-an-ip"}"#,
    )
    .await;
    disco
        .until_answers("web.disco.internal.", RecordType::A, ok(&["10.0.0.2"]))
        .await;
    disco.until_metric(&skipped_line(&url, 7)).await;
    // ... and a good value brings it back.
    register(&mut client, "web", "web-1", "10.0.0.11", 80).await;
    disco
        .until_answers(
            "web.disco.internal.",
            RecordType::A,
            ok(&["10.0.0.11", "10.0.0.2"]),
        )
        .await;
    put(&mut client, &key("web", "huge-too"), &huge).await;
    disco.until_metric(&skipped_line(&url, 8)).await;
    assert_eq!(
        disco
            .answers("huge.web.disco.internal.", RecordType::A)
            .await,
        Err(ResponseCode::NXDomain)
    );
    let (status, body) = disco.ready().await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"skipped\":8"), "{body}");
    disco.stop().await;
}

#[tokio::test]
async fn values_beyond_the_response_limit_are_skipped_in_listings_and_watches() {
    // disco reads at most 16 MiB per response: a page of the listing with
    // several large values is read in smaller pages, and a single value
    // over the limit is skipped by key alone.
    let etcd = Etcd::start_with(1, &["--max-request-bytes", "20971520"]);
    let url = etcd.url("etcd", "/disco");
    let mut client = etcd.client().await;
    let big = "x".repeat(6 << 20);
    for i in 0..4 {
        put(&mut client, &key("big", &format!("b{i}")), &big).await;
    }
    let giant = "x".repeat(17 << 20);
    put(&mut client, &key("big", "giant"), &giant).await;
    register(&mut client, "web", "web-1", "10.0.0.1", 80).await;
    register(&mut client, "zzz", "last", "10.0.0.2", 80).await;

    let disco = Disco::start(std::slice::from_ref(&url)).await;
    assert_eq!(
        disco.answers("web.disco.internal.", RecordType::A).await,
        ok(&["10.0.0.1"])
    );
    assert_eq!(
        disco.answers("zzz.disco.internal.", RecordType::A).await,
        ok(&["10.0.0.2"])
    );
    disco.until_metric(&skipped_line(&url, 5)).await;

    // In a watch, a response over the limit breaks the stream; disco lists
    // again, skips the value, and watches on.
    put(&mut client, &key("big", "giant-2"), &giant).await;
    disco.until_metric(&skipped_line(&url, 5 + 6)).await;
    register(&mut client, "web", "web-2", "10.0.0.3", 80).await;
    disco
        .until_answers(
            "web.disco.internal.",
            RecordType::A,
            ok(&["10.0.0.1", "10.0.0.3"]),
        )
        .await;
    disco.stop().await;
}
