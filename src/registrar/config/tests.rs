//! Merging and checking the registrar's settings.

use super::*;
use crate::registrar::check::CheckSpec;
use crate::registrar::health::Thresholds;
use crate::store::publish::Format;

fn auto() -> Result<IpAddr, NoAutoAddress> {
    Ok("10.0.0.5".parse().unwrap())
}

fn flags(extra: &[&str]) -> RegistrarArgs {
    use clap::Parser;
    let mut argv = vec![
        "disco",
        "registrar",
        "--registry",
        "etcd://127.0.0.1:2379/disco",
    ];
    argv.extend(extra);
    match crate::cli::Cli::try_parse_from(argv).unwrap().command {
        crate::cli::Command::Registrar(args) => args,
        _ => unreachable!(),
    }
}

#[test]
fn flags_make_one_service_with_the_defaults() {
    let config = RegistrarConfig::from_args(
        flags(&["--service", "Web", "--port", "8080", "--tag", "v2"]),
        &auto,
    )
    .unwrap();
    let service = &config.services[0];
    assert_eq!(service.registration.service.as_str(), "web");
    assert_eq!(
        service.registration.address,
        "10.0.0.5".parse::<IpAddr>().unwrap()
    );
    assert!(service.registration.id.as_str().ends_with("-8080"));
    assert_eq!(
        service.checks,
        [CheckSpec::Tcp {
            target: "10.0.0.5:8080".into()
        }]
    );
    assert_eq!(
        (service.interval, service.timeout),
        (DEFAULT_INTERVAL, DEFAULT_TIMEOUT)
    );
    assert_eq!(service.thresholds, Thresholds { rise: 2, fall: 3 });
    assert_eq!(service.target.ttl, DEFAULT_TTL);
    assert_eq!(service.target.registry.path, "/disco");
    assert_eq!(config.drain, Duration::ZERO);
}

#[test]
fn a_service_in_the_file_wins_over_flags_which_win_over_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.toml");
    std::fs::write(
        &path,
        r#"
[registrar]
interval = "5s"
rise = 4
fall = 4
[[registrar.service]]
service = "a"
port = 1
address = "fd00::1"
[[registrar.service]]
service = "b"
port = 2
address = "10.0.0.2"
fall = 7
checks = [{ url = "http://10.0.0.2:2/h", body = "ok", host = "b.internal" }]
"#,
    )
    .unwrap();
    let path_text = path.to_str().unwrap();
    let config =
        RegistrarConfig::from_args(flags(&["--config", path_text, "--rise", "3"]), &auto).unwrap();
    let [a, b] = &config.services[..] else {
        panic!("two services")
    };
    assert_eq!(a.interval, Duration::from_secs(5));
    assert_eq!(a.thresholds, Thresholds { rise: 3, fall: 4 });
    assert_eq!(b.thresholds, Thresholds { rise: 3, fall: 7 });
    assert_eq!(
        a.checks,
        [CheckSpec::Tcp {
            target: "[fd00::1]:1".into()
        }]
    );
    assert_eq!(
        b.checks,
        [CheckSpec::Http {
            url: "http://10.0.0.2:2/h".into(),
            body: Some("ok".into()),
            host: Some("b.internal".into())
        }]
    );
}

#[test]
fn the_scheme_of_a_reader_sets_the_format() {
    let mut args = flags(&["--service", "web", "--port", "80"]);
    args.registry = Some("skydns+etcd://127.0.0.1:2379".into());
    let config = RegistrarConfig::from_args(args, &auto).unwrap();
    let target = &config.services[0].target;
    assert_eq!(
        (target.format, target.registry.scheme.as_str()),
        (Format::SkyDns, "etcd")
    );
    assert_eq!(target.registry.path, "/skydns");
}

#[test]
fn a_bare_url_takes_the_root_disco_serve_reads() {
    for (url, format, root) in [
        ("etcd://127.0.0.1:2379", Format::Native, "/disco"),
        ("skydns+etcd://127.0.0.1:2379", Format::SkyDns, "/skydns"),
        ("zk://127.0.0.1:2181", Format::Native, "/disco"),
        (
            "nerve+zk://127.0.0.1:2181",
            Format::Nerve,
            "/nerve/services",
        ),
    ] {
        let mut args = flags(&["--service", "web", "--port", "80"]);
        args.registry = Some(url.into());
        let config = RegistrarConfig::from_args(args, &auto).unwrap();
        let target = &config.services[0].target;
        assert_eq!(
            (target.format, target.registry.path.as_str()),
            (format, root),
            "{url}"
        );
    }
}

#[test]
fn without_an_address_auto_cannot_find_it_says_what_to_do() {
    let none = || {
        Err(NoAutoAddress {
            host: "web-host".to_owned(),
        })
    };
    let error = RegistrarConfig::from_args(flags(&["--service", "web", "--port", "80"]), &none)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("--address") && error.contains("no default route"),
        "{error}"
    );
}

