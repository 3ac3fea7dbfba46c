//! `skydns+etcd://`: CoreDNS/SkyDNS keys read through the same listing and
//! watch. Which answers they give in detail is the DNS side's business (and
//! its tests); here, that entries arrive, leave, and the bad ones are
//! skipped.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::cluster::Etcd;
use crate::support::{Disco, ok, put, put_leased};

#[tokio::test]
async fn skydns_entries_come_and_go_and_bad_ones_are_skipped() {
    let etcd = Etcd::start();
    let url = etcd.url("skydns+etcd", "/skydns");
    let mut client = etcd.client().await;
    put(
        &mut client,
        "/skydns/internal/disco/web/x1",
        r#"{"host":"10.0.0.1","port":8080}"#,
    )
    .await;
    let disco = Disco::start(std::slice::from_ref(&url)).await;
    let (status, body) = disco.ready().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        disco.answers("web.disco.internal.", RecordType::A).await,
        ok(&["10.0.0.1"])
    );

    put_leased(
        &mut client,
        "/skydns/internal/disco/web/x2",
        r#"{"host":"10.0.0.2","port":8080,"ttl":30}"#,
        60,
    )
    .await;
    put(&mut client, "/skydns/internal/disco/db/x3", "{not json").await;
    disco
        .until_metric(&format!(
            "disco_registry_skipped_total{{registry=\"{url}\"}} 1"
        ))
        .await;
    disco
        .until_answers(
            "web.disco.internal.",
            RecordType::A,
            ok(&["10.0.0.1", "10.0.0.2"]),
        )
        .await;
    assert_eq!(
        disco.answers("x3.db.disco.internal.", RecordType::A).await,
        Err(ResponseCode::NXDomain)
    );

    client
        .delete("/skydns/internal/disco/web/x1", None)
        .await
        .unwrap();
    disco
        .until_answers("web.disco.internal.", RecordType::A, ok(&["10.0.0.2"]))
        .await;
    disco.stop().await;
}
