//! `disco serve`'s routes: `/health`, `/ready`, `/metrics`, the JSON API
//! under `/v1/` (`api`) and its live stream (`sse`), the web page under
//! `/ui/` (`ui`).

use std::sync::Arc;
use std::time::SystemTime;

use super::{Reply, Router, api, sse, ui};
use crate::catalog::Catalog;
use crate::dns::server::ListenerBoard;
use crate::metrics::Metrics;
use crate::registry::{ResyncCause, SourceStatus, StatusBoard};

/// What `disco serve`'s endpoints report on.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// Query and snapshot metrics.
    pub metrics: Arc<Metrics>,
    /// Registry sources.
    pub status: Arc<StatusBoard>,
    /// The DNS listeners.
    pub listeners: Arc<ListenerBoard>,
    /// What disco holds and the change timeline.
    pub catalog: Arc<Catalog>,
    /// The served domain, for the DNS names the API and page show.
    pub domain: String,
    /// A DNS listen address, for the page's `dig` lines.
    pub dns: Option<std::net::SocketAddr>,
}

impl From<Endpoints> for Router {
    fn from(endpoints: Endpoints) -> Router {
        let Endpoints {
            metrics,
            status,
            listeners,
            catalog,
            domain,
            dns,
        } = endpoints;
        let (for_ready, listeners_for_ready) = (status.clone(), listeners.clone());
        let page = Arc::new(ui::Ui {
            catalog: catalog.clone(),
            status: status.clone(),
            domain: domain.clone(),
            dns,
        });
        let api = Arc::new(api::Api {
            catalog: catalog.clone(),
            status: status.clone(),
            domain,
        });
        let index = page.clone();
        let streams = Arc::new(sse::Streams::default());
        let streams_for_metrics = streams.clone();
        let (services, service, registries, changes) =
            (api.clone(), api.clone(), api.clone(), api.clone());
        Router::new()
            .route("/health", || Reply::text(200, "ok\n"))
            .route("/ready", move || ready(&for_ready, &listeners_for_ready))
            .route("/metrics", move || {
                let mut text = metrics.render(&status.sources());
                listeners.render_metrics(&mut text);
                streams_for_metrics.render_metrics(&mut text);
                Reply::prometheus(text)
            })
            .route_ask("/v1/services", move |ask| services.services(ask))
            .route_prefix("/v1/services/", move |ask| service.service(ask))
            .route("/v1/registries", move || registries.registries())
            .route_ask("/v1/changes", move |ask| changes.changes(ask))
            .route_stream("/v1/changes/stream", move |ask| {
                streams.changes(&catalog, ask)
            })
            .route_ask("/ui/", move |ask| index.index(ask))
            .route("/ui/style.css", ui::style)
            .route("/ui/app.js", ui::script)
            .route_prefix("/ui/services/", move |ask| page.service(ask))
    }
}

/// Ready once every registry has delivered its first listing, while every
/// DNS listener is serving. A stale registry stays ready (disco answers
/// from the last snapshot: stale beats down) and says so in the body; a
/// listener that is not serving (it ended and is being restarted) makes
/// it 503, naming the listener and why.
fn ready(status: &StatusBoard, listeners: &ListenerBoard) -> Reply {
    let sources = status.sources();
    let listeners = listeners.statuses();
    let ready = sources.iter().all(|s| s.synced) && listeners.iter().all(|l| l.serving);
    let listener_details: Vec<serde_json::Value> = listeners
        .iter()
        .map(|l| {
            serde_json::json!({
                "listener": l.name,
                "serving": l.serving,
                "restarts": l.restarts,
                "down_since": l.down_since
                    .map(|since| humantime::format_rfc3339_seconds(since).to_string()),
                "reason": l.reason,
            })
        })
        .collect();
    let details: Vec<serde_json::Value> = sources.iter().map(registry_state).collect();
    let body = serde_json::json!({
        "ready": ready,
        "registries": details,
        "listeners": listener_details,
    });
    Reply::json(if ready { 200 } else { 503 }, &body)
}

/// One registry's state, as `/ready` and `/v1/registries` show it. The
/// name is the URL without credentials (which never go in it anyway).
pub(super) fn registry_state(s: &SourceStatus) -> serde_json::Value {
    let now = SystemTime::now();
    let seconds_since = |at: Option<SystemTime>| {
        at.and_then(|at| now.duration_since(at).ok())
            .map(|d| d.as_secs_f64())
    };
    let stale_since = s
        .stale_since
        .map(|since| humantime::format_rfc3339_seconds(since).to_string());
    serde_json::json!({
        "registry": s.name,
        "synced": s.synced,
        "stale": s.stale_since.is_some(),
        "stale_since": stale_since,
        "stale_seconds": seconds_since(s.stale_since),
        "stale_reason": s.stale_reason,
        "skipped": s.skipped,
        "position": s.position,
        "seconds_since_event": seconds_since(s.last_event),
        "seconds_since_proof": seconds_since(s.last_proof),
        "lag": s.lag,
        "resyncs": ResyncCause::ALL
            .iter()
            .map(|&cause| (cause.as_str().to_owned(), s.resyncs(cause).into()))
            .collect::<serde_json::Map<String, serde_json::Value>>(),
    })
}
