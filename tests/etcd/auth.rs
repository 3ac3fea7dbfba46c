//! etcd users: the password comes from the environment or a file, never
//! from argv; a wrong one leaves the registry unsynced and says why.

use etcd_client::{Client, ConnectOptions};

use crate::cluster::Etcd;
use crate::support::{Disco, assert_lists_then_watches, register};

/// Turns on authentication with a `root` user whose password is `password`,
/// and returns a client logged in as root.
async fn enable_auth(etcd: &Etcd, password: &str) -> Client {
    let mut client = etcd.client().await;
    client.user_add("root", password, None).await.unwrap();
    client.user_grant_role("root", "root").await.unwrap();
    client.auth_enable().await.unwrap();
    Client::connect(
        etcd.endpoints(),
        Some(ConnectOptions::new().with_user("root", password)),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_user_and_a_password_file_log_in() {
    let etcd = Etcd::start();
    let mut client = enable_auth(&etcd, "s3cret").await;
    register(&mut client, "web", "web-1", "10.0.0.5", 8080).await;
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, "s3cret\n").unwrap();

    let disco = Disco::start_with(&[etcd.url("etcd", "/disco")], &[], |args| {
        args.etcd.etcd_user = Some("root".into());
        args.etcd.etcd_password_file = Some(password_file);
    })
    .await;
    assert_lists_then_watches(&disco, &mut client).await;
    disco.stop().await;
}

#[tokio::test]
async fn a_wrong_password_leaves_the_registry_unsynced_and_says_why() {
    let etcd = Etcd::start();
    enable_auth(&etcd, "s3cret").await;
    let disco = Disco::start_with(&[etcd.url("etcd", "/disco")], &[], |args| {
        args.etcd.etcd_user = Some("root".into());
        args.etcd.etcd_password = Some(disco::secret::Secret::new("wrong"));
    })
    .await;
    disco.until_ready_says("\"stale\":true").await;
    let (status, body) = disco.ready().await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("authentication failed"), "{body}");
    assert!(!body.contains("wrong"), "the password leaked: {body}");
    disco.stop().await;
}
