//! Nerve's nodes as Nerve writes them: ephemeral sequential children of
//! `/nerve/services/<service>/services`, plain and path-encoded names,
//! string ports, labels, weight, a re-registration racing the old node;
//! and as `disco registrar` writes them in the DockStack form, its
//! `service` naming the service whatever the directory.

use base64::Engine as _;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use zookeeper_client::{Client, CreateMode};

use crate::server::ZooKeeper;
use crate::support::{Disco, client, create, delete, ok, srv};

/// Creates a Nerve node under `zk_path` as Nerve's reporter does
/// (`<zk_path>/<instance_id>_`, ephemeral sequential); returns its path.
async fn nerve(client: &Client, zk_path: &str, instance: &str, json: &str) -> String {
    let prefix = format!("{zk_path}/{instance}_");
    create(
        client,
        &prefix,
        json.as_bytes(),
        CreateMode::EphemeralSequential,
    )
    .await
}

/// The same with Nerve's `use_path_encoding`: the JSON in the name.
async fn nerve_encoded(client: &Client, zk_path: &str, json: &str) -> String {
    let data = base64::engine::general_purpose::URL_SAFE.encode(json);
    let prefix = format!("{zk_path}/base64_{}_{data}_", data.len());
    create(
        client,
        &prefix,
        json.as_bytes(),
        CreateMode::EphemeralSequential,
    )
    .await
}

