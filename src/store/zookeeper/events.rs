//! Which leaves a burst of watch events touched, and which of them must be
//! read again. Pure, no I/O.

use std::collections::HashMap;

use zookeeper_client::EventType;

use super::listing::Read;
use super::paths::{Node, Paths};

/// The leaves `events` touched, each once, in the order first touched:
/// those to read, and those whose last event deleted them, which need no
/// read (half the reads of a churn). One read per leaf, made after every
/// event about it has arrived, is enough: it sees the newest state. A leaf
/// deleted and then created again has the creation last, and is read.
pub(super) fn touched_leaves(
    paths: &Paths,
    events: &[(EventType, String)],
) -> (Vec<String>, Vec<(String, Read)>) {
    let mut deleted_last: HashMap<&str, bool> = HashMap::with_capacity(events.len());
    let mut order = Vec::with_capacity(events.len());
    for (kind, path) in events {
        if *kind == EventType::NodeChildrenChanged {
            continue;
        }
        let (leaf, deleted) = match paths.node(path) {
            Node::Leaf { .. } => (path.as_str(), *kind == EventType::NodeDeleted),
            // The leaf itself is still there; its children changed.
            Node::BelowLeaf(leaf) => (leaf, false),
            Node::Other => continue,
        };
        if deleted_last.insert(leaf, deleted).is_none() {
            order.push(leaf);
        }
    }
    let (gone, to_read): (Vec<&str>, Vec<&str>) =
        order.into_iter().partition(|leaf| deleted_last[leaf]);
    (
        to_read.into_iter().map(str::to_owned).collect(),
        gone.into_iter()
            .map(|leaf| (leaf.to_owned(), Read::Gone))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::zookeeper::paths::Layout;
    use EventType::{NodeChildrenChanged, NodeCreated, NodeDataChanged, NodeDeleted};

    fn touched(events: &[(EventType, &str)]) -> (Vec<String>, Vec<String>) {
        let paths = Paths::new(Layout::Native, "/disco");
        let events: Vec<(EventType, String)> =
            events.iter().map(|(k, p)| (*k, p.to_string())).collect();
        let (to_read, gone) = touched_leaves(&paths, &events);
        (to_read, gone.into_iter().map(|(path, _)| path).collect())
    }

    #[test]
    fn a_created_leaf_is_read_once_however_many_events_it_had() {
        let (to_read, gone) = touched(&[
            (NodeCreated, "/disco/services/web/web-1"),
            (NodeDataChanged, "/disco/services/web/web-1"),
            (NodeDataChanged, "/disco/services/web/web-1"),
        ]);
        assert_eq!(to_read, ["/disco/services/web/web-1"]);
        assert!(gone.is_empty());
    }

    #[test]
    fn a_leaf_deleted_last_is_gone_without_a_read() {
        let (to_read, gone) = touched(&[
            (NodeCreated, "/disco/services/web/web-1"),
            (NodeDeleted, "/disco/services/web/web-1"),
        ]);
        assert!(to_read.is_empty());
        assert_eq!(gone, ["/disco/services/web/web-1"]);
    }

    #[test]
    fn a_leaf_created_again_after_its_deletion_is_read() {
        let (to_read, gone) = touched(&[
            (NodeDeleted, "/disco/services/web/web-1"),
            (NodeCreated, "/disco/services/web/web-1"),
        ]);
        assert_eq!(to_read, ["/disco/services/web/web-1"]);
        assert!(gone.is_empty());
    }

    #[test]
    fn a_change_below_a_leaf_rereads_the_leaf_even_when_the_child_is_deleted() {
        let (to_read, gone) = touched(&[(NodeDeleted, "/disco/services/web/web-1/child")]);
        assert_eq!(to_read, ["/disco/services/web/web-1"]);
        assert!(gone.is_empty());
    }

    #[test]
    fn containers_and_children_events_are_not_read() {
        let (to_read, gone) = touched(&[
            (NodeCreated, "/disco/services/web"),
            (NodeChildrenChanged, "/disco/services/web/web-1"),
            (NodeCreated, "/disco/elsewhere/x"),
        ]);
        assert!(to_read.is_empty() && gone.is_empty());
    }

    #[test]
    fn leaves_keep_the_order_first_touched() {
        let (to_read, gone) = touched(&[
            (NodeCreated, "/disco/services/web/b"),
            (NodeCreated, "/disco/services/web/a"),
            (NodeDeleted, "/disco/services/web/d"),
            (NodeDeleted, "/disco/services/web/c"),
        ]);
        assert_eq!(to_read, ["/disco/services/web/b", "/disco/services/web/a"]);
        assert_eq!(gone, ["/disco/services/web/d", "/disco/services/web/c"]);
    }
}
