//! `http://…` and `https://…`: a GET answered 2xx or 3xx, optionally with a
//! body containing a text. Redirects are not followed (a 3xx passes, as in
//! HAProxy and Consul). HTTPS certificates are verified against the system's
//! roots.

use std::sync::OnceLock;
use std::time::Duration;

use reqwest::header::{HOST, HeaderValue};

use super::{Check, CheckFailure, CheckFuture, CheckSpecError, shorten};

/// How much of the body is searched for the expected text: health pages are
/// small, and a check must not read a stream forever.
const MAX_BODY: usize = 64 * 1024;

pub(super) struct HttpCheck {
    client: reqwest::Client,
    timeout: Duration,
    url: String,
    body: Option<String>,
    host: Option<HeaderValue>,
    described: String,
}

impl HttpCheck {
    pub fn new(
        url: &str,
        body: Option<String>,
        host: Option<String>,
        timeout: Duration,
    ) -> Result<Self, CheckSpecError> {
        let client = shared_client()?;
        let host = host
            .map(|h| HeaderValue::from_str(&h).map_err(|_| CheckSpecError::HostHeader(h)))
            .transpose()?;
        let mut described = format!("GET {url}");
        if let Some(host) = &host {
            described.push_str(&format!(" (Host: {})", host.to_str().unwrap_or("?")));
        }
        Ok(HttpCheck {
            client,
            timeout,
            url: url.to_owned(),
            body,
            host,
            described,
        })
    }

    async fn get(&self) -> Result<(), CheckFailure> {
        let mut request = self.client.get(&self.url).timeout(self.timeout);
        if let Some(host) = &self.host {
            request = request.header(HOST, host.clone());
        }
        let mut response = request.send().await.map_err(|e| describe(&e))?;
        let status = response.status();
        if !(status.is_success() || status.is_redirection()) {
            return Err(CheckFailure::Status(status.to_string()));
        }
        let Some(expected) = &self.body else {
            return Ok(());
        };
        let mut body = Vec::new();
        while body.len() < MAX_BODY {
            match response.chunk().await.map_err(|e| describe(&e))? {
                Some(chunk) => body.extend_from_slice(&chunk),
                None => break,
            }
        }
        if String::from_utf8_lossy(&body).contains(expected.as_str()) {
            Ok(())
        } else {
            Err(CheckFailure::Body {
                status: status.to_string(),
                expected: expected.clone(),
                body: shorten(&String::from_utf8_lossy(&body), 80),
            })
        }
    }
}

impl Check for HttpCheck {
    fn describe(&self) -> &str {
        &self.described
    }

    fn run(&self) -> CheckFuture<'_> {
        Box::pin(self.get())
    }
}

/// The error and its causes on one line ("error sending request: … connection refused").
fn describe(error: &reqwest::Error) -> CheckFailure {
    CheckFailure::Request(shorten(&crate::error_text::one_line(error), 200))
}

/// One client for every HTTP check: the system's CA certificates are read
/// once, not once per service. Connections are not kept between checks:
/// each check opens its own, as HAProxy's do, so a check never passes on a
/// connection its service accepted before it stopped listening.
fn shared_client() -> Result<reqwest::Client, CheckSpecError> {
    static CLIENT: OnceLock<Result<reqwest::Client, CheckSpecError>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            install_crypto_provider();
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .pool_max_idle_per_host(0)
                // A health check asks the service itself, never a proxy
                // from the environment.
                .no_proxy()
                .user_agent(concat!("disco-registrar/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| CheckSpecError::HttpClient(e.to_string()))
        })
        .clone()
}

/// reqwest is built without a crypto provider of its own (its default,
/// aws-lc-rs, is a long C build); rustls's ring provider is already built
/// for etcd-client's TLS. Installing twice is harmless.
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A one-connection-at-a-time server answering `status` and `body`,
    /// and reporting each request's head.
    async fn server(
        status: &'static str,
        body: &'static str,
    ) -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/health", listener.local_addr().unwrap());
        let (sender, requests) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut head = vec![0u8; 4096];
                let n = stream.read(&mut head).await.unwrap_or(0);
                let _ = sender.send(String::from_utf8_lossy(&head[..n]).into_owned());
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            }
        });
        (url, requests)
    }

    #[tokio::test]
    async fn the_host_header_and_the_expected_body_are_checked() {
        let (url, mut requests) = server("200 OK", "status: ok").await;
        let timeout = Duration::from_secs(2);
        let check = HttpCheck::new(
            &url,
            Some("ok".into()),
            Some("web.internal".into()),
            timeout,
        )
        .unwrap();
        assert_eq!(check.get().await, Ok(()));
        let head = requests.recv().await.unwrap().to_ascii_lowercase();
        assert!(head.contains("host: web.internal\r\n"), "{head}");
        let wrong_body = HttpCheck::new(&url, Some("ready".into()), None, timeout).unwrap();
        let failed = wrong_body.get().await.unwrap_err().to_string();
        assert!(failed.contains("without \"ready\""), "{failed}");
    }

    #[tokio::test]
    async fn redirects_pass_and_errors_fail() {
        let timeout = Duration::from_secs(2);
        let (redirect, _) = server("302 Found", "").await;
        assert_eq!(
            HttpCheck::new(&redirect, None, None, timeout)
                .unwrap()
                .get()
                .await,
            Ok(())
        );
        let (broken, _) = server("500 Internal Server Error", "").await;
        let failed = HttpCheck::new(&broken, None, None, timeout)
            .unwrap()
            .get()
            .await
            .unwrap_err();
        assert_eq!(
            failed,
            CheckFailure::Status("500 Internal Server Error".into())
        );
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}/", listener.local_addr().unwrap())
        };
        let refused = HttpCheck::new(&closed, None, None, timeout)
            .unwrap()
            .get()
            .await
            .unwrap_err()
            .to_string();
        assert!(refused.to_lowercase().contains("refused"), "{refused}");
    }
}
