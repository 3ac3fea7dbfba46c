//! How the stores are reached: etcd's TLS files and both stores'
//! credentials, read and checked at startup ([`EtcdSettings`],
//! [`ZkSettings`]), the same for `disco serve` and `disco registrar`. The
//! users and passwords come from the environment, never from a flag.

use std::path::Path;

use super::error::{ConfigError, invalid};
use super::registry_url::RegistryUrl;
use crate::cli::{EtcdArgs, ZkArgs};
use crate::secret::Secret;

/// Where the etcd user is read from (never a flag: `ps` shows argv).
pub const ETCD_USER_VAR: &str = "DISCO_ETCD_USER";
/// Where the etcd password is read from, unless `--etcd-password-file`.
pub const ETCD_PASSWORD_VAR: &str = "DISCO_ETCD_PASSWORD";

/// Where the ZooKeeper user is read from.
pub const ZK_USER_VAR: &str = "DISCO_ZK_USER";
/// Where the ZooKeeper password is read from, unless `--zk-password-file`.
pub const ZK_PASSWORD_VAR: &str = "DISCO_ZK_PASSWORD";

/// How every etcd registry is reached: TLS material and credentials, read
/// and checked at startup so a missing file exits 64 instead of failing at
/// the first connection.
#[derive(Clone, Default)]
pub struct EtcdSettings {
    /// PEM certificate(s) of the CA that signed the servers' certificates.
    pub ca_pem: Option<Vec<u8>>,
    /// PEM client certificate and its PEM private key.
    pub client_identity: Option<(Vec<u8>, Vec<u8>)>,
    /// User name and password.
    pub credentials: Option<(String, Secret)>,
}

/// Says what is configured, never the key or the password.
impl std::fmt::Debug for EtcdSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdSettings")
            .field("ca", &self.ca_pem.is_some())
            .field("client_identity", &self.client_identity.is_some())
            .field("user", &self.credentials.as_ref().map(|(user, _)| user))
            .finish()
    }
}

impl EtcdSettings {
    /// Reads and checks the TLS files and credentials for the etcd
    /// registries, the same for `disco serve` and `disco registrar`: the
    /// files the flags name, the user and password from `args`, else from
    /// the environment.
    pub fn from_args(args: EtcdArgs, registries: &[RegistryUrl]) -> Result<Self, ConfigError> {
        let any_etcd = registries.iter().any(RegistryUrl::is_etcd);
        let tls_registry = registries.iter().find(|r| r.is_tls());
        let tls_flags = [
            ("etcd-ca", &args.etcd_ca),
            ("etcd-cert", &args.etcd_cert),
            ("etcd-key", &args.etcd_key),
        ];
        if tls_registry.is_none()
            && let Some((flag, Some(path))) = tls_flags.iter().find(|(_, p)| p.is_some())
        {
            return Err(invalid(
                flag,
                &path.display().to_string(),
                "only etcds:// and skydns+etcds:// registries use it, and none is configured \
                 (for TLS, write etcds:// instead of etcd://)",
            ));
        }
        let ca_pem = args
            .etcd_ca
            .as_deref()
            .map(|p| read_pem("etcd-ca", p, Pem::Certificates))
            .transpose()?;
        if let Some(registry) = tls_registry
            && ca_pem.is_none()
        {
            return Err(invalid(
                "registry",
                &registry.to_string(),
                "a TLS registry needs --etcd-ca (the CA that signed the etcd servers' certificates)",
            ));
        }
        let client_identity = match (&args.etcd_cert, &args.etcd_key) {
            (Some(cert), Some(key)) => Some((
                read_pem("etcd-cert", cert, Pem::Certificates)?,
                read_pem("etcd-key", key, Pem::PrivateKey)?,
            )),
            (Some(cert), None) => {
                return Err(invalid(
                    "etcd-cert",
                    &cert.display().to_string(),
                    "needs --etcd-key, the certificate's private key",
                ));
            }
            (None, Some(key)) => {
                return Err(invalid(
                    "etcd-key",
                    &key.display().to_string(),
                    "needs --etcd-cert, the certificate it is the key of",
                ));
            }
            (None, None) => None,
        };
        let credentials = ETCD_CREDENTIALS.read(
            args.etcd_user,
            args.etcd_password,
            args.etcd_password_file.as_deref(),
        )?;
        if credentials.is_some() && !any_etcd {
            return Err(ConfigError::Environment {
                variable: ETCD_USER_VAR,
                reason: "etcd credentials are set but no etcd registry is configured".to_owned(),
            });
        }
        Ok(EtcdSettings {
            ca_pem,
            client_identity,
            credentials,
        })
    }
}

/// How every ZooKeeper registry is reached: digest credentials, read at
/// startup.
#[derive(Clone, Default)]
pub struct ZkSettings {
    /// User name and password for the `digest` scheme.
    pub credentials: Option<(String, Secret)>,
}

/// Says whether credentials are set, never the password.
impl std::fmt::Debug for ZkSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZkSettings")
            .field("user", &self.credentials.as_ref().map(|(user, _)| user))
            .finish()
    }
}

impl ZkSettings {
    /// Reads the digest credentials for the ZooKeeper registries, the same
    /// for `disco serve` and `disco registrar`: the user and password from
    /// `args`, else from the environment, or the password from
    /// `--zk-password-file`.
    pub fn from_args(args: ZkArgs, registries: &[RegistryUrl]) -> Result<Self, ConfigError> {
        let credentials = ZK_CREDENTIALS.read(
            args.zk_user,
            args.zk_password,
            args.zk_password_file.as_deref(),
        )?;
        if credentials.is_some() && !registries.iter().any(RegistryUrl::is_zookeeper) {
            return Err(ConfigError::Environment {
                variable: ZK_USER_VAR,
                reason:
                    "ZooKeeper credentials are set but no zk:// or nerve+zk:// registry is configured"
                        .to_owned(),
            });
        }
        Ok(ZkSettings { credentials })
    }
}

