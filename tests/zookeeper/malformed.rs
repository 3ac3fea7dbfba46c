//! Nodes disco cannot use, beyond the battery's bad values: a registration
//! node with children, a node of 1 MiB, Nerve nodes with bad names, a
//! host name for a host or a `service` that is no DNS name. Skipped,
//! counted, hiding nothing.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use zookeeper_client::CreateMode;

use crate::server::ZooKeeper;
use crate::support::{Disco, client, create, delete, node, ok, registration};

fn skipped_line(url: &str, count: u64) -> String {
    format!("disco_registry_skipped_total{{registry=\"{url}\"}} {count}")
}

#[tokio::test]
async fn a_leaf_with_children_and_a_huge_node_are_skipped_and_counted() {
    let zk = ZooKeeper::start();
    let url = zk.url("zk", "/disco");
    let owner = client(&zk).await;
    let good = registration("10.0.0.1", 80);
    create(
        &owner,
        &node("web", "web-1"),
        good.as_bytes(),
        CreateMode::Persistent,
    )
    .await;
    let parent = node("web", "parent");
    create(
        &owner,
        &parent,
        registration("10.0.0.2", 80).as_bytes(),
        CreateMode::Persistent,
    )
    .await;
    create(
        &owner,
        &format!("{parent}/child"),
        good.as_bytes(),
        CreateMode::Persistent,
    )
    .await;
    let huge = format!(
        r#"{{"address":"10.0.0.3","meta":{{"pad":"{}"}}}}"#,
        "x".repeat(1 << 20)
    );
    create(
        &owner,
        &node("web", "huge"),
        huge.as_bytes(),
        CreateMode::Persistent,
    )
    .await;

    let disco = Disco::start(std::slice::from_ref(&url)).await;
    assert_eq!(
        disco.answers("web.disco.internal.", RecordType::A).await,
        ok(&["10.0.0.1"])
    );
    disco.until_metric(&skipped_line(&url, 2)).await;
    // Its child gone, the node is a leaf again and answers; a child added
    // to a registration withdraws it.
    delete(&owner, &format!("{parent}/child")).await;
    disco
        .until_answers(
            "web.disco.internal.",
            RecordType::A,
            ok(&["10.0.0.1", "10.0.0.2"]),
        )
        .await;
    create(
        &owner,
        &format!("{}/x", node("web", "web-1")),
        b"",
        CreateMode::Persistent,
    )
    .await;
    disco
        .until_answers("web.disco.internal.", RecordType::A, ok(&["10.0.0.2"]))
        .await;
    disco.until_metric(&skipped_line(&url, 3)).await;
    disco.stop().await;
}

#[tokio::test]
async fn bad_nerve_nodes_are_skipped_and_counted() {
    let zk = ZooKeeper::start();
    let url = zk.url("nerve+zk", "/nerve/services");
    let owner = client(&zk).await;
    let web = "/nerve/services/web/services";
    let good = br#"{"host":"10.0.0.1","port":80}"#;
    create(
        &owner,
        &format!("{web}/i-1_0000000001"),
        good,
        CreateMode::Persistent,
    )
    .await;
    for (name, value) in [
        ("no-sequence", &good[..]),
        ("base64_99_bm90_0000000002", &good[..]),
        (
            "i-2_0000000003",
            br#"{"host":"web2.example.com","port":80}"#,
        ),
        ("i-3_0000000004", br#"{"host":"10.0.0.3","port":"http"}"#),
        ("i-4_0000000005", b"not json"),
        (
            "i-5_0000000006",
            br#"{"host":"10.0.0.5","port":80,"service":"my sql"}"#,
        ),
    ] {
        create(
            &owner,
            &format!("{web}/{name}"),
            value,
            CreateMode::Persistent,
        )
        .await;
    }
    let disco = Disco::start(std::slice::from_ref(&url)).await;
    assert_eq!(
        disco.answers("web.disco.internal.", RecordType::A).await,
        ok(&["10.0.0.1"])
    );
    disco.until_metric(&skipped_line(&url, 6)).await;
    assert_eq!(
        disco
            .answers("i-2.web.disco.internal.", RecordType::A)
            .await,
        Err(ResponseCode::NXDomain)
    );
    disco.stop().await;
}
