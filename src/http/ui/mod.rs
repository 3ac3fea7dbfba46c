//! The web page under `/ui/`: services with their instance counts and a
//! filter box, one service's instances with the DNS names that answer them
//! (copyable `dig` lines), the registries' health, and the change
//! timeline. Rendered on the server, so it works without JavaScript;
//! `app.js`, our own and small, makes the timeline live (the event stream)
//! and filters as you type. The stylesheet and script are embedded in the
//! binary: no CDN, no build step. Light and dark by the browser's setting,
//! narrow screens drop the wide columns.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use super::{Ask, Reply};
use crate::catalog::{Catalog, ChangeEvent, Entry, Registration};
use crate::registry::StatusBoard;

const HTML: &str = "text/html; charset=utf-8";
const STYLE: &str = include_str!("style.css");
const SCRIPT: &str = include_str!("app.js");
/// Services on one page; the filter searches them all.
const SERVICES_PER_PAGE: usize = 1000;
/// Changes the page shows when it loads.
const TIMELINE_ROWS: usize = 50;

/// What the page reads.
#[derive(Debug)]
pub(in crate::http) struct Ui {
    pub catalog: Arc<Catalog>,
    pub status: Arc<StatusBoard>,
    /// The served domain, without trailing dot.
    pub domain: String,
    /// A DNS address for the `dig` lines.
    pub dns: Option<SocketAddr>,
}

/// `text` with `&`, `<`, `>`, `"` and `'` escaped, for HTML text and
/// attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The stylesheet.
pub fn style() -> Reply {
    Reply {
        status: 200,
        content_type: "text/css; charset=utf-8",
        body: STYLE.to_owned(),
    }
}

/// The script.
pub fn script() -> Reply {
    Reply {
        status: 200,
        content_type: "text/javascript; charset=utf-8",
        body: SCRIPT.to_owned(),
    }
}

/// A whole page: `title`, a header with `nav` links (label, href), `body`
/// (already HTML), the shared stylesheet, and the script when `script`.
pub fn document(title: &str, nav: &[(&str, &str)], body: &str, script: bool) -> String {
    let mut links = String::new();
    for (label, href) in nav {
        let _ = write!(links, "<a href=\"{}\">{}</a>", escape(href), escape(label));
    }
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"color-scheme\" content=\"light dark\">\
<title>{title} · disco</title><link rel=\"stylesheet\" href=\"/ui/style.css\"></head>\
<body><header><h1><a href=\"/ui/\">disco</a></h1><nav aria-label=\"Sections\">{links}</nav>\
</header><main>{body}</main>{script}</body></html>\n",
        title = escape(title),
        script = if script {
            "<script src=\"/ui/app.js\" defer></script>"
        } else {
            ""
        },
    )
}

fn page(title: &str, body: &str) -> String {
    let nav = [
        ("Services", "/ui/#services"),
        ("Registries", "/ui/#registries"),
        ("Changes", "/ui/#changes"),
    ];
    document(title, &nav, body, true)
}

/// An HTML reply.
pub fn html(status: u16, body: String) -> Reply {
    Reply {
        status,
        content_type: HTML,
        body,
    }
}

fn ago(at: Option<SystemTime>) -> String {
    match at.and_then(|at| SystemTime::now().duration_since(at).ok()) {
        Some(d) => format!("{}s ago", d.as_secs()),
        None => "never".to_owned(),
    }
}