#[test]
fn two_containers_of_one_service_on_one_port_are_two_dockstack_services() {
    // Their instance ids come from the host ports Docker publishes, known
    // only at start: nothing here may call them the same instance.
    let config = RegistrarConfig::from_args(
        flags(&[
            "-s",
            "mysql:tcp:mysql-a:3306:/test",
            "-s",
            "mysql:tcp:mysql-b:3306:/test",
        ]),
        &auto,
    )
    .unwrap();
    assert_eq!(config.services.len(), 2);
    assert!(config.services.iter().all(|s| s.dockstack.is_some()));
    let fallback = &config.services[0].registration;
    assert_eq!(fallback.id.as_str(), "127-0-0-1-3306");
}

#[test]
fn elect_takes_an_optional_tag_and_the_role_flags_need_it() {
    let base = ["--service", "db", "--port", "6379", "--instance", "db-1"];
    let with = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend(extra);
        RegistrarConfig::from_args(flags(&args), &auto)
    };
    let config = with(&["--elect", "--role-file", "/run/db.role"]).unwrap();
    let elect = config.services[0].elect.clone().unwrap();
    assert_eq!(elect.tag, "primary");
    assert_eq!(
        elect.role_file.as_deref(),
        Some(std::path::Path::new("/run/db.role"))
    );
    let config = with(&["--elect", "leader", "--on-role-change", "echo $DISCO_ROLE"]).unwrap();
    assert_eq!(config.services[0].elect.as_ref().unwrap().tag, "leader");
    assert_eq!(with(&[]).unwrap().services[0].elect, None);
    for (extra, needle) in [
        (&["--role-file", "/run/db.role"][..], "--role-file"),
        (&["--on-role-change", "true"], "--on-role-change"),
        (&["--elect", "replica"], "--elect"),
        (&["--elect", "db-1"], "--elect"),
        (&["--elect", "two words"], "--elect"),
        (&["--elect", "--tag", "primary"], "--tag"),
        (&["--elect", "--format", "skydns"], "--elect"),
    ] {
        let error = with(extra).unwrap_err().to_string();
        assert!(error.contains(needle), "{extra:?}: {error}");
    }
}

#[test]
fn elect_in_the_config_file_is_true_or_a_tag() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.toml");
    std::fs::write(
        &path,
        "[registrar]\nregistry = \"zk://127.0.0.1:2181/disco\"\n\
         [[registrar.service]]\nservice = \"db\"\nport = 6379\nelect = true\nrole-file = \"/run/db.role\"\n\
         [[registrar.service]]\nservice = \"cache\"\nport = 6380\nelect = \"leader\"\n",
    )
    .unwrap();
    let config =
        RegistrarConfig::from_args(flags(&["--config", path.to_str().unwrap()]), &auto).unwrap();
    let tags: Vec<_> = config
        .services
        .iter()
        .map(|s| s.elect.as_ref().map(|e| e.tag.as_str()))
        .collect();
    assert_eq!(tags, [Some("primary"), Some("leader")]);
}

#[test]
fn docker_takes_its_flags_and_no_service() {
    let config = RegistrarConfig::from_args(
        flags(&[
            "--docker",
            "--internal",
            "--network",
            "back",
            "--resync",
            "5s",
        ]),
        &auto,
    )
    .unwrap();
    assert!(config.services.is_empty());
    let docker = config.docker.unwrap();
    assert_eq!(docker.resync, Duration::from_secs(5));
    assert!(docker.options.internal && !docker.options.all);
    assert_eq!(docker.options.network.as_deref(), Some("back"));
    assert_eq!(docker.options.address, auto().unwrap());
    let config = RegistrarConfig::from_args(flags(&["--docker"]), &auto).unwrap();
    assert_eq!(config.docker.unwrap().resync, DEFAULT_RESYNC);
}

#[test]
fn docker_flags_without_docker_or_beside_a_service_are_refused() {
    let refused = |extra: &[&str]| {
        RegistrarConfig::from_args(flags(extra), &auto)
            .unwrap_err()
            .to_string()
    };
    assert!(refused(&["--all"]).contains("--all"));
    assert!(refused(&["--swarm"]).contains("--swarm"));
    assert!(refused(&["--docker", "--service", "web", "--port", "80"]).contains("--docker"));
    assert!(refused(&["--docker", "--resync", "soon"]).contains("--resync"));
    assert!(refused(&["--docker", "--resync", "500ms"]).contains("at least 1s"));
    // Roles come from each container's disco.elect label.
    assert!(refused(&["--docker", "--elect"]).contains("disco.elect"));
    assert!(refused(&["--docker", "--role-file", "/run/x"]).contains("--role-file"));
}
