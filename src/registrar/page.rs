//! The registrar's web page at `/ui/`: its services, each with where it is
//! published, whether it is healthy, published and in maintenance, its
//! role with `--elect`, its store errors, the last change and why it
//! happened, and its checks with their last result (and last error),
//! counts and run times. Rendered on the server with `disco serve`'s stylesheet
//! ([`crate::http::ui`]); no script.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::SystemTime;

use super::role::Role;
use super::status::ServiceStatus;
use crate::http::Reply;
use crate::http::ui::{cell, document, escape, html};

fn yes_no(value: bool, good_when: bool) -> &'static str {
    match (value, value == good_when) {
        (true, true) => "<span class=\"ok\">yes</span>",
        (true, false) => "<span class=\"bad\">yes</span>",
        (false, true) => "<span class=\"ok\">no</span>",
        (false, false) => "<span class=\"bad\">no</span>",
    }
}

fn role(status: &ServiceStatus) -> String {
    match status.role() {
        None => String::new(),
        Some(Role::Primary) => "<span class=\"ok\">primary</span>".to_owned(),
        Some(role) => role.as_str().to_owned(),
    }
}

/// The last change, why, and how long ago (the exact time in `title` and
/// a `<time>` element).
fn last_change(status: &ServiceStatus) -> String {
    let Some(change) = status.last_change() else {
        return "<span class=\"muted\">none yet</span>".to_owned();
    };
    let ago = SystemTime::now()
        .duration_since(change.at)
        .unwrap_or_default()
        .as_secs();
    let at = humantime::format_rfc3339_seconds(change.at);
    format!(
        "<strong>{}</strong>: <span class=\"why\">{}</span><br>\
<time class=\"muted\" datetime=\"{at}\" title=\"{at}\">{ago}s ago</time>",
        escape(&change.what),
        escape(&change.why),
    )
}

/// `/ui/`.
pub fn page(services: &[Arc<ServiceStatus>]) -> Reply {
    let roles = services.iter().any(|s| s.role().is_some());
    let mut body = String::from(
        "<h2 id=\"services\">Services</h2><div class=\"table\"><table id=\"registered\" class=\"cards\"><thead><tr>\
<th scope=\"col\">Service</th><th scope=\"col\">Healthy</th><th scope=\"col\">Published</th>\
<th scope=\"col\">Maintenance</th>",
    );
    if roles {
        body.push_str("<th scope=\"col\">Role</th>");
    }
    body.push_str(
        "<th scope=\"col\">Last change</th><th scope=\"col\" class=\"num wide\">Store errors</th>\
<th scope=\"col\" class=\"wide\">Published to</th></tr></thead><tbody>",
    );
    for s in services {
        let name = escape(&s.name);
        let _ = write!(body, "<tr data-service=\"{name}\">");
        cell(&mut body, "Service", "", &name);
        cell(&mut body, "Healthy", "", yes_no(s.healthy(), true));
        cell(&mut body, "Published", "", yes_no(s.published(), true));
        cell(&mut body, "Maintenance", "", yes_no(s.maintenance(), false));
        if roles {
            cell(&mut body, "Role", "role", &role(s));
        }
        cell(&mut body, "Last change", "change", &last_change(s));
        let errors = s.store_errors().to_string();
        cell(&mut body, "Store errors", "num wide", &errors);
        cell(&mut body, "Published to", "wide", &escape(&s.target));
        body.push_str("</tr>");
    }
    body.push_str(
        "</tbody></table></div><h2 id=\"checks\">Checks</h2><div class=\"table\"><table class=\"cards\"><thead><tr>\
<th scope=\"col\">Service</th><th scope=\"col\">Check</th><th scope=\"col\">Last result</th>\
<th scope=\"col\" class=\"num\">Last run</th><th scope=\"col\" class=\"num wide\">Mean run</th>\
<th scope=\"col\" class=\"num wide\">Passed / failed</th></tr></thead><tbody>",
    );
    for s in services {
        for check in &s.checks {
            let (passed, failed) = check.counts();
            let (total, last) = check.durations();
            let runs = passed + failed;
            let last_result = match (runs, check.last_passed(), check.last_error()) {
                (0, ..) => "<span class=\"muted\">not run yet</span>".to_owned(),
                (_, true, _) => "<span class=\"ok\">passed</span>".to_owned(),
                (_, false, error) => format!(
                    "<span class=\"bad\">failed</span> <span class=\"why\">{}</span>",
                    escape(error.as_deref().map_or("", String::as_str))
                ),
            };
            let mean = if runs == 0 {
                "-".to_owned()
            } else {
                format!("{:.1} ms", total.as_secs_f64() * 1e3 / runs as f64)
            };
            body.push_str("<tr>");
            cell(&mut body, "Service", "", &escape(&s.name));
            let check_name = format!("<code>{}</code>", escape(&check.name));
            cell(&mut body, "Check", "", &check_name);
            cell(&mut body, "Last result", "", &last_result);
            let last = format!("{:.1} ms", last.as_secs_f64() * 1e3);
            cell(&mut body, "Last run", "num", &last);
            cell(&mut body, "Mean run", "num wide", &mean);
            let counts = format!("{passed} / {failed}");
            cell(&mut body, "Passed / failed", "num wide", &counts);
            body.push_str("</tr>");
        }
    }
    body.push_str("</tbody></table></div><p><a href=\"/ui/\">Refresh</a></p>");
    let nav = [("Services", "/ui/#services"), ("Checks", "/ui/#checks")];
    html(200, document("Registrar", &nav, &body, false))
}