#[tokio::test]
async fn nerve_nodes_are_answered_as_synapse_reads_them() {
    let zk = ZooKeeper::start();
    let owner = client(&zk).await;
    // Synapse keeps its own configuration in the service's node: ignored.
    create(
        &owner,
        "/nerve/services/web",
        br#"{"synapse":"config"}"#,
        CreateMode::Persistent,
    )
    .await;
    let web = "/nerve/services/web/services";
    nerve(
        &owner,
        web,
        "i-1",
        r#"{"host":"10.0.0.1","port":8080,"name":"i-1","weight":10,"labels":{"az":"us-east-1a"}}"#,
    )
    .await;
    nerve(
        &owner,
        web,
        "web2.prod.example.com",
        r#"{"host":"10.0.0.2","port":"8081","name":"web2.prod.example.com","haproxy_server_options":"backup"}"#,
    )
    .await;
    nerve_encoded(
        &owner,
        web,
        r#"{"host":"10.0.0.3","port":8082,"name":"i-3","labels":{"az":"us-east-1b"}}"#,
    )
    .await;
    // DockStack's bare layout: <base>/<service>/<instance>_<seq>.
    nerve(
        &owner,
        "/nerve/services/mysql",
        "db1",
        r#"{"host":"10.0.1.1","port":3306}"#,
    )
    .await;

    let disco = Disco::start(&[zk.url("nerve+zk", "/nerve/services")]).await;
    assert_eq!(
        disco.answers("web.disco.internal.", RecordType::A).await,
        ok(&["10.0.0.1", "10.0.0.2", "10.0.0.3"])
    );
    let message = disco.query("web.disco.internal.", RecordType::SRV).await;
    assert_eq!(
        srv(&message),
        [
            "0 10 8080 i-1.web.disco.internal.",
            "0 100 8081 web2-prod-example-com.web.disco.internal.",
            "0 100 8082 i-3.web.disco.internal.",
        ]
    );
    // Labels: a tag per label, metadata in TXT.
    assert_eq!(
        disco
            .answers("az-us-east-1b.web.disco.internal.", RecordType::A)
            .await,
        ok(&["10.0.0.3"])
    );
    assert_eq!(
        disco
            .answers("i-1.web.disco.internal.", RecordType::TXT)
            .await,
        ok(&["az=us-east-1a"])
    );
    assert_eq!(
        disco.answers("mysql.disco.internal.", RecordType::A).await,
        ok(&["10.0.1.1"])
    );

    // Through the watch: a new node, then its owner's session gone.
    let other = client(&zk).await;
    nerve(&other, web, "i-4", r#"{"host":"10.0.0.4","port":8080}"#).await;
    disco
        .until_answers(
            "web.disco.internal.",
            RecordType::A,
            ok(&["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]),
        )
        .await;
    drop(other);
    disco
        .until_answers(
            "i-4.web.disco.internal.",
            RecordType::A,
            Err(ResponseCode::NXDomain),
        )
        .await;
    disco.stop().await;
}

#[tokio::test]
async fn a_re_registration_racing_the_old_node_answers_once() {
    let zk = ZooKeeper::start();
    let web = "/nerve/services/web/services";
    let old_session = client(&zk).await;
    let old = nerve(
        &old_session,
        web,
        "i-1",
        r#"{"host":"10.0.0.1","port":8080}"#,
    )
    .await;
    let disco = Disco::start(&[zk.url("nerve+zk", "/nerve/services")]).await;
    disco
        .until_answers("web.disco.internal.", RecordType::A, ok(&["10.0.0.1"]))
        .await;

    // Nerve restarted with a new session while the old one lingers: two
    // nodes of i-1, one answer, from the newer node.
    let new_session = client(&zk).await;
    nerve(
        &new_session,
        web,
        "i-1",
        r#"{"host":"10.0.0.11","port":8080}"#,
    )
    .await;
    disco
        .until_answers("web.disco.internal.", RecordType::A, ok(&["10.0.0.11"]))
        .await;
    let message = disco.query("web.disco.internal.", RecordType::SRV).await;
    assert_eq!(srv(&message), ["0 100 8080 i-1.web.disco.internal."]);
    // The old node going changes nothing: once a later node is answered,
    // the deletion before it has been applied too.
    delete(&old_session, &old).await;
    nerve(
        &new_session,
        "/nerve/services/marker",
        "m",
        r#"{"host":"10.9.9.9"}"#,
    )
    .await;
    disco
        .until_answers("marker.disco.internal.", RecordType::A, ok(&["10.9.9.9"]))
        .await;
    assert_eq!(
        disco.answers("web.disco.internal.", RecordType::A).await,
        ok(&["10.0.0.11"])
    );
    drop(new_session);
    disco
        .until_answers(
            "web.disco.internal.",
            RecordType::A,
            Err(ResponseCode::NXDomain),
        )
        .await;
    disco.stop().await;
}

#[tokio::test]
async fn a_service_field_names_the_service_whatever_the_directory() {
    let zk = ZooKeeper::start();
    let owner = client(&zk).await;
    // `disco registrar -d zk://…/nerve -s mysql:tcp:mysql:3306:/test`.
    let db1 = nerve(
        &owner,
        "/nerve/test",
        "db1",
        r#"{"host":"10.0.1.1","port":3306,"name":"db1","service":"mysql"}"#,
    )
    .await;
    // Nerve itself, in the same directory: no field, named by the directory.
    nerve(
        &owner,
        "/nerve/test",
        "db2",
        r#"{"host":"10.0.1.2","port":3306,"name":"db2"}"#,
    )
    .await;
    let disco = Disco::start(&[zk.url("nerve+zk", "/nerve")]).await;
    assert_eq!(
        disco.answers("mysql.disco.internal.", RecordType::A).await,
        ok(&["10.0.1.1"])
    );
    let message = disco.query("mysql.disco.internal.", RecordType::SRV).await;
    assert_eq!(srv(&message), ["0 100 3306 db1.mysql.disco.internal."]);
    assert_eq!(
        disco.answers("test.disco.internal.", RecordType::A).await,
        ok(&["10.0.1.2"])
    );

    // Through the watch: the field rewritten moves the instance.
    owner
        .set_data(
            &db1,
            br#"{"host":"10.0.1.1","port":3306,"name":"db1","service":"mariadb"}"#,
            None,
        )
        .await
        .unwrap();
    disco
        .until_answers("mariadb.disco.internal.", RecordType::A, ok(&["10.0.1.1"]))
        .await;
    assert_eq!(
        disco.answers("mysql.disco.internal.", RecordType::A).await,
        Err(ResponseCode::NXDomain)
    );
    disco.stop().await;
}
