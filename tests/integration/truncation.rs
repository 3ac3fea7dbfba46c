//! UDP answers fit the client's limit with TC set when records are dropped;
//! TCP returns the complete set.

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

use crate::support::*;

fn two_thousand() -> Vec<disco::model::Instance> {
    (0..2000)
        .map(|i| {
            instance(
                "big",
                &format!("big-{i}"),
                &format!(
                    r#"{{"address":"10.{}.{}.{}","port":8080}}"#,
                    i / 65536,
                    (i / 256) % 256,
                    i % 256
                ),
            )
        })
        .collect()
}

#[tokio::test]
async fn two_thousand_instances_truncate_over_udp_and_complete_over_tcp() {
    let server = TestServer::start(two_thousand()).await;
    for (edns, limit) in [(None, 512), (Some(1232), 1232), (Some(4096), 1232)] {
        let bytes = server
            .raw(&query_message("big.disco.internal.", RecordType::A, edns))
            .await
            .unwrap();
        assert!(
            bytes.len() <= limit,
            "{} bytes over a {limit}-byte limit",
            bytes.len()
        );
        let message = Message::from_vec(&bytes).unwrap();
        assert!(
            message.metadata.truncation,
            "TC must be set (edns {edns:?})"
        );
        assert!(!message.answers.is_empty() && message.answers.len() < 2000);
        assert_eq!(
            message.edns.is_some(),
            edns.is_some(),
            "OPT echoed only to EDNS clients"
        );
    }
    let tcp = server.tcp("big.disco.internal.", RecordType::A).await;
    assert!(!tcp.metadata.truncation);
    assert_eq!(tcp.answers.len(), 2000);
    // SRV targets may not be compressed (RFC 2782), so 2,000 of them pass
    // 64 KiB: TCP carries all that fit and says the rest were dropped.
    let srv = server.tcp("big.disco.internal.", RecordType::SRV).await;
    assert!(
        srv.answers.len() > 1000,
        "{} SRV records over TCP",
        srv.answers.len()
    );
    assert_eq!(srv.metadata.truncation, srv.answers.len() < 2000);
}

#[tokio::test]
async fn rfc2181_section9_additional_records_are_dropped_before_answers() {
    // 20 SRV records fit in 1232 bytes; their 20 addresses do not.
    let instances: Vec<_> = (0..20)
        .map(|i| {
            instance(
                "mid",
                &format!("node-0000000{i:02}"),
                &format!(r#"{{"address":"10.0.0.{i}","port":80}}"#),
            )
        })
        .collect();
    let server = TestServer::start(instances).await;
    let bytes = server
        .raw(&query_message(
            "mid.disco.internal.",
            RecordType::SRV,
            Some(1232),
        ))
        .await
        .unwrap();
    let message = Message::from_vec(&bytes).unwrap();
    assert_eq!(message.answers.len(), 20);
    assert!(
        !message.metadata.truncation,
        "a complete answer section needs no TC"
    );
    assert!(message.additionals.len() < 20);
    assert!(bytes.len() <= 1232);
}
