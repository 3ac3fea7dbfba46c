//! Which znode means what, in the native and the Nerve layouts: a path in,
//! a registration (or the reason it was skipped) out. Pure, no I/O.

use crate::model::{self, Instance, InstanceId, ServiceName};

/// Node data larger than this is skipped: no registration needs more.
pub(super) const MAX_VALUE: usize = 64 * 1024;

/// Why a leaf's node registers nothing: skipped with a warning and
/// counted, never fatal (DESIGN §3).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(super) enum LeafError {
    /// A node with children sits where a registration (a leaf) belongs.
    #[error("the node has {0} children, where a registration is a leaf")]
    HasChildren(i32),
    /// More data than any registration needs.
    #[error("the data is {0} bytes, over the {limit} KiB limit", limit = MAX_VALUE / 1024)]
    TooLarge(usize),
    /// Not a native registration.
    #[error(transparent)]
    Native(#[from] model::NativeError),
    /// Not a Nerve registration.
    #[error(transparent)]
    Nerve(#[from] model::NerveError),
}

/// How nodes below the root are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Layout {
    /// `<root>/services/<service>/<instance>`, native JSON (DESIGN §3).
    Native,
    /// Nerve's `<root>/<service>/services/<instance>_<seq>`, or the bare
    /// `<root>/<service>/<instance>_<seq>` (DockStack's `zk_path`).
    Nerve,
}

impl Layout {
    /// The root used when the URL names none.
    fn default_root(self) -> &'static str {
        match self {
            Layout::Native => "/disco",
            Layout::Nerve => "/nerve/services",
        }
    }
}

/// What a path below the root is.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Node<'p> {
    /// A node holding one registration.
    Leaf {
        /// The directory naming its service (unless the node's data names
        /// it: a Nerve node's `service`).
        service: &'p str,
        /// Its own name (the instance id, or Nerve's encoded name).
        name: &'p str,
    },
    /// A node below a leaf: the leaf (this path) has children now, or
    /// no longer, and must be read again.
    BelowLeaf(&'p str),
    /// A container (`services`, a service's node) or a node outside the
    /// layout: nothing to read.
    Other,
}

/// The layout of one registry's tree.
#[derive(Debug, Clone)]
pub(super) struct Paths {
    layout: Layout,
    /// Without a trailing slash.
    root: String,
}

impl Paths {
    /// Nodes below `path` (the URL's path; `/` means the layout's default).
    pub fn new(layout: Layout, path: &str) -> Self {
        let path = path.trim_end_matches('/');
        let root = if path.is_empty() {
            layout.default_root()
        } else {
            path
        };
        Paths {
            layout,
            root: root.to_owned(),
        }
    }

    /// The layout.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The node the recursive watch is set on.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The node whose children are the services.
    pub fn services(&self) -> String {
        match self.layout {
            Layout::Native => format!("{}/services", self.root),
            Layout::Nerve => self.root.clone(),
        }
    }

