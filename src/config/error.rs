//! What can be wrong with a configuration: [`ConfigError`]. Each says what
//! failed, on what input (the flag or variable as the user wrote it), and
//! what is expected.

use std::path::PathBuf;

use crate::dns::ZoneFileError;

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A flag (or its env variable, or config key) has a bad value.
    #[error("invalid --{flag} {value:?}: {reason}")]
    Invalid {
        /// The flag's name.
        flag: &'static str,
        /// The value given.
        value: String,
        /// What is wrong, and what is expected.
        reason: String,
    },
    /// The config file cannot be read or parsed.
    #[error("config file {path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A zone file cannot be used.
    #[error(transparent)]
    Zone(#[from] ZoneFileError),
    /// A setting read only from the environment (a credential) is bad.
    #[error("invalid {variable}: {reason}")]
    Environment {
        /// The variable's name.
        variable: &'static str,
        /// What is wrong, and what to do.
        reason: String,
    },
}

/// `value`, given to `--flag`, is bad because of `reason`.
pub(super) fn invalid(flag: &'static str, value: &str, reason: impl ToString) -> ConfigError {
    ConfigError::Invalid {
        flag,
        value: value.to_owned(),
        reason: reason.to_string(),
    }
}
