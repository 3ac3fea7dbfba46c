//! The JSON API over real ZooKeeper registrations: services, instances,
//! registries, the event stream receiving a registration as it happens and
//! a withdrawal, and the responses held to `docs/openapi.yaml`.

use std::time::Duration;

use zookeeper_client::CreateMode;

use crate::api::{EventStream, get_json, openapi_check};
use crate::server::ZooKeeper;
use crate::support::{Disco, client, create, delete, node, register};

#[tokio::test]
async fn the_api_shows_what_zookeeper_holds_and_streams_changes() {
    let zk = ZooKeeper::start();
    let owner = client(&zk).await;
    create(
        &owner,
        &node("db", "db-1"),
        br#"{"address":"10.0.0.9","port":5432,"tags":["primary"],"meta":{"zone":"a"}}"#,
        CreateMode::Ephemeral,
    )
    .await;
    let url = zk.url("zk", "/disco");
    let disco = Disco::start(std::slice::from_ref(&url)).await;

    let (status, services) = get_json(disco.http, "/v1/services").await;
    assert_eq!(status, 200);
    assert_eq!(services["services"][0]["name"], "db");
    assert_eq!(
        services["services"][0]["tags"],
        serde_json::json!(["primary"])
    );
    let (_, db) = get_json(disco.http, "/v1/services/db").await;
    assert_eq!(db["instances"][0]["address"], "10.0.0.9");
    assert_eq!(db["instances"][0]["meta"]["zone"], "a");
    assert_eq!(db["instances"][0]["registry"], url.as_str());
    let (_, registries) = get_json(disco.http, "/v1/registries").await;
    assert_eq!(registries["registries"][0]["registry"], url.as_str());
    assert_eq!(registries["registries"][0]["instances"], 1);

    let mut stream = EventStream::open(disco.http, "/v1/changes/stream").await;
    register(&owner, "db", "db-2", "10.0.0.10", 5432).await;
    stream
        .until(r#""instance":"db-2""#, Duration::from_secs(10))
        .await;
    delete(&owner, &node("db", "db-1")).await;
    stream
        .until(r#""kind":"removed""#, Duration::from_secs(10))
        .await;
    let (_, db) = get_json(disco.http, "/v1/services/db").await;
    assert_eq!(db["total_instances"], 1);
    assert_eq!(db["instances"][0]["id"], "db-2");

    let report = openapi_check(disco.http, "db").await;
    eprintln!("{report}");
    disco.stop().await;
}

/// Nerve's nodes (`nerve+zk://`) are instances like disco's own: the
/// service from the path, the instance from the node's name, its fields
/// from Nerve's JSON.
#[tokio::test]
async fn nerve_nodes_appear_as_instances() {
    let zk = ZooKeeper::start();
    let owner = client(&zk).await;
    create(
        &owner,
        "/nerve/services/web/services/web-a_",
        br#"{"host":"10.0.3.1","port":"8080","name":"web-a","weight":7,"labels":{"az":"b"}}"#,
        CreateMode::EphemeralSequential,
    )
    .await;
    let url = zk.url("nerve+zk", "/nerve/services");
    let disco = Disco::start(std::slice::from_ref(&url)).await;
    let (status, web) = get_json(disco.http, "/v1/services/web").await;
    assert_eq!(status, 200, "{web}");
    let instance = &web["instances"][0];
    assert_eq!(instance["address"], "10.0.3.1", "{web}");
    assert_eq!(instance["port"], 8080, "{web}");
    assert_eq!(instance["weight"], 7, "{web}");
    assert_eq!(instance["registry"], url.as_str());
    assert_eq!(instance["skydns"], serde_json::Value::Null);
    eprintln!("{web}");
    disco.stop().await;
}
