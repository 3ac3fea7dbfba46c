//! `tcp`: the service accepts a TCP connection.

use std::time::Duration;

use super::{Check, CheckFailure, CheckFuture};

/// Connects to `host:port` and closes the connection at once.
pub(super) struct TcpCheck {
    target: String,
    described: String,
    timeout: Duration,
}

impl TcpCheck {
    pub fn new(target: &str, timeout: Duration) -> Self {
        TcpCheck {
            target: target.to_owned(),
            described: format!("tcp {target}"),
            timeout,
        }
    }
}

impl Check for TcpCheck {
    fn describe(&self) -> &str {
        &self.described
    }

    fn run(&self) -> CheckFuture<'_> {
        Box::pin(async move {
            match tokio::time::timeout(self.timeout, tokio::net::TcpStream::connect(&self.target))
                .await
            {
                Ok(Ok(_stream)) => Ok(()),
                Ok(Err(e)) => Err(CheckFailure::Connect(e.to_string())),
                Err(_) => Err(CheckFailure::NoConnection(self.timeout)),
            }
        })
    }
}