impl Ui {
    /// `/ui/`: services, registries, changes.
    pub fn index(&self, ask: &Ask<'_>) -> Reply {
        let filter = ask.param("q").unwrap_or_default().to_ascii_lowercase();
        let after = ask.param("after");
        let view = self.catalog.view();
        let mut body = String::with_capacity(64 * 1024);
        let _ = write!(
            body,
            "<h2 id=\"services\">Services <span class=\"muted\">({} services, {} instances)</span></h2>\
<form class=\"filter\" method=\"get\" action=\"/ui/\" role=\"search\">\
<label for=\"filter\">Filter services</label>\
<input type=\"search\" id=\"filter\" name=\"q\" value=\"{}\" autocomplete=\"off\">\
<button type=\"submit\">Filter</button></form>\
<div class=\"table\"><table id=\"services\"><thead><tr><th scope=\"col\">Service</th>\
<th scope=\"col\" class=\"num\">Instances</th><th scope=\"col\" class=\"wide\">Tags</th></tr></thead><tbody>",
            view.services.len(),
            view.instances,
            escape(&filter)
        );
        let range = match &after {
            Some(after) => (
                std::ops::Bound::Excluded(after.as_str()),
                std::ops::Bound::Unbounded,
            ),
            None => (std::ops::Bound::Unbounded, std::ops::Bound::Unbounded),
        };
        let mut shown = 0;
        let mut next = None;
        for (name, instances) in view.services.range::<_, str>(range) {
            if !filter.is_empty() && !name.contains(filter.as_str()) {
                continue;
            }
            if shown == SERVICES_PER_PAGE {
                next = Some(name.clone());
                break;
            }
            shown += 1;
            let mut tags: Vec<&str> = (instances.values())
                .flat_map(|e| e.tags().iter().map(|t| &**t))
                .collect();
            tags.sort_unstable();
            tags.dedup();
            let name = escape(name);
            let _ = write!(
                body,
                "<tr data-name=\"{name}\"><td><a href=\"/ui/services/{name}\">{name}</a></td>\
<td class=\"num\">{}</td><td class=\"wide\">",
                instances.len()
            );
            for tag in tags {
                let _ = write!(body, "<span class=\"tag\">{}</span>", escape(tag));
            }
            body.push_str("</td></tr>");
        }
        body.push_str("</tbody></table></div>");
        if shown == 0 {
            body.push_str("<p class=\"muted\">No services.</p>");
        }
        if let Some(next) = next {
            let _ = write!(
                body,
                "<p><a href=\"/ui/?q={}&amp;after={}\">Next services</a></p>",
                escape(&form_value(&filter)),
                escape(&form_value(&next))
            );
        }
        self.registries(&mut body);
        self.timeline(&mut body);
        html(200, page("Services", &body))
    }

    fn registries(&self, body: &mut String) {
        body.push_str(
            "<h2 id=\"registries\">Registries</h2><div class=\"table\"><table class=\"cards\"><thead><tr>\
<th scope=\"col\">Registry</th><th scope=\"col\">State</th><th scope=\"col\" class=\"num\">Lag</th>\
<th scope=\"col\" class=\"wide\">Last event</th><th scope=\"col\" class=\"wide\">Last proof</th>\
<th scope=\"col\" class=\"num wide\">Resyncs</th></tr></thead><tbody>",
        );
        let sources = self.status.sources();
        for s in &sources {
            let state = match (s.synced, s.stale_since) {
                (_, Some(since)) => format!(
                    "<span class=\"bad\">stale since {}</span>{}",
                    humantime::format_rfc3339_seconds(since),
                    s.stale_reason
                        .as_deref()
                        .map(|r| format!("<br><span class=\"muted\">{}</span>", escape(r)))
                        .unwrap_or_default()
                ),
                (true, None) => "<span class=\"ok\">synced</span>".to_owned(),
                (false, None) => "<span class=\"muted\">listing…</span>".to_owned(),
            };
            body.push_str("<tr>");
            cell(body, "Registry", "", &escape(&s.name));
            cell(body, "State", "", &state);
            cell(body, "Lag", "num", &s.lag.to_string());
            cell(body, "Last event", "wide", &ago(s.last_event));
            cell(body, "Last proof", "wide", &ago(s.last_proof));
            let resyncs = s.resyncs.iter().sum::<u64>().to_string();
            cell(body, "Resyncs", "num wide", &resyncs);
            body.push_str("</tr>");
        }
        body.push_str("</tbody></table></div>");
        if sources.is_empty() {
            body.push_str("<p class=\"muted\">No registry: serving the zone files alone.</p>");
        }
    }

