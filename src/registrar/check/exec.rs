//! `exec:CMD`: `sh -c CMD` exits 0. At the timeout the command's whole
//! process group is killed (a shell's children too), and its output, cut
//! short, goes into the failure reason.

use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;

use super::{Check, CheckFailure, CheckFuture, shorten};

/// Output kept for the log.
const MAX_OUTPUT: usize = 200;

pub(super) struct ExecCheck {
    command: String,
    described: String,
    timeout: Duration,
}

impl ExecCheck {
    pub fn new(command: &str, timeout: Duration) -> Self {
        ExecCheck {
            command: command.to_owned(),
            described: format!("exec {}", shorten(command, 60)),
            timeout,
        }
    }

    async fn execute(&self) -> Result<(), CheckFailure> {
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&self.command)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so that a timeout kills what the shell
            // started as well.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| CheckFailure::Shell(format!("run sh: {e}")))?;
        let pid = child.id();
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        // Both pipes are read at once: a command filling one while the
        // other is read would otherwise stall until the timeout.
        let run = async {
            let (out, err, status) = tokio::join!(
                read_all(stdout.as_mut()),
                read_all(stderr.as_mut()),
                child.wait()
            );
            ([out, err].concat(), status)
        };
        match tokio::time::timeout(self.timeout, run).await {
            Ok((_, Ok(status))) if status.success() => Ok(()),
            Ok((output, Ok(status))) => Err(CheckFailure::Exit {
                status,
                output: shorten(&String::from_utf8_lossy(&output), MAX_OUTPUT),
            }),
            Ok((_, Err(e))) => Err(CheckFailure::Shell(format!("wait for sh: {e}"))),
            Err(_) => {
                if let Some(pid) = pid {
                    let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
                }
                // Reap it, so no zombie stays behind.
                let _ = child.wait().await;
                Err(CheckFailure::Killed(self.timeout))
            }
        }
    }
}

/// Everything a pipe gives until it closes.
async fn read_all(pipe: Option<&mut (impl AsyncReadExt + Unpin)>) -> Vec<u8> {
    let mut output = Vec::new();
    if let Some(pipe) = pipe {
        let _ = pipe.read_to_end(&mut output).await;
    }
    output
}

impl Check for ExecCheck {
    fn describe(&self) -> &str {
        &self.described
    }

    fn run(&self) -> CheckFuture<'_> {
        Box::pin(self.execute())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn exit_status_and_output_decide() {
        let timeout = Duration::from_secs(5);
        assert_eq!(ExecCheck::new("true", timeout).execute().await, Ok(()));
        let failed = ExecCheck::new("echo not ready; exit 3", timeout)
            .execute()
            .await
            .unwrap_err()
            .to_string();
        assert!(
            failed.contains("3") && failed.contains("not ready"),
            "{failed}"
        );
    }

    #[tokio::test]
    async fn a_slow_command_and_its_children_are_killed_at_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("survived");
        let command = format!("(sleep 1; touch {}) & sleep 30", marker.display());
        let started = std::time::Instant::now();
        let failed = ExecCheck::new(&command, Duration::from_millis(200))
            .execute()
            .await
            .unwrap_err();
        assert_eq!(failed, CheckFailure::Killed(Duration::from_millis(200)));
        assert!(started.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!marker.exists(), "the shell's child outlived the timeout");
    }
}