    /// What `path` is.
    pub fn node<'p>(&self, path: &'p str) -> Node<'p> {
        let Some(rest) = path
            .strip_prefix(self.services().as_str())
            .and_then(|r| r.strip_prefix('/'))
        else {
            return Node::Other;
        };
        let below = |depth: usize| {
            // The leaf is the first `depth` names below the services node.
            let cut = rest
                .match_indices('/')
                .nth(depth - 1)
                .map_or(rest.len(), |(at, _)| at);
            Node::BelowLeaf(&path[..path.len() - rest.len() + cut])
        };
        let names: Vec<&str> = rest.splitn(4, '/').collect();
        match (self.layout, names.as_slice()) {
            (Layout::Native, [service, name]) => Node::Leaf { service, name },
            (Layout::Native, [_, _, ..]) => below(2),
            (Layout::Nerve, [_, "services"]) => Node::Other,
            (Layout::Nerve, [service, "services", name]) => Node::Leaf { service, name },
            (Layout::Nerve, [_, "services", _, ..]) => below(3),
            (Layout::Nerve, [service, name]) => Node::Leaf { service, name },
            (Layout::Nerve, [_, _, ..]) => below(2),
            _ => Node::Other,
        }
    }

    /// Reads the data of the leaf `service`/`name`; `children` is how many
    /// children the node has (a leaf must have none).
    pub fn parse(
        &self,
        service: &str,
        name: &str,
        value: &[u8],
        children: i32,
    ) -> Result<Instance, LeafError> {
        if children > 0 {
            return Err(LeafError::HasChildren(children));
        }
        if value.len() > MAX_VALUE {
            return Err(LeafError::TooLarge(value.len()));
        }
        Ok(match self.layout {
            Layout::Native => model::parse_native(service, name, value)?,
            Layout::Nerve => model::parse_nerve(service, name, value)?,
        })
    }

    /// The native instance a leaf's path names, to withdraw when it goes.
    pub fn native_key(service: &str, name: &str) -> Option<(ServiceName, InstanceId)> {
        Some((ServiceName::new(service).ok()?, InstanceId::new(name).ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEB: &[u8] = br#"{"address":"10.0.0.5","port":8080}"#;

    #[test]
    fn native_leaves_are_service_and_instance() {
        let paths = Paths::new(Layout::Native, "/disco");
        assert_eq!(
            paths.node("/disco/services/web/web-1"),
            Node::Leaf {
                service: "web",
                name: "web-1"
            }
        );
        assert_eq!(
            paths.node("/disco/services/web/web-1/x/y"),
            Node::BelowLeaf("/disco/services/web/web-1")
        );
        for other in [
            "/disco",
            "/disco/services",
            "/disco/services/web",
            "/disco/other/x",
            "/disco2/services/web/x",
        ] {
            assert_eq!(paths.node(other), Node::Other, "{other}");
        }
        assert_eq!(
            paths.parse("web", "web-1", WEB, 0).unwrap().port,
            Some(8080)
        );
        assert_eq!(Paths::new(Layout::Native, "/").root(), "/disco");
    }

    #[test]
    fn nerve_leaves_sit_under_services_or_directly_under_the_service() {
        let paths = Paths::new(Layout::Nerve, "/nerve/services");
        assert_eq!(
            paths.node("/nerve/services/web/services/i-1_0000000001"),
            Node::Leaf {
                service: "web",
                name: "i-1_0000000001"
            }
        );
        assert_eq!(
            paths.node("/nerve/services/web/i-1_0000000001"),
            Node::Leaf {
                service: "web",
                name: "i-1_0000000001"
            }
        );
        assert_eq!(
            paths.node("/nerve/services/web/services/i-1_0000000001/child"),
            Node::BelowLeaf("/nerve/services/web/services/i-1_0000000001")
        );
        assert_eq!(
            paths.node("/nerve/services/web/i-1_0000000001/child"),
            Node::BelowLeaf("/nerve/services/web/i-1_0000000001")
        );
        assert_eq!(paths.node("/nerve/services/web/services"), Node::Other);
        assert_eq!(paths.node("/nerve/services/web"), Node::Other);
        assert_eq!(Paths::new(Layout::Nerve, "/").root(), "/nerve/services");
    }

    #[test]
    fn a_leaf_with_children_or_too_much_data_is_skipped() {
        let paths = Paths::new(Layout::Native, "/disco");
        assert!(
            paths
                .parse("web", "w", WEB, 1)
                .unwrap_err()
                .to_string()
                .contains("children")
        );
        let big = vec![b' '; MAX_VALUE + 1];
        assert!(
            paths
                .parse("web", "w", &big, 0)
                .unwrap_err()
                .to_string()
                .contains("64 KiB")
        );
        assert!(paths.parse("web", "w", b"{", 0).is_err());
    }
}
