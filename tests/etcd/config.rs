//! The etcd flags through the real binary: a bad TLS or credential setting
//! exits 64 before anything starts, naming the flag or variable.

use std::process::{Command, Stdio};

fn serve(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let zones = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_disco"));
    command
        .arg("serve")
        .arg("--zones-dir")
        .arg(zones.path())
        .args(["--listen", "127.0.0.1:0", "--http-listen", "off"])
        .args(args)
        .env_remove("DISCO_ETCD_USER")
        .env_remove("DISCO_ETCD_PASSWORD")
        .env_remove("DISCO_ETCD_PASSWORD_FILE")
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    let output = command.output().expect("disco runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Flags, environment, and what stderr must name.
type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a [&'a str]);

#[test]
fn bad_etcd_settings_exit_64_naming_what_is_wrong() {
    let certs = crate::certs::Certs::new();
    let ca = certs.ca.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let not_pem = not_pem.to_str().unwrap();
    let tls = "etcds://127.0.0.1:2379/disco";
    let plain = "etcd://127.0.0.1:2379/disco";
    let cases: &[Case] = &[
        (&["--registry", tls], &[], &["--registry", "--etcd-ca"]),
        (
            &["--registry", tls, "--etcd-ca", "/no/such/ca.pem"],
            &[],
            &["--etcd-ca", "/no/such/ca.pem", "cannot read"],
        ),
        (
            &["--registry", tls, "--etcd-ca", not_pem],
            &[],
            &["--etcd-ca", "certificate"],
        ),
        (
            &["--registry", plain, "--etcd-ca", not_pem],
            &[],
            &["--etcd-ca", "etcds://"],
        ),
        (
            &["--registry", plain],
            &[("DISCO_ETCD_CA", not_pem)],
            &["--etcd-ca", "etcds://"],
        ),
        (
            &["--registry", tls, "--etcd-ca", ca, "--etcd-cert", not_pem],
            &[],
            &["--etcd-cert", "--etcd-key"],
        ),
        (
            &["--registry", plain],
            &[("DISCO_ETCD_USER", "root")],
            &["DISCO_ETCD_USER", "DISCO_ETCD_PASSWORD"],
        ),
        (
            &["--registry", plain],
            &[("DISCO_ETCD_PASSWORD", "pw")],
            &["DISCO_ETCD_USER"],
        ),
        (
            &["--registry", plain, "--etcd-password-file", "/no/such/file"],
            &[("DISCO_ETCD_USER", "root")],
            &["--etcd-password-file", "/no/such/file"],
        ),
        (
            &[
                "--registry",
                tls,
                "--etcd-ca",
                ca,
                "--etcd-cert",
                ca,
                "--etcd-key",
                ca,
            ],
            &[],
            &["--etcd-key", "private key"],
        ),
    ];
    for (args, env, needles) in cases {
        let (code, stderr) = serve(args, env);
        assert_eq!(code, Some(64), "{args:?} {env:?}: {stderr}");
        for needle in *needles {
            assert!(
                stderr.contains(needle),
                "{args:?} {env:?}: stderr does not name {needle:?}: {stderr}"
            );
        }
        assert!(!stderr.contains("pw\""), "a password leaked: {stderr}");
    }
}

#[test]
fn the_help_lists_the_etcd_flags_but_no_password_flag() {
    let output = Command::new(env!("CARGO_BIN_EXE_disco"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--etcd-ca",
        "--etcd-cert",
        "--etcd-key",
        "--etcd-password-file",
        "DISCO_ETCD_CA",
    ] {
        assert!(help.contains(flag), "the help lacks {flag}:\n{help}");
    }
    assert!(!help.contains("--etcd-password "), "{help}");
    assert!(!help.contains("--etcd-user"), "{help}");
}
