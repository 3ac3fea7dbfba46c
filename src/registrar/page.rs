//! The registrar's web page at `/ui/`: its services, each with where it is
//! published, whether it is healthy, published and in maintenance, its
//! store errors, and its checks with their last result, counts and run
//! times. Rendered on the server with `disco serve`'s stylesheet
//! ([`crate::http::ui`]); no script.

use std::fmt::Write as _;
use std::sync::Arc;

use super::status::ServiceStatus;
use crate::http::Reply;
use crate::http::ui::{document, escape, html};

fn yes_no(value: bool, good_when: bool) -> &'static str {
    match (value, value == good_when) {
        (true, true) => "<span class=\"ok\">yes</span>",
        (true, false) => "<span class=\"bad\">yes</span>",
        (false, true) => "<span class=\"ok\">no</span>",
        (false, false) => "<span class=\"bad\">no</span>",
    }
}

/// `/ui/`.
pub fn page(services: &[Arc<ServiceStatus>]) -> Reply {
    let mut body = String::from(
        "<h2 id=\"services\">Services</h2><div class=\"table\"><table id=\"registered\"><thead><tr>\
<th scope=\"col\">Service</th><th scope=\"col\">Healthy</th><th scope=\"col\">Published</th>\
<th scope=\"col\">Maintenance</th><th scope=\"col\" class=\"num wide\">Store errors</th>\
<th scope=\"col\" class=\"wide\">Published to</th></tr></thead><tbody>",
    );
    for s in services {
        let _ = write!(
            body,
            "<tr data-service=\"{name}\"><td>{name}</td><td>{}</td><td>{}</td><td>{}</td>\
<td class=\"num wide\">{}</td><td class=\"wide\">{}</td></tr>",
            yes_no(s.healthy(), true),
            yes_no(s.published(), true),
            yes_no(s.maintenance(), false),
            s.store_errors(),
            escape(&s.target),
            name = escape(&s.name),
        );
    }
    body.push_str(
        "</tbody></table></div><h2 id=\"checks\">Checks</h2><div class=\"table\"><table><thead><tr>\
<th scope=\"col\">Service</th><th scope=\"col\">Check</th><th scope=\"col\">Last result</th>\
<th scope=\"col\" class=\"num\">Last run</th><th scope=\"col\" class=\"num wide\">Mean run</th>\
<th scope=\"col\" class=\"num wide\">Passed / failed</th></tr></thead><tbody>",
    );
    for s in services {
        for check in &s.checks {
            let (passed, failed) = check.counts();
            let (total, last) = check.durations();
            let runs = passed + failed;
            let last_result = match (runs, check.last_passed()) {
                (0, _) => "<span class=\"muted\">not run yet</span>",
                (_, true) => "<span class=\"ok\">passed</span>",
                (_, false) => "<span class=\"bad\">failed</span>",
            };
            let mean = if runs == 0 {
                "-".to_owned()
            } else {
                format!("{:.1} ms", total.as_secs_f64() * 1e3 / runs as f64)
            };
            let _ = write!(
                body,
                "<tr><td>{}</td><td><code>{}</code></td><td>{last_result}</td>\
<td class=\"num\">{:.1} ms</td><td class=\"num wide\">{mean}</td>\
<td class=\"num wide\">{passed} / {failed}</td></tr>",
                escape(&s.name),
                escape(&check.name),
                last.as_secs_f64() * 1e3,
            );
        }
    }
    body.push_str("</tbody></table></div><p><a href=\"/ui/\">Refresh</a></p>");
    let nav = [("Services", "/ui/#services"), ("Checks", "/ui/#checks")];
    html(200, document("Registrar", &nav, &body, false))
}
