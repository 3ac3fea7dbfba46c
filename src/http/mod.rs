//! The HTTP listener: `/health`, `/ready`, `/metrics`, the read-only JSON
//! API and the web page of `disco serve`, and the registrar's own. Read-only:
//! nothing here writes anything.
//!
//! # Layout
//!
//! - [`reply`](Reply): what a handler is asked ([`Ask`]) and answers
//!   ([`Reply`]).
//! - [`router`](Router): paths to handlers, and the answers no handler
//!   gives (404, 405, 413).
//! - `server`: [`serve`], hyper's HTTP/1.1 server with the request limits
//!   and the graceful end; it knows no route.
//! - `endpoints`: `disco serve`'s routes ([`Endpoints`]), wiring the rest:
//!   `ready` (the `/ready` policy and each registry's state), `api` (the
//!   JSON API under `/v1/`), `sse` (its live stream), [`ui`] (the web page,
//!   whose document and stylesheet the registrar's page shares).
//!
//! `disco registrar` builds its own [`Router`] (`crate::registrar::endpoints`).

mod api;
mod endpoints;
mod ready;
mod reply;
mod router;
mod server;
mod sse;
pub mod ui;

pub use endpoints::Endpoints;
pub use reply::{Ask, PROMETHEUS_TEXT, Reply};
pub use router::Router;
pub use server::{MAX_REQUEST_BODY, MAX_REQUEST_HEAD, REQUEST_TIMEOUT, serve};
pub use sse::EventStream;
