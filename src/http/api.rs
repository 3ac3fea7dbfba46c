//! The read-only JSON API under `/v1/`, documented in `docs/openapi.yaml`:
//! services, one service's instances, the registries, and the change
//! timeline. Lists are sorted by name and paged with `?limit=` and
//! `?after=` (the last name of the previous page, given back as `next`).
//! Answers come from the catalog's current view, never from a store.

use std::ops::Bound;
use std::sync::Arc;

use super::ready::registry_state;
use super::{Ask, Reply};
use crate::catalog::{Catalog, ChangeEvent, Entry, Registration};
use crate::model::SkyEntry;
use crate::registry::StatusBoard;

/// Page size when `?limit=` is not given.
pub const DEFAULT_LIMIT: usize = 100;
/// SRV priority of a SkyDNS entry without one (CoreDNS's default).
const SKYDNS_PRIORITY: u16 = 10;
/// SRV weight of a SkyDNS entry without one or with 0, before CoreDNS
/// splits 100 among the entries of one priority.
const SKYDNS_WEIGHT: u16 = 100;
/// The largest `?limit=` accepted.
pub const MAX_LIMIT: usize = 10_000;

/// What the API reads.
#[derive(Debug)]
pub(super) struct Api {
    pub catalog: Arc<Catalog>,
    pub status: Arc<StatusBoard>,
    /// The served domain, without trailing dot.
    pub domain: String,
}

/// A 400 naming the parameter and what was wrong.
pub(super) fn bad_request(param: &str, value: &str, reason: &str) -> Reply {
    Reply::json(
        400,
        &serde_json::json!({
            "error": format!("invalid {param} {value:?}: {reason}"),
        }),
    )
}

fn limit(ask: &Ask<'_>) -> Result<usize, Reply> {
    match ask.param("limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(bad_request(
                "limit",
                &text,
                &format!("expected 1 to {MAX_LIMIT}"),
            )),
        },
    }
}

fn after_bound(after: &Option<String>) -> (Bound<&str>, Bound<&str>) {
    match after {
        Some(after) => (Bound::Excluded(after.as_str()), Bound::Unbounded),
        None => (Bound::Unbounded, Bound::Unbounded),
    }
}

impl Api {
    /// `GET /v1/services[?limit&after&q]`.
    pub fn services(&self, ask: &Ask<'_>) -> Reply {
        let limit = match limit(ask) {
            Ok(limit) => limit,
            Err(reply) => return reply,
        };
        let after = ask.param("after");
        let filter = ask.param("q").map(|q| q.to_ascii_lowercase());
        let view = self.catalog.view();
        let mut page = Vec::new();
        let mut next = None;
        let matching = view
            .services
            .range::<_, str>(after_bound(&after))
            .filter(|(name, _)| filter.as_ref().is_none_or(|q| name.contains(q.as_str())));
        for (name, instances) in matching {
            if page.len() == limit {
                next = page.last().map(|s: &serde_json::Value| s["name"].clone());
                break;
            }
            let mut tags: Vec<&str> = instances
                .values()
                .flat_map(|e| e.tags().iter().map(|t| &**t))
                .collect();
            tags.sort_unstable();
            tags.dedup();
            let mut registries: Vec<usize> = instances.values().map(|e| e.registry()).collect();
            registries.sort_unstable();
            registries.dedup();
            let registries: Vec<&str> = (registries.iter())
                .map(|&r| self.catalog.registry_name(r))
                .collect();
            page.push(serde_json::json!({
                "name": name,
                "instances": instances.len(),
                "tags": tags,
                "registries": registries,
                "dns": format!("{name}.{}.", self.domain),
            }));
        }
        Reply::json(
            200,
            &serde_json::json!({
                "services": page,
                "total_services": view.services.len(),
                "total_instances": view.instances,
                "next": next,
            }),
        )
    }

    /// `GET /v1/services/{name}[?limit&after]`.
    pub fn service(&self, ask: &Ask<'_>) -> Reply {
        let raw = &ask.path["/v1/services/".len()..];
        let name: String = percent_decode(raw).to_ascii_lowercase();
        let limit = match limit(ask) {
            Ok(limit) => limit,
            Err(reply) => return reply,
        };
        let after = ask.param("after");
        let view = self.catalog.view();
        let Some(instances) = view.services.get(&name) else {
            return Reply::json(
                404,
                &serde_json::json!({"error": format!("no service {name:?}")}),
            );
        };
        let mut page = Vec::new();
        let mut next = None;
        let mut last_key = None;
        for (key, entry) in instances.range(after_bound(&after)) {
            if page.len() == limit {
                next = last_key;
                break;
            }
            page.push(self.instance_json(&name, entry));
            last_key = Some(key);
        }
        let domain = &self.domain;
        // The RFC 2782 form answers registrations, not SkyDNS entries.
        let native =
            (instances.values()).any(|e| matches!(e.registration, Registration::Instance(_)));
        Reply::json(
            200,
            &serde_json::json!({
                "name": name,
                "total_instances": instances.len(),
                "dns": {
                    "a": format!("{name}.{domain}."),
                    "srv": format!("{name}.{domain}."),
                    "rfc2782": native.then(|| format!("_{name}._tcp.{domain}.")),
                },
                "instances": page,
                "next": next,
            }),
        )
    }