    fn timeline(&self, body: &mut String) {
        let timeline = self.catalog.timeline();
        let latest = timeline.since(0, 0).1;
        let (events, _) =
            timeline.since(latest.saturating_sub(TIMELINE_ROWS as u64), TIMELINE_ROWS);
        let _ = write!(
            body,
            "<h2 id=\"changes\">Changes</h2><div class=\"table\"><table id=\"timeline\" data-latest=\"{latest}\">\
<caption class=\"visually-hidden\">Latest changes first; new ones appear as they happen</caption>\
<thead><tr><th scope=\"col\">Time</th><th scope=\"col\" class=\"wide\">Registry</th>\
<th scope=\"col\">Change</th><th scope=\"col\">What</th></tr></thead><tbody aria-live=\"polite\">"
        );
        for event in events.iter().rev() {
            change_row(body, event);
        }
        body.push_str("</tbody></table></div>");
    }

    /// `/ui/services/{name}`.
    pub fn service(&self, ask: &Ask<'_>) -> Reply {
        let raw = &ask.path["/ui/services/".len()..];
        let name = percent_encoding::percent_decode_str(raw)
            .decode_utf8_lossy()
            .to_ascii_lowercase();
        let view = self.catalog.view();
        let Some(instances) = view.services.get(&name) else {
            let body = format!(
                "<h2>No service {}</h2><p><a href=\"/ui/\">All services</a></p>",
                escape(&name)
            );
            return html(404, page("Not found", &body));
        };
        let domain = &self.domain;
        let server = match self.dns {
            Some(addr) if addr.port() == 53 => format!("@{} ", addr.ip()),
            Some(addr) => format!("@{} -p {} ", addr.ip(), addr.port()),
            None => String::new(),
        };
        let mut body = String::new();
        let _ = write!(
            body,
            "<h2>{} <span class=\"muted\">({} instances)</span></h2><h3>DNS</h3>",
            escape(&name),
            instances.len()
        );
        let mut digs = vec![
            format!("dig {server}{name}.{domain}. A"),
            format!("dig {server}{name}.{domain}. SRV"),
        ];
        // The RFC 2782 form answers registrations, not SkyDNS entries.
        if (instances.values()).any(|e| matches!(e.registration, Registration::Instance(_))) {
            digs.push(format!("dig {server}_{name}._tcp.{domain}. SRV"));
        }
        for (i, line) in digs.iter().enumerate() {
            dig_line(&mut body, &format!("dig-{i}"), line);
        }
        body.push_str(
            "<h3>Instances</h3><div class=\"table\"><table id=\"instances\" class=\"cards\"><thead><tr>\
<th scope=\"col\">Instance</th><th scope=\"col\">Address</th><th scope=\"col\">Ports</th>\
<th scope=\"col\">Tags</th><th scope=\"col\" class=\"wide\">Metadata</th>\
<th scope=\"col\" class=\"wide\">Registry</th><th scope=\"col\" class=\"wide\">First seen</th></tr></thead><tbody>",
        );
        for entry in instances.values() {
            self.instance_row(&mut body, &name, entry);
        }
        body.push_str("</tbody></table></div><h3>One instance</h3>");
        if let Some(entry) = instances.values().next() {
            // A registration's TXT is its metadata; a SkyDNS entry answers
            // TXT only with its text.
            let rtype = match &entry.registration {
                Registration::SkyDns(sky) if !sky.host.is_empty() => "A",
                _ => "TXT",
            };
            let own_name = self.instance_name(&name, entry);
            let line = format!("dig {server}{own_name}. {rtype}");
            dig_line(&mut body, "dig-instance", &line);
        }
        html(200, page(&name, &body))
    }

    /// The instance's own DNS name, without the final dot.
    fn instance_name(&self, service: &str, entry: &Entry) -> String {
        match &entry.registration {
            Registration::Instance(i) => format!("{}.{service}.{}", i.id, self.domain),
            Registration::SkyDns(sky) => sky.name.clone(),
        }
    }

