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

/// SkyDNS entries are instances of the name above them, one per key, with
/// their own fields under `skydns`; reverse entries are no service.
#[tokio::test]
async fn skydns_entries_appear_as_instances_of_the_name_above_them() {
    let etcd = Etcd::start();
    let mut client = etcd.client().await;
    put(
        &mut client,
        "/skydns/internal/disco/web/x1",
        r#"{"host":"10.0.0.1","port":8080,"text":"hello","ttl":30}"#,
    )
    .await;
    put(
        &mut client,
        "/skydns/internal/disco/web/x2",
        r#"{"host":"db.example.org","priority":20,"weight":5,"group":"g1"}"#,
    )
    .await;
    put(
        &mut client,
        "/skydns/internal/disco/cache",
        r#"{"host":"10.0.0.9"}"#,
    )
    .await;
    put(
        &mut client,
        "/skydns/arpa/in-addr/10/0/0/1",
        r#"{"host":"x1.web.disco.internal"}"#,
    )
    .await;
    let sky = etcd.url("skydns+etcd", "/skydns");
    let native = format!("etcd://{}/disco", etcd.endpoint(0));
    register(&mut client, "web", "web-1", "10.0.0.5", 80).await;
    let disco = Disco::start(&[native.clone(), sky.clone()]).await;

    let (status, services) = get_json(disco.http, "/v1/services").await;
    assert_eq!(status, 200, "{services}");
    let names: Vec<&str> = (services["services"].as_array().unwrap().iter())
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["cache", "web"], "{services}");
    assert_eq!(services["total_instances"], 4, "{services}");
    assert_eq!(
        services["services"][1]["registries"],
        serde_json::json!([native, sky])
    );

    let (_, web) = get_json(disco.http, "/v1/services/web").await;
    let by_id = |id: &str| {
        (web["instances"].as_array().unwrap().iter())
            .find(|i| i["id"] == id)
            .unwrap_or_else(|| panic!("no {id} in {web}"))
            .clone()
    };
    let x1 = by_id("x1");
    assert_eq!(x1["address"], "10.0.0.1");
    assert_eq!(x1["port"], 8080);
    assert_eq!(x1["priority"], 10, "CoreDNS's default");
    assert_eq!(x1["weight"], 100);
    assert_eq!(x1["ttl"], 30);
    assert_eq!(x1["dns"], "x1.web.disco.internal.");
    assert_eq!(x1["registry"], sky.as_str());
    assert_eq!(x1["skydns"]["key"], "/skydns/internal/disco/web/x1");
    assert_eq!(x1["skydns"]["text"], "hello");
    let x2 = by_id("x2");
    assert_eq!(
        x2["address"],
        serde_json::Value::Null,
        "a name, not an address"
    );
    assert_eq!(x2["skydns"]["host"], "db.example.org");
    assert_eq!(
        (x2["priority"].clone(), x2["weight"].clone()),
        (20.into(), 5.into())
    );
    assert_eq!(x2["skydns"]["group"], "g1");
    assert_eq!(by_id("web-1")["skydns"], serde_json::Value::Null);
    let (_, cache) = get_json(disco.http, "/v1/services/cache").await;
    assert_eq!(cache["instances"][0]["id"], "cache");
    assert_eq!(cache["instances"][0]["dns"], "cache.disco.internal.");
    assert_eq!(
        cache["dns"]["rfc2782"],
        serde_json::Value::Null,
        "no _cache._tcp for SkyDNS entries"
    );
    assert_eq!(web["dns"]["rfc2782"], "_web._tcp.disco.internal.");

    // Paging by store key: the cursor is the key, opaque to the client.
    let (_, first) = get_json(disco.http, "/v1/services/web?limit=1").await;
    let after = first["next"].as_str().unwrap().to_owned();
    let (_, rest) = get_json(
        disco.http,
        &format!("/v1/services/web?limit=10&after={after}"),
    )
    .await;
    assert_eq!(rest["instances"].as_array().unwrap().len(), 2, "{rest}");

    // A change arrives on the stream, with the entry's own field names.
    let mut stream = EventStream::open(disco.http, "/v1/changes/stream").await;
    put(
        &mut client,
        "/skydns/internal/disco/web/x1",
        r#"{"host":"10.0.0.2","port":8080,"text":"hello","ttl":30}"#,
    )
    .await;
    let seen = stream
        .until(r#""fields":["host"]"#, Duration::from_secs(10))
        .await;
    assert!(seen.contains(r#""instance":"x1""#), "{seen}");

    // The page shows the entry and its key.
    let (status, page) = crate::support::http::get(disco.http, "/ui/services/web").await;
    assert_eq!(status, 200);
    assert!(page.contains("db.example.org"), "{page}");
    assert!(page.contains("key=/skydns/internal/disco/web/x2"), "{page}");

    let report = openapi_check(disco.http, "web").await;
    eprintln!("{report}");
    disco.stop().await;
}
