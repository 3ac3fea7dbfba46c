//! `disco serve`'s `/ready` policy, and each registry's state as `/ready`
//! and `/v1/registries` show it.

use std::time::SystemTime;

use super::Reply;
use crate::dns::server::ListenerBoard;
use crate::registry::{ResyncCause, SourceStatus, StatusBoard};

/// Ready once every registry has delivered its first listing, while every
/// DNS listener is serving. A stale registry stays ready (disco answers
/// from the last snapshot: stale beats down) and says so in the body; a
/// listener that is not serving (it ended and is being restarted) makes
/// it 503, naming the listener and why.
pub(super) fn ready(status: &StatusBoard, listeners: &ListenerBoard) -> Reply {
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