    /// One row of a service's instance table. A SkyDNS entry shows its
    /// host (an address or a name), port, and text and group as metadata,
    /// with its store key.
    fn instance_row(&self, body: &mut String, service: &str, entry: &Entry) {
        let id = escape(entry.id());
        let own_name = escape(&self.instance_name(service, entry));
        let (address, ports, tags, meta) = match &entry.registration {
            Registration::Instance(i) => {
                let mut ports = i.port.map(|p| p.to_string()).unwrap_or_default();
                for (port_name, port) in i.ports.iter() {
                    let _ = write!(ports, " {}={port}", escape(port_name));
                }
                let mut tags = String::new();
                for tag in i.tags.iter() {
                    let _ = write!(tags, "<span class=\"tag\">{}</span>", escape(tag));
                }
                let mut meta = String::new();
                for (key, value) in i.meta.iter() {
                    let _ = write!(meta, "<code>{}={}</code><br>", escape(key), escape(value));
                }
                (i.address.to_string(), ports, tags, meta)
            }
            Registration::SkyDns(sky) => {
                let ports = if sky.port == 0 {
                    String::new()
                } else {
                    sky.port.to_string()
                };
                let mut meta = format!("<code>key={}</code><br>", escape(&sky.key));
                for (key, value) in [("text", &sky.text), ("group", &sky.group)] {
                    if !value.is_empty() {
                        let _ = write!(meta, "<code>{key}={}</code><br>", escape(value));
                    }
                }
                (escape(&sky.host), ports, String::new(), meta)
            }
        };
        let _ = write!(body, "<tr data-id=\"{id}\">");
        let instance = format!("{id}<br><code class=\"muted\">{own_name}.</code>");
        cell(body, "Instance", "", &instance);
        cell(body, "Address", "", &address);
        cell(body, "Ports", "", ports.trim());
        cell(body, "Tags", "", &tags);
        cell(body, "Metadata", "wide", &meta);
        let registry = escape(self.catalog.registry_name(entry.registry()));
        cell(body, "Registry", "wide", &registry);
        let first_seen = humantime::format_rfc3339_seconds(entry.first_seen()).to_string();
        cell(body, "First seen", "wide", &first_seen);
        body.push_str("</tr>");
    }
}

/// One table cell: `label` is its column's heading, shown beside the value
/// where a narrow screen stacks the rows of a `table.cards`; `class` may
/// be empty; `html` is already escaped.
pub fn cell(body: &mut String, label: &str, class: &str, html: &str) {
    let class = if class.is_empty() {
        String::new()
    } else {
        format!(" class=\"{class}\"")
    };
    let _ = write!(body, "<td data-label=\"{label}\"{class}>{html}</td>");
}

fn dig_line(body: &mut String, id: &str, line: &str) {
    let _ = write!(
        body,
        "<div class=\"dig\"><pre><code id=\"{id}\">{}</code></pre>\
<button type=\"button\" data-copy=\"{id}\" hidden>Copy</button></div>",
        escape(line)
    );
}

fn change_row(body: &mut String, event: &ChangeEvent) {
    let what = match (&event.service, &event.instance) {
        (Some(service), Some(instance)) => format!("{instance}.{service}"),
        _ => event.detail.clone().unwrap_or_default(),
    };
    let mut kind = event.kind.as_str().to_owned();
    if !event.fields.is_empty() {
        let _ = write!(kind, " ({})", event.fields.join(", "));
    }
    let time = humantime::format_rfc3339_millis(event.time).to_string();
    let _ = write!(
        body,
        "<tr data-seq=\"{}\"><td>{}</td><td class=\"wide\">{}</td><td>{}</td><td>{}</td></tr>",
        event.seq,
        escape(time.replace('T', " ").trim_end_matches('Z')),
        escape(&event.registry),
        escape(&kind),
        escape(&what)
    );
}

/// `text` encoded for a query string value.
fn form_value(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_leaves_no_markup() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
