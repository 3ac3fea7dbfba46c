//! The registrar's `/health`, `/ready` and `/metrics`, on the same HTTP
//! server and conventions as `disco serve`'s ([`crate::http`]).
//!
//! - `/health`: 200 while the process runs (for the image's HEALTHCHECK).
//! - `/ready`: 200 when every service is published, else 503; the JSON
//!   body says, per service, whether it is healthy, in maintenance and
//!   published.
//! - `/metrics`: check results and run times, health, publication, store
//!   errors, in the Prometheus text format.
//! - `/ui/`: the same for people (`page`).

use std::fmt::Write;
use std::sync::Arc;

use crate::http::{Reply, Router};
use crate::prometheus::label_value;

use super::role::Role;
use super::status::ServiceStatus;

/// The routes for `services`.
pub fn router(services: Arc<[Arc<ServiceStatus>]>) -> Router {
    let for_ready = services.clone();
    Router::new()
        .route("/health", || Reply::text(200, "ok\n"))
        .route("/ready", move || ready(&for_ready))
        .route("/ui/style.css", crate::http::ui::style)
        .route("/ui/", {
            let services = services.clone();
            move || super::page::page(&services)
        })
        .route("/metrics", move || Reply::prometheus(render(&services)))
}

fn ready(services: &[Arc<ServiceStatus>]) -> Reply {
    let all = services.iter().all(|s| s.published());
    let details: Vec<serde_json::Value> = services
        .iter()
        .map(|s| {
            serde_json::json!({
                "service": s.name,
                "target": s.target,
                "healthy": s.healthy(),
                "maintenance": s.maintenance(),
                "published": s.published(),
                "store_errors": s.store_errors(),
                "role": s.role().map(|r| r.as_str()),
            })
        })
        .collect();
    let body = serde_json::json!({ "ready": all, "services": details });
    Reply::json(if all { 200 } else { 503 }, &body)
}

/// Writes one metric family: its HELP and TYPE, then its samples.
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: Vec<(String, String)>) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{{{labels}}} {value}");
    }
}

/// The Prometheus text exposition of every service.
pub fn render(services: &[Arc<ServiceStatus>]) -> String {
    let mut out = String::with_capacity(1024 + services.len() * 1024);
    let per_service = |value: &dyn Fn(&ServiceStatus) -> String| {
        services
            .iter()
            .map(|s| (format!("service=\"{}\"", label_value(&s.name)), value(s)))
            .collect::<Vec<_>>()
    };
    let per_check = |value: &dyn Fn(&super::status::CheckStatus) -> String| {
        services
            .iter()
            .flat_map(|s| {
                s.checks.iter().map(move |c| {
                    (
                        format!(
                            "service=\"{}\",check=\"{}\"",
                            label_value(&s.name),
                            label_value(&c.name)
                        ),
                        value(c),
                    )
                })
            })
            .collect::<Vec<_>>()
    };
    let bool_value = |b: bool| (b as u8).to_string();
    family(
        &mut out,
        "disco_registrar_check_up",
        "gauge",
        "Whether the check's last run passed.",
        per_check(&|c| bool_value(c.last_passed())),
    );
    let mut runs = Vec::new();
    for s in services {
        for c in &s.checks {
            let (passed, failed) = c.counts();
            let labels = format!(
                "service=\"{}\",check=\"{}\"",
                label_value(&s.name),
                label_value(&c.name)
            );
            runs.push((format!("{labels},result=\"pass\""), passed.to_string()));
            runs.push((format!("{labels},result=\"fail\""), failed.to_string()));
        }
    }
    family(
        &mut out,
        "disco_registrar_checks_total",
        "counter",
        "Check runs, by result.",
        runs,
    );
    out.push_str("# HELP disco_registrar_check_duration_seconds Time the check's runs took.\n");
    out.push_str("# TYPE disco_registrar_check_duration_seconds summary\n");
    for (labels, value) in per_check(&|c| {
        let (passed, failed) = c.counts();
        format!("{} {}", c.durations().0.as_secs_f64(), passed + failed)
    }) {
        let (sum, count) = value.split_once(' ').unwrap_or_default();
        let _ = writeln!(
            out,
            "disco_registrar_check_duration_seconds_sum{{{labels}}} {sum}"
        );
        let _ = writeln!(
            out,
            "disco_registrar_check_duration_seconds_count{{{labels}}} {count}"
        );
    }
    family(
        &mut out,
        "disco_registrar_check_last_duration_seconds",
        "gauge",
        "How long the check's last run took.",
        per_check(&|c| c.durations().1.as_secs_f64().to_string()),
    );
    family(
        &mut out,
        "disco_registrar_healthy",
        "gauge",
        "Whether the service passes its checks (after rise and fall).",
        per_service(&|s| bool_value(s.healthy())),
    );
    family(
        &mut out,
        "disco_registrar_maintenance",
        "gauge",
        "Whether the maintenance file withdraws the service.",
        per_service(&|s| bool_value(s.maintenance())),
    );
    family(
        &mut out,
        "disco_registrar_published",
        "gauge",
        "Whether the store holds the service's registration.",
        per_service(&|s| bool_value(s.published())),
    );
    family(
        &mut out,
        "disco_registrar_publishes_total",
        "counter",
        "Times the registration was written after being absent.",
        per_service(&|s| s.publishes().to_string()),
    );
    family(
        &mut out,
        "disco_registrar_store_errors_total",
        "counter",
        "Store requests that failed, and registrations the store lost.",
        per_service(&|s| s.store_errors().to_string()),
    );
    // Only services with --elect have a role: one sample per role, 1 for
    // the current one (a state set, as Prometheus models enums).
    let roles = services
        .iter()
        .filter_map(|s| Some((s, s.role()?)))
        .flat_map(|(s, current)| {
            Role::ALL.into_iter().map(move |role| {
                (
                    format!(
                        "service=\"{}\",role=\"{}\"",
                        label_value(&s.name),
                        role.as_str()
                    ),
                    bool_value(role == current),
                )
            })
        })
        .collect();
    family(
        &mut out,
        "disco_registrar_role",
        "gauge",
        "With --elect: 1 for the instance's current role (primary, replica or none).",
        roles,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::super::status::CheckStatus;
    use super::*;

    #[test]
    fn metrics_name_each_service_and_check() {
        let status = Arc::new(ServiceStatus::new(
            "web/web-1".into(),
            "etcd://h/disco/services/web/web-1".into(),
            vec![CheckStatus::new("GET http://x/\"q\"")],
        ));
        status.checks[0].record(None, std::time::Duration::from_millis(5));
        status.set_healthy(true);
        status.set_published(true);
        let text = render(std::slice::from_ref(&status));
        assert!(
            text.contains("disco_registrar_published{service=\"web/web-1\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(r#"disco_registrar_checks_total{service="web/web-1",check="GET http://x/\"q\"",result="pass"} 1"#),
            "{text}"
        );
        let reply = ready(&[status]);
        assert_eq!(reply.status, 200);
    }
}
