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

/// A service of `n` instances, each with a port: its SRV set passes 512
/// bytes from about ten instances on.
fn service_of(n: usize) -> Vec<disco::model::Instance> {
    (0..n)
        .map(|i| {
            let json = format!(r#"{{"address":"10.0.1.{i}","port":8080}}"#);
            instance("web", &format!("web-{i}"), &json)
        })
        .collect()
}

/// The SRV targets of an answer, as instance ids.
fn srv_ids(message: &Message) -> Vec<String> {
    (message.answers.iter())
        .map(|r| match &r.data {
            hickory_proto::rr::RData::SRV(srv) => {
                let target = srv.target.to_lowercase().to_ascii();
                target.split('.').next().unwrap().to_owned()
            }
            other => panic!("not SRV: {other}"),
        })
        .collect()
}

#[tokio::test]
async fn truncated_srv_answers_leave_out_different_instances_and_every_one_appears() {
    // HAProxy's resolver ignores TC: with a fixed order, the instances past
    // the first UDP answer were never routed to.
    let server = TestServer::start(service_of(30)).await;
    let mut left_out = std::collections::BTreeSet::new();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..200 {
        let bytes = server
            .raw(&query_message("web.disco.internal.", RecordType::SRV, None))
            .await
            .unwrap();
        let message = Message::from_vec(&bytes).unwrap();
        assert!(message.metadata.truncation && bytes.len() <= 512);
        let ids = srv_ids(&message);
        assert!(ids.len() > 5 && ids.len() < 30, "{ids:?}");
        let mut missing: Vec<String> = (0..30)
            .map(|i| format!("web-{i}"))
            .filter(|id| !ids.contains(id))
            .collect();
        missing.sort();
        left_out.insert(missing);
        seen.extend(ids);
    }
    assert_eq!(
        seen.len(),
        30,
        "every instance is answered sometimes: {seen:?}"
    );
    assert!(
        left_out.len() > 10,
        "{} different sets left out",
        left_out.len()
    );
}

#[tokio::test]
async fn udp_answer_limit_sends_that_many_answers_with_their_addresses_and_no_tc() {
    let server = TestServer::start_with(service_of(30), &[], |args| {
        args.udp_answer_limit = Some(4);
    })
    .await;
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..100 {
        let message = server.udp("web.disco.internal.", RecordType::SRV).await;
        assert!(!message.metadata.truncation);
        let ids = srv_ids(&message);
        assert_eq!(ids.len(), 4);
        // The additional section holds the addresses of these four.
        let owners: Vec<String> = (message.additionals.iter())
            .filter(|r| r.record_type() == RecordType::A)
            .map(|r| r.name.to_lowercase().to_ascii())
            .collect();
        let targets: Vec<String> = ids
            .iter()
            .map(|id| format!("{id}.web.disco.internal."))
            .collect();
        assert_eq!(owners, targets);
        seen.extend(ids);
        let a = server.udp("web.disco.internal.", RecordType::A).await;
        assert_eq!(a.answers.len(), 4);
    }
    assert_eq!(seen.len(), 30);
    // TCP is not limited.
    let tcp = server.tcp("web.disco.internal.", RecordType::SRV).await;
    assert_eq!(tcp.answers.len(), 30);
}
