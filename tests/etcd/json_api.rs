//! The JSON API over real etcd registrations: every endpoint, paging, the
//! event stream receiving a registration as it happens, and the responses
//! held to `docs/openapi.yaml`.

use std::time::Duration;

use crate::api::{EventStream, get_json, openapi_check};
use crate::cluster::Etcd;
use crate::support::{Disco, key, put, register};

#[tokio::test]
async fn the_api_shows_what_etcd_holds_and_streams_changes() {
    let etcd = Etcd::start();
    let mut client = etcd.client().await;
    put(
        &mut client,
        &key("web", "web-1"),
        r#"{"address":"10.0.0.5","port":8080,"ports":{"http":8080,"metrics":9100},
            "tags":["v2","primary"],"ttl":7,"meta":{"version":"1.4.2"}}"#,
    )
    .await;
    register(&mut client, "api", "api-1", "10.0.1.1", 80).await;
    register(&mut client, "api", "api-2", "10.0.1.2", 80).await;
    let url = format!("etcd://{}/disco", etcd.endpoint(0));
    let disco = Disco::start(std::slice::from_ref(&url)).await;

    let (status, services) = get_json(disco.http, "/v1/services").await;
    assert_eq!(status, 200);
    assert_eq!(services["total_services"], 2);
    assert_eq!(services["total_instances"], 3);
    let web = &services["services"][1];
    assert_eq!(web["name"], "web");
    assert_eq!(web["instances"], 1);
    assert_eq!(web["tags"], serde_json::json!(["primary", "v2"]));
    assert_eq!(web["registries"], serde_json::json!([url]));

    let (status, one) = get_json(disco.http, "/v1/services/web").await;
    assert_eq!(status, 200);
    let instance = &one["instances"][0];
    assert_eq!(instance["id"], "web-1");
    assert_eq!(instance["address"], "10.0.0.5");
    assert_eq!(instance["port"], 8080);
    assert_eq!(instance["ports"]["metrics"], 9100);
    assert_eq!(instance["ttl"], 7);
    assert_eq!(instance["meta"]["version"], "1.4.2");
    assert_eq!(instance["registry"], url.as_str());
    assert_eq!(instance["dns"], "web-1.web.disco.internal.");
    assert_eq!(one["dns"]["rfc2782"], "_web._tcp.disco.internal.");

    // Paging: one service a page, then the next after it.
    let (_, first) = get_json(disco.http, "/v1/services?limit=1").await;
    assert_eq!(first["services"][0]["name"], "api");
    assert_eq!(first["next"], "api");
    let (_, second) = get_json(disco.http, "/v1/services?limit=1&after=api").await;
    assert_eq!(second["services"][0]["name"], "web");
    assert_eq!(second["next"], serde_json::Value::Null);
    let (_, page) = get_json(disco.http, "/v1/services/api?limit=1&after=api-1").await;
    assert_eq!(page["instances"][0]["id"], "api-2");
    let (status, _) = get_json(disco.http, "/v1/services?limit=0").await;
    assert_eq!(status, 400);

    let (_, registries) = get_json(disco.http, "/v1/registries").await;
    let registry = &registries["registries"][0];
    assert_eq!(registry["registry"], url.as_str());
    assert_eq!(registry["synced"], true);
    assert_eq!(registry["instances"], 3);

    // The stream: a registration made now arrives as it happens.
    let mut stream = EventStream::open(disco.http, "/v1/changes/stream").await;
    register(&mut client, "web", "web-2", "10.0.0.6", 8080).await;
    let seen = stream
        .until(r#""instance":"web-2""#, Duration::from_secs(10))
        .await;
    assert!(seen.contains(r#""kind":"added""#), "{seen}");
    assert!(seen.contains("event: change"), "{seen}");

    // A change of fields says which.
    put(
        &mut client,
        &key("web", "web-2"),
        r#"{"address":"10.0.0.7","port":8080}"#,
    )
    .await;
    stream
        .until(r#""fields":["address"]"#, Duration::from_secs(10))
        .await;
    let (_, changes) = get_json(disco.http, "/v1/changes?since=0").await;
    let kinds: Vec<&str> = (changes["changes"].as_array().unwrap().iter())
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "added").count(),
        4,
        "{changes}"
    );
    assert!(kinds.contains(&"synced"), "{changes}");
    assert!(kinds.contains(&"changed"), "{changes}");

    let report = openapi_check(disco.http, "web").await;
    eprintln!("{report}");
    disco.stop().await;
}