    fn instance_json(&self, service: &str, entry: &Entry) -> serde_json::Value {
        let i = match &entry.registration {
            Registration::Instance(instance) => instance,
            Registration::SkyDns(sky) => return self.sky_json(sky, entry),
        };
        let id = i.id.as_str();
        let ports: serde_json::Map<String, serde_json::Value> = (i.ports.iter())
            .map(|(name, port)| (name.to_owned(), (*port).into()))
            .collect();
        let meta: serde_json::Map<String, serde_json::Value> = (i.meta.iter())
            .map(|(k, v)| (k.to_owned(), v.into()))
            .collect();
        let tags: Vec<&str> = i.tags.iter().map(|t| &**t).collect();
        serde_json::json!({
            "id": id,
            "address": i.address.to_string(),
            "port": i.port,
            "ports": ports,
            "protocol": match i.protocol {
                crate::model::Protocol::Tcp => "tcp",
                crate::model::Protocol::Udp => "udp",
            },
            "tags": tags,
            "priority": i.priority,
            "weight": i.weight,
            "ttl": i.ttl,
            "meta": meta,
            "registry": self.catalog.registry_name(entry.registry()),
            "first_seen": humantime::format_rfc3339_millis(entry.first_seen()).to_string(),
            "dns": format!("{id}.{service}.{}.", self.domain),
            "skydns": null,
        })
    }

    /// A SkyDNS entry in the instance shape: `host` as the address when it
    /// is one (else null: a name, answered as CNAME or SRV target, or a
    /// text-only entry), priority and weight as CoreDNS defaults them, the
    /// entry's own fields under `skydns`.
    fn sky_json(&self, sky: &SkyEntry, entry: &Entry) -> serde_json::Value {
        let address = sky.host.parse::<std::net::IpAddr>().ok();
        serde_json::json!({
            "id": entry.id(),
            "address": address.map(|a| a.to_string()),
            "port": (sky.port != 0).then_some(sky.port),
            "ports": {},
            "protocol": "tcp",
            "tags": [],
            "priority": sky.priority.unwrap_or(SKYDNS_PRIORITY),
            "weight": sky.weight.filter(|&w| w != 0).unwrap_or(SKYDNS_WEIGHT),
            "ttl": sky.ttl.filter(|&t| t > 0),
            "meta": {},
            "registry": self.catalog.registry_name(entry.registry()),
            "first_seen": humantime::format_rfc3339_millis(entry.first_seen()).to_string(),
            "dns": format!("{}.", sky.name),
            "skydns": {
                "key": sky.key,
                "host": sky.host,
                "text": sky.text,
                "group": sky.group,
                "targetstrip": sky.target_strip,
                "lease_ttl": sky.lease_ttl,
            },
        })
    }

    /// `GET /v1/registries`.
    pub fn registries(&self) -> Reply {
        let view = self.catalog.view();
        let mut counts = vec![0usize; self.catalog.registries().len()];
        for instances in view.services.values() {
            for entry in instances.values() {
                if let Some(count) = counts.get_mut(entry.registry()) {
                    *count += 1;
                }
            }
        }
        let registries: Vec<serde_json::Value> = (self.status.sources().iter())
            .enumerate()
            .map(|(source, s)| {
                let mut state = registry_state(s);
                state["instances"] = counts.get(source).copied().unwrap_or(0).into();
                state
            })
            .collect();
        Reply::json(200, &serde_json::json!({ "registries": registries }))
    }

    /// `GET /v1/changes[?since&limit]`.
    pub fn changes(&self, ask: &Ask<'_>) -> Reply {
        let since = match ask.param("since") {
            None => 0,
            Some(text) => match text.parse::<u64>() {
                Ok(n) => n,
                Err(_) => return bad_request("since", &text, "expected a change number"),
            },
        };
        let limit = match limit(ask) {
            Ok(limit) => limit,
            Err(reply) => return reply,
        };
        let (events, latest) = self.catalog.timeline().since(since, limit);
        let changes: Vec<serde_json::Value> = events.iter().map(|e| change_json(e)).collect();
        Reply::json(
            200,
            &serde_json::json!({ "changes": changes, "latest": latest }),
        )
    }
}

/// One change as the API and the stream show it.
pub(super) fn change_json(event: &ChangeEvent) -> serde_json::Value {
    serde_json::json!({
        "seq": event.seq,
        "time": humantime::format_rfc3339_millis(event.time).to_string(),
        "registry": event.registry,
        "kind": event.kind.as_str(),
        "service": event.service,
        "instance": event.instance,
        "fields": event.fields,
        "detail": event.detail,
    })
}

/// `%XX` sequences decoded (a path segment; `+` stays `+`).
fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}
