//! How a service learns its role: the role file (`primary`, `replica` or
//! `none`, written to a temporary file and renamed over it, so a reader
//! never sees half a word) and the `--on-role-change` hook, run by `sh -c`
//! with `DISCO_ROLE`, `DISCO_SERVICE` and `DISCO_PRIMARY_ADDRESS`, as
//! Patroni's `on_role_change`. Both on every change, including at start.
//!
//! The file is written by the publisher loop itself, at the moment of the
//! change, so that a fenced leader's file says it is no longer primary
//! before anything else happens. Hooks run one at a time, in order, on
//! their own task: every change is told, none is skipped.

use std::path::Path;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Role;

/// One change of role, for the hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleChange {
    /// The new role.
    pub role: Role,
    /// The current primary's address, when known.
    pub primary: Option<String>,
}

/// Writes `role` to `path` atomically: a temporary file beside it,
/// renamed over it.
pub fn write_role_file(path: &Path, role: Role) -> std::io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".{}.tmp", std::process::id()));
    let temporary = std::path::PathBuf::from(temporary);
    std::fs::write(&temporary, format!("{}\n", role.as_str()))?;
    std::fs::rename(&temporary, path)
}

/// Runs `command` for every change `changes` brings, in order, until
/// `shutdown` or the loop is gone.
pub async fn run_hooks(
    command: String,
    service: String,
    mut changes: mpsc::UnboundedReceiver<RoleChange>,
    shutdown: CancellationToken,
) {
    let run = async {
        while let Some(change) = changes.recv().await {
            let status = tokio::process::Command::new("sh")
                .arg("-c")
                .arg(&command)
                .env("DISCO_ROLE", change.role.as_str())
                .env("DISCO_SERVICE", &service)
                .env(
                    "DISCO_PRIMARY_ADDRESS",
                    change.primary.as_deref().unwrap_or(""),
                )
                .stdin(std::process::Stdio::null())
                .status()
                .await;
            match status {
                Ok(status) if status.success() => {
                    tracing::info!(service = %service, role = change.role.as_str(), "--on-role-change ran")
                }
                Ok(status) => {
                    tracing::warn!(service = %service, role = change.role.as_str(), %status, "--on-role-change failed")
                }
                Err(error) => {
                    tracing::warn!(service = %service, %error, "cannot run --on-role-change")
                }
            }
        }
    };
    shutdown.run_until_cancelled(run).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_role_file_holds_one_word_and_no_temporary_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("role");
        write_role_file(&path, Role::Replica).unwrap();
        write_role_file(&path, Role::Primary).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "primary\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
