//! docker/Dockerfile: the image runs as an ordinary user, still binds port
//! 53, turns healthy, and forwards other names to Docker's resolver.

use std::time::Duration;

use crate::support::{
    Scope, TOOLS_IMAGE, address_on, docker, eventually, health, images, try_docker,
};

#[test]
fn the_image_runs_as_non_root_binds_53_and_turns_healthy() {
    let images = images();
    let scope = Scope::open("image");
    let network = scope.network("disco-test-image", "172.31.60.0/24");
    let disco = scope.run(&[
        "--name",
        "disco-test-image-disco",
        "--network",
        &network,
        &images.disco,
    ]);

    eventually(
        "disco's HEALTHCHECK reports healthy",
        Duration::from_secs(60),
        || match health(&disco).as_str() {
            "healthy" => Ok(()),
            other => Err(other.to_owned()),
        },
    );
    assert_eq!(
        docker(&["inspect", "--format", "{{.Config.User}}", &disco]),
        "disco"
    );
    let status = docker(&["exec", &disco, "cat", "/proc/1/status"]);
    let uids = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uids.split_whitespace().skip(1).all(|uid| uid != "0"),
        "disco runs as root: {uids}"
    );

    // `dig +short NAME` from another container on the network, at disco.
    let dig = |name: &str| {
        let label = scope.label();
        docker(&[
            "run",
            "--rm",
            "--label",
            &label,
            "--network",
            &network,
            TOOLS_IMAGE,
            "dig",
            "+short",
            "+time=2",
            "@disco-test-image-disco",
            name,
            "A",
        ])
    };

    // Port 53, bound by that user through the file capability, answers the
    // example zone the image carries.
    let answer = dig("docs.disco.internal");
    let mut addresses: Vec<&str> = answer.lines().collect();
    addresses.sort();
    assert_eq!(
        addresses,
        ["192.0.2.10", "192.0.2.11"],
        "dig answered {answer:?}"
    );

    // A name outside disco's zones goes to the container's resolver, Docker's
    // embedded 127.0.0.11, which knows the containers on the network.
    let peer = scope.run(&[
        "--name",
        "disco-test-image-peer",
        "--network",
        &network,
        TOOLS_IMAGE,
        "sleep",
        "300",
    ]);
    assert_eq!(
        dig("disco-test-image-peer"),
        address_on(&peer, &network),
        "disco did not forward to Docker's resolver"
    );

    // The same image runs the registrar.
    let help = try_docker(&[
        "run",
        "--rm",
        "--label",
        &scope.label(),
        &images.disco,
        "registrar",
        "--help",
    ]);
    assert!(
        help.is_ok_and(|h| h.contains("--registry")),
        "the image has no `disco registrar`"
    );
}