/// Where one store's credentials are read from.
struct Credentials {
    user_var: &'static str,
    password_var: &'static str,
    password_file_flag: &'static str,
}

/// etcd's user, password and password file.
const ETCD_CREDENTIALS: Credentials = Credentials {
    user_var: ETCD_USER_VAR,
    password_var: ETCD_PASSWORD_VAR,
    password_file_flag: "etcd-password-file",
};

/// ZooKeeper's user, password and password file.
const ZK_CREDENTIALS: Credentials = Credentials {
    user_var: ZK_USER_VAR,
    password_var: ZK_PASSWORD_VAR,
    password_file_flag: "zk-password-file",
};

impl Credentials {
    /// The user and password given (tests set them), else from the
    /// environment, or the password from a password file: both or
    /// neither, the password from one place only.
    fn read(
        &self,
        user: Option<String>,
        password: Option<Secret>,
        password_file: Option<&Path>,
    ) -> Result<Option<(String, Secret)>, ConfigError> {
        let user = user.or_else(|| env_value(self.user_var));
        let password = password.or_else(|| env_value(self.password_var).map(Secret::new));
        let password = match (password, password_file) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Environment {
                    variable: self.password_var,
                    reason: format!("set it or --{}, not both", self.password_file_flag),
                });
            }
            (Some(password), None) => Some(password),
            (None, Some(path)) => {
                let bytes = read_flag_file(self.password_file_flag, path)?;
                let text = String::from_utf8(bytes).map_err(|_| {
                    invalid(
                        self.password_file_flag,
                        &path.display().to_string(),
                        "the password is not UTF-8",
                    )
                })?;
                // Editors and `echo` end the file with a newline; it is not part
                // of the password.
                Some(Secret::new(text.trim_end_matches(['\n', '\r'])))
            }
            (None, None) => None,
        };
        match (user, password) {
            (Some(user), Some(password)) => Ok(Some((user, password))),
            (Some(_), None) => Err(ConfigError::Environment {
                variable: self.user_var,
                reason: format!(
                    "a user needs a password: set {} or --{}",
                    self.password_var, self.password_file_flag
                ),
            }),
            (None, Some(_)) => Err(ConfigError::Environment {
                variable: self.user_var,
                reason: "a password is set but no user; set the user here".to_owned(),
            }),
            (None, None) => Ok(None),
        }
    }
}

/// A variable's value; empty counts as unset.
fn env_value(variable: &str) -> Option<String> {
    std::env::var(variable).ok().filter(|v| !v.is_empty())
}

/// Reads the files a flag names; the error names the flag and the file.
fn read_flag_file(flag: &'static str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    let shown = path.display().to_string();
    let bytes =
        std::fs::read(path).map_err(|e| invalid(flag, &shown, format!("cannot read it: {e}")))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(invalid(flag, &shown, "the file is empty"));
    }
    Ok(bytes)
}

/// What a PEM file must hold.
#[derive(Clone, Copy)]
pub(super) enum Pem {
    Certificates,
    PrivateKey,
}

/// Reads a PEM file a flag names and checks that it holds `kind`.
pub(super) fn read_pem(flag: &'static str, path: &Path, kind: Pem) -> Result<Vec<u8>, ConfigError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let bytes = read_flag_file(flag, path)?;
    let shown = path.display().to_string();
    match kind {
        Pem::Certificates => {
            let mut count = 0;
            for certificate in CertificateDer::pem_slice_iter(&bytes) {
                certificate
                    .map_err(|e| invalid(flag, &shown, format!("not a PEM certificate: {e}")))?;
                count += 1;
            }
            if count == 0 {
                return Err(invalid(
                    flag,
                    &shown,
                    "expected a PEM file holding a certificate (-----BEGIN CERTIFICATE-----)",
                ));
            }
        }
        Pem::PrivateKey => {
            PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
                invalid(
                    flag,
                    &shown,
                    format!("expected a PEM private key (-----BEGIN PRIVATE KEY-----): {e}"),
                )
            })?;
        }
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::ServeArgs;

    #[test]
    fn etcd_credentials_never_show_in_debug_output() {
        let settings = EtcdSettings {
            ca_pem: Some(b"-----BEGIN CERTIFICATE-----".to_vec()),
            client_identity: Some((b"cert".to_vec(), b"very-private-key".to_vec())),
            credentials: Some(("root".to_owned(), Secret::new("hunter2"))),
        };
        let shown = format!("{settings:?}");
        assert!(shown.contains("root"), "{shown}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("very-private-key"),
            "{shown}"
        );
        let args = ServeArgs {
            etcd: EtcdArgs {
                etcd_password: Some(Secret::new("hunter2")),
                ..EtcdArgs::default()
            },
            ..ServeArgs::default()
        };
        assert!(!format!("{args:?}").contains("hunter2"));
    }

    #[test]
    fn a_password_file_loses_its_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret\n").unwrap();
        let registries = [RegistryUrl::parse("etcd://127.0.0.1:2379/disco").unwrap()];
        let etcd = EtcdSettings::from_args(
            EtcdArgs {
                etcd_user: Some("root".into()),
                etcd_password_file: Some(file),
                ..EtcdArgs::default()
            },
            &registries,
        )
        .unwrap();
        let (user, password) = etcd.credentials.unwrap();
        assert_eq!((user.as_str(), password.expose()), ("root", "s3cret"));
    }
}
