//! Which store keys mean what: an etcd key and value in, a registry change
//! (or the reason it was skipped) out. Pure functions, no I/O.

use crate::model::{self, Instance, InstanceId, ServiceName, SkyEntry};
use crate::registry::Change;

/// Values larger than this are skipped unread: no registration needs more,
/// and a huge value should not cost a parse.
pub(super) const MAX_VALUE: usize = 64 * 1024;

/// How keys below the prefix are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Layout {
    /// `<prefix>/services/<service>/<instance>`, native JSON (DESIGN §3).
    Native,
    /// CoreDNS/SkyDNS reversed-label keys, SkyDNS JSON.
    SkyDns,
}

impl Layout {
    /// The prefix used when the URL names none.
    fn default_prefix(self) -> &'static str {
        match self {
            Layout::Native => "/disco",
            Layout::SkyDns => "/skydns",
        }
    }
}

/// A registration read from a key.
#[derive(Debug)]
pub(super) enum Entry {
    /// A native instance.
    Instance(Instance),
    /// A SkyDNS entry.
    Record(SkyEntry),
}

impl From<Entry> for Change {
    fn from(entry: Entry) -> Change {
        match entry {
            Entry::Instance(instance) => Change::Put(instance),
            Entry::Record(record) => Change::PutRecord(record),
        }
    }
}

/// A key that was skipped, and why.
#[derive(Debug)]
pub(super) struct Skip {
    /// The key, for the log (lossy if it is not UTF-8).
    pub key: String,
    /// Why, for the log.
    pub reason: String,
    /// What to do in the registry when the skipped value arrives in a watch:
    /// a key that held a valid registration and now holds garbage must stop
    /// answering, so a skipped put withdraws whatever the key held before.
    pub withdraw: Option<Change>,
}

/// The key layout of one registry.
#[derive(Debug, Clone)]
pub(super) struct Keys {
    layout: Layout,
    /// Without a trailing slash; empty for the root.
    prefix: String,
}

impl Keys {
    /// Keys below `path` (the URL's path; `/` means the layout's default).
    pub fn new(layout: Layout, path: &str) -> Self {
        let path = path.trim_end_matches('/');
        let prefix = if path.is_empty() {
            layout.default_prefix()
        } else {
            path
        };
        Keys {
            layout,
            prefix: prefix.to_owned(),
        }
    }

    /// The layout.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The key prefix to list and watch: the prefix and a slash, so that
    /// `/disco` does not also read `/disco2`.
    pub fn range_prefix(&self) -> String {
        format!("{}/", self.prefix)
    }

    /// Reads a put of `value` at `key`. `lease_ttl` is the granted TTL of
    /// the key's lease, if it has one (SkyDNS only).
    pub fn put(
        &self,
        key: &[u8],
        value: &[u8],
        lease_ttl: Option<u32>,
    ) -> Result<Entry, Box<Skip>> {
        let Ok(key) = std::str::from_utf8(key) else {
            return Err(Box::new(Skip {
                key: String::from_utf8_lossy(key).into_owned(),
                reason: "the key is not UTF-8".to_owned(),
                withdraw: None,
            }));
        };
        let skip = |reason: String, withdraw: Option<Change>| {
            Box::new(Skip {
                key: key.to_owned(),
                reason,
                withdraw,
            })
        };
        match self.layout {
            Layout::Native => {
                let Some((service, instance)) = self.native_names(key) else {
                    return Err(skip(
                        format!(
                            "the key is outside the layout {}/services/<service>/<instance>",
                            self.prefix
                        ),
                        None,
                    ));
                };
                let withdraw = || native_delete(service, instance);
                if value.len() > MAX_VALUE {
                    return Err(skip(too_large(value.len()), withdraw()));
                }
                model::parse_native(service, instance, value)
                    .map(Entry::Instance)
                    .map_err(|e| skip(e.to_string(), withdraw()))
            }
            Layout::SkyDns => {
                let withdraw = || {
                    Some(Change::DeleteRecord {
                        key: key.to_owned(),
                    })
                };
                if model::skydns_name(&self.prefix, key).is_none() {
                    return Err(skip(
                        format!(
                            "the key is not a DNS name in reversed labels below {}",
                            self.prefix
                        ),
                        None,
                    ));
                }
                if value.len() > MAX_VALUE {
                    return Err(skip(too_large(value.len()), withdraw()));
                }
                model::parse_skydns(&self.prefix, key, value, lease_ttl)
                    .map(Entry::Record)
                    .map_err(|e| skip(e.to_string(), withdraw()))
            }
        }
    }

