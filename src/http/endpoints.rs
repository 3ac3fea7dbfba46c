//! `disco serve`'s routes: `/health`, `/ready` (`ready`), `/metrics`, the
//! JSON API under `/v1/` (`api`) and its live stream (`sse`), the web page
//! under `/ui/` (`ui`). Only the table: each answer is built elsewhere.

use std::sync::Arc;

use super::ready::ready;
use super::{Reply, Router, api, sse, ui};
use crate::catalog::Catalog;
use crate::dns::server::ListenerBoard;
use crate::metrics::Metrics;
use crate::registry::StatusBoard;

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
