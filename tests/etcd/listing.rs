//! A large registry: 100,000 instances read in pages at one revision, none
//! lost at a page boundary.

use etcd_client::{Txn, TxnOp};
use hickory_proto::rr::RecordType;

use crate::cluster::Etcd;
use crate::support::{Disco, key, ok, register};

const INSTANCES: usize = 100_000;
/// etcd's default `--max-txn-ops`.
const PUTS_PER_TXN: usize = 128;

fn address(i: usize) -> String {
    format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255)
}

#[tokio::test]
async fn a_hundred_thousand_instances_are_listed_in_pages_without_loss() {
    let etcd = Etcd::start();
    let mut client = etcd.client().await;
    let mut puts = Vec::with_capacity(PUTS_PER_TXN);
    for i in 0..INSTANCES {
        let value = format!(
            r#"{{"address":"{}","port":8080,"tags":["v2"],"meta":{{"version":"1.4.2"}}}}"#,
            address(i)
        );
        puts.push(TxnOp::put(
            key(&format!("svc{}", i % 1000), &format!("i{i}")),
            value,
            None,
        ));
        if puts.len() == PUTS_PER_TXN || i + 1 == INSTANCES {
            client
                .txn(Txn::new().and_then(std::mem::take(&mut puts)))
                .await
                .unwrap();
        }
    }

    let url = etcd.url("etcd", "/disco");
    let disco = Disco::start(std::slice::from_ref(&url)).await;
    disco
        .until_metric(&format!("disco_instances {INSTANCES}"))
        .await;
    disco
        .until_metric(&format!(
            "disco_registry_skipped_total{{registry=\"{url}\"}} 0"
        ))
        .await;
    // Keys sort as strings: i0, i1000, ..., i99999 in svc0 ... svc999.
    for i in [0, 1, 999, 1000, 54_321, 99_999] {
        let name = format!("i{i}.svc{}.disco.internal.", i % 1000);
        assert_eq!(
            disco.answers(&name, RecordType::A).await,
            ok(&[&address(i)]),
            "{name}"
        );
    }
    // The watch runs from the listing's revision on.
    register(&mut client, "svc0", "new", "10.200.0.1", 80).await;
    disco
        .until_answers(
            "new.svc0.disco.internal.",
            RecordType::A,
            ok(&["10.200.0.1"]),
        )
        .await;
    disco.stop().await;
}
