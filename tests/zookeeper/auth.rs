//! Digest credentials: nodes only an authenticated session may read are
//! answered with the right user and password, and a wrong password leaves
//! the registry unsynced, saying why.

use std::time::Duration;

use hickory_proto::rr::RecordType;
use zookeeper_client::{Acls, Client, CreateMode};

use crate::server::ZooKeeper;
use crate::support::{Disco, node, ok, registration};

/// Writes `/disco/services/web/web-1` readable only by `disco:s3cret`.
async fn protected(zk: &ZooKeeper) -> Client {
    let owner = Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .with_auth("digest", b"disco:s3cret")
        .connect(&zk.hosts())
        .await
        .unwrap();
    let only_disco = CreateMode::Persistent.with_acls(Acls::creator_all());
    for path in ["/disco", "/disco/services", "/disco/services/web"] {
        owner.create(path, b"", &only_disco).await.unwrap();
    }
    owner
        .create(
            &node("web", "web-1"),
            registration("10.0.0.5", 80).as_bytes(),
            &only_disco,
        )
        .await
        .unwrap();
    owner
}

#[tokio::test]
async fn digest_credentials_read_protected_nodes() {
    let zk = ZooKeeper::start();
    let _owner = protected(&zk).await;
    let disco = Disco::start_with(&[zk.url("zk", "/disco")], &[], |args| {
        args.zk.zk_user = Some("disco".into());
        args.zk.zk_password = Some(disco::secret::Secret::new("s3cret"));
    })
    .await;
    disco.wait_ready().await;
    assert_eq!(
        disco.answers("web.disco.internal.", RecordType::A).await,
        ok(&["10.0.0.5"])
    );
    disco.stop().await;
}

#[tokio::test]
async fn a_wrong_password_leaves_the_registry_unsynced_and_says_why() {
    let zk = ZooKeeper::start();
    let _owner = protected(&zk).await;
    let disco = Disco::start_with(&[zk.url("zk", "/disco")], &[], |args| {
        args.zk.zk_user = Some("disco".into());
        args.zk.zk_password = Some(disco::secret::Secret::new("wrong"));
    })
    .await;
    disco.until_ready_says("not authorized").await;
    let (status, body) = disco.ready().await;
    assert_eq!(status, 503, "{body}");
    assert!(!body.contains("wrong"), "the password shows: {body}");
    disco.stop().await;
}