    /// Reads a delete of `key`: what to withdraw, if the key could ever
    /// have held a registration.
    pub fn delete(&self, key: &[u8]) -> Option<Change> {
        let key = std::str::from_utf8(key).ok()?;
        match self.layout {
            Layout::Native => {
                let (service, instance) = self.native_names(key)?;
                native_delete(service, instance)
            }
            Layout::SkyDns => {
                model::skydns_name(&self.prefix, key)?;
                Some(Change::DeleteRecord {
                    key: key.to_owned(),
                })
            }
        }
    }

    /// `(service, instance)` of a key in the native layout.
    fn native_names<'k>(&self, key: &'k str) -> Option<(&'k str, &'k str)> {
        let rest = key
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix("/services/")?;
        let (service, instance) = rest.split_once('/')?;
        (!service.is_empty() && !instance.is_empty() && !instance.contains('/'))
            .then_some((service, instance))
    }
}

fn native_delete(service: &str, instance: &str) -> Option<Change> {
    Some(Change::Delete {
        service: ServiceName::new(service).ok()?,
        id: InstanceId::new(instance).ok()?,
    })
}

fn too_large(len: usize) -> String {
    format!(
        "the value is {len} bytes, over the {} KiB limit",
        MAX_VALUE / 1024
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEB: &[u8] = br#"{"address":"10.0.0.5","port":8080}"#;

    fn native() -> Keys {
        Keys::new(Layout::Native, "/disco")
    }

    #[test]
    fn native_keys_name_a_service_and_an_instance() {
        let Ok(Entry::Instance(instance)) = native().put(b"/disco/services/web/web-1", WEB, None)
        else {
            panic!("a valid registration");
        };
        assert_eq!(
            (instance.service.as_str(), instance.id.as_str()),
            ("web", "web-1")
        );
        let Ok(Entry::Instance(instance)) =
            native().put(b"/disco/services/api.billing/a1", WEB, None)
        else {
            panic!("a multi-label service");
        };
        assert_eq!(instance.service.as_str(), "api.billing");
        assert!(matches!(
            native().delete(b"/disco/services/web/web-1"),
            Some(Change::Delete { .. })
        ));
    }

    #[test]
    fn keys_outside_the_native_layout_are_skipped_without_a_withdrawal() {
        for key in [
            "/disco/services/web",
            "/disco/services/web/",
            "/disco/services//x",
            "/disco/other/x",
            "/disco/services/web/x/deeper",
            "/disco2/services/web/x",
        ] {
            let skip = native().put(key.as_bytes(), WEB, None).unwrap_err();
            assert!(skip.reason.contains("outside the layout"), "{key}");
            assert!(skip.withdraw.is_none(), "{key}");
            assert!(native().delete(key.as_bytes()).is_none(), "{key}");
        }
    }

    #[test]
    fn a_bad_value_at_a_good_key_withdraws_the_instance() {
        let big = vec![b' '; MAX_VALUE + 1];
        for (value, reason) in [
            (&b"not json"[..], "not a valid registration"),
            (br#"{"address":"10.0.0.300"}"#, "invalid address"),
            (&big[..], "over the 64 KiB limit"),
        ] {
            let skip = native()
                .put(b"/disco/services/web/web-1", value, None)
                .unwrap_err();
            assert!(skip.reason.contains(reason), "{}", skip.reason);
            assert!(matches!(skip.withdraw, Some(Change::Delete { .. })));
        }
    }

    #[test]
    fn the_default_prefix_follows_the_layout() {
        assert_eq!(Keys::new(Layout::Native, "/").range_prefix(), "/disco/");
        assert_eq!(Keys::new(Layout::SkyDns, "/").range_prefix(), "/skydns/");
        assert_eq!(Keys::new(Layout::Native, "/a/b/").range_prefix(), "/a/b/");
    }

    #[test]
    fn skydns_keys_are_records_with_their_lease_ttl() {
        let keys = Keys::new(Layout::SkyDns, "/skydns");
        let Ok(Entry::Record(record)) = keys.put(
            b"/skydns/internal/disco/web/x1",
            br#"{"host":"10.0.0.1","port":8080}"#,
            Some(30),
        ) else {
            panic!("a valid entry");
        };
        assert_eq!(record.name, "x1.web.disco.internal");
        assert_eq!(record.lease_ttl, Some(30));
        let skip = keys
            .put(b"/skydns/internal//x", br#"{"host":"10.0.0.1"}"#, None)
            .unwrap_err();
        assert!(skip.withdraw.is_none());
        let skip = keys.put(b"/skydns/internal/x", b"{", None).unwrap_err();
        assert!(matches!(skip.withdraw, Some(Change::DeleteRecord { .. })));
        assert!(matches!(
            keys.delete(b"/skydns/internal/x"),
            Some(Change::DeleteRecord { .. })
        ));
    }

    #[test]
    fn keys_that_are_not_utf8_are_skipped() {
        let skip = native()
            .put(b"/disco/services/web/\xff", WEB, None)
            .unwrap_err();
        assert!(skip.reason.contains("UTF-8"));
    }
}
