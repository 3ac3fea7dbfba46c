//! One copy of each short label and each list of them that many instances
//! repeat: service names, port names, tags, whole tag lists and port maps. A million
//! instances tagged `v2`, `primary`, `az-a` with ports `http` and
//! `metrics` would otherwise hold five million small blocks for what is a
//! few dozen distinct values; here an instance holds two pointers to
//! shared lists.
//!
//! Shared by the whole process, so that every parser, whatever the store
//! or the source, gets the same copies without being handed a table. It
//! cannot grow without bound under churn: once a table has doubled since
//! it was last pruned, it drops the values no one else holds.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};

use foldhash::fast::RandomState;

/// A table below this size is never pruned: a small table costs nothing.
const SMALLEST_PRUNE: usize = 64;

/// The process's shared copies.
static SHARED: LazyLock<Mutex<Shared>> = LazyLock::new(Mutex::default);

/// A shared list, one pointer wide rather than a slice's two: an instance
/// holds two (its tags, its ports), and the 16 bytes saved take an
/// `Arc<Instance>` from mimalloc's 160-byte size class to its 128-byte one.
pub(super) type List<E> = Arc<Box<[E]>>;

/// A port map's entries: each name, shared, with its port.
pub(super) type Port = (Arc<str>, u16);

/// The empty tag list and port map, which every instance without any
/// shares without taking the lock.
pub(super) static NO_TAGS: LazyLock<List<Arc<str>>> = LazyLock::new(|| Arc::new(Box::new([])));
pub(super) static NO_PORTS: LazyLock<List<Port>> = LazyLock::new(|| Arc::new(Box::new([])));

#[derive(Debug, Default)]
struct Shared {
    labels: Table<str, Arc<str>>,
    service_names: Table<str, Thin<str>>,
    tag_lists: Table<[Arc<str>], Thin<[Arc<str>]>>,
    port_maps: Table<[Port], Thin<[Port]>>,
}

fn tables() -> MutexGuard<'static, Shared> {
    // A std Mutex: nothing awaits while it is held, and it is held for a
    // few lookups.
    SHARED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The shared copy of `label`.
#[cfg(test)]
pub(super) fn shared_label(label: &str) -> Arc<str> {
    tables().labels.get(label)
}

/// The shared copy of the service name `name`, one pointer wide.
pub(super) fn shared_service_name(name: &str) -> Arc<Box<str>> {
    tables().service_names.get(name).0
}

/// The shared copy of the tag list `tags` (in this order).
pub(super) fn shared_tags(tags: &[&str]) -> List<Arc<str>> {
    if tags.is_empty() {
        return NO_TAGS.clone();
    }
    let shared = &mut *tables();
    let labels: Vec<Arc<str>> = tags.iter().map(|tag| shared.labels.get(tag)).collect();
    shared.tag_lists.get(&labels).0
}

/// The shared copy of the port map `ports` (sorted by name).
pub(super) fn shared_ports(ports: &[(&str, u16)]) -> List<Port> {
    if ports.is_empty() {
        return NO_PORTS.clone();
    }
    let shared = &mut *tables();
    let named: Vec<Port> = (ports.iter())
        .map(|(name, port)| (shared.labels.get(name), *port))
        .collect();
    shared.port_maps.get(&named).0
}

/// How a table holds a value of type `T` and hands out copies of it.
trait Handle<T: ?Sized>: Borrow<T> + Hash + Eq + Clone {
    /// A new shared copy of `value`.
    fn new(value: &T) -> Self;

    /// Whether anyone but the table holds it.
    fn held_elsewhere(&self) -> bool;
}

impl Handle<str> for Arc<str> {
    fn new(value: &str) -> Self {
        value.into()
    }

    fn held_elsewhere(&self) -> bool {
        Arc::strong_count(self) > 1
    }
}

/// A shared value one pointer wide, as its table sees it: its contents.
#[derive(Debug)]
struct Thin<T: ?Sized>(Arc<Box<T>>);

impl<T: ?Sized> Clone for Thin<T> {
    fn clone(&self) -> Self {
        Thin(self.0.clone())
    }
}

impl<T: ?Sized> Borrow<T> for Thin<T> {
    fn borrow(&self) -> &T {
        &self.0
    }
}

// Hashed and compared exactly as the borrowed form, as `Borrow` requires.
impl<T: ?Sized + Hash> Hash for Thin<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (**self.0).hash(state);
    }
}

impl<T: ?Sized + PartialEq> PartialEq for Thin<T> {
    fn eq(&self, other: &Self) -> bool {
        **self.0 == **other.0
    }
}

impl<T: ?Sized + Eq> Eq for Thin<T> {}

impl<T: ?Sized + Hash + Eq> Handle<T> for Thin<T>
where
    for<'a> Box<T>: From<&'a T>,
{
    fn new(value: &T) -> Self {
        Thin(Arc::new(value.into()))
    }

    fn held_elsewhere(&self) -> bool {
        Arc::strong_count(&self.0) > 1
    }
}

/// A table of shared values of type `T`, each held as an `H`, pruned as
/// it grows.
#[derive(Debug)]
struct Table<T: ?Sized, H> {
    /// foldhash, seeded per process: a registration's names are hashed
    /// several times a parse, and SipHash took a fifth of it.
    values: HashSet<H, RandomState>,
    /// The size at which the next insertion prunes first.
    prune_at: usize,
    held: PhantomData<fn(&T)>,
}

impl<T: ?Sized, H> Default for Table<T, H> {
    fn default() -> Self {
        Table {
            values: HashSet::default(),
            prune_at: SMALLEST_PRUNE,
            held: PhantomData,
        }
    }
}

impl<T: ?Sized + Hash + Eq, H: Handle<T>> Table<T, H> {
    fn get(&mut self, value: &T) -> H {
        if let Some(shared) = self.values.get(value) {
            return shared.clone();
        }
        if self.values.len() >= self.prune_at {
            // Held by the table alone: no instance has it any more.
            self.values.retain(H::held_elsewhere);
            self.prune_at = (self.values.len() * 2).max(SMALLEST_PRUNE);
        }
        let shared = H::new(value);
        self.values.insert(shared.clone());
        shared
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_is_shared_while_held_and_pruned_once_not() {
        let mut table = Table::<str, Arc<str>>::default();
        let http = table.get("http");
        assert!(Arc::ptr_eq(&http, &table.get("http")));
        // Churn of labels no one keeps: the table stays within twice what
        // is held, and what is held stays shared.
        for n in 0..10_000 {
            table.get(&format!("churn{n}"));
            assert!(table.values.len() <= SMALLEST_PRUNE + 1);
        }
        assert!(Arc::ptr_eq(&http, &table.get("http")));
        let kept: Vec<Arc<str>> = (0..1000).map(|n| table.get(&format!("kept{n}"))).collect();
        for n in 0..10_000 {
            table.get(&format!("more{n}"));
            assert!(table.values.len() <= 2 * (kept.len() + 1) + 1);
        }
        assert!(Arc::ptr_eq(&kept[7], &table.get("kept7")));
    }

    #[test]
    fn lists_are_shared_whole_and_their_labels_one_by_one() {
        assert!(Arc::ptr_eq(
            &shared_label("metrics"),
            &shared_label("metrics")
        ));
        let tags = shared_tags(&["v2", "primary"]);
        assert!(Arc::ptr_eq(&tags, &shared_tags(&["v2", "primary"])));
        assert!(!Arc::ptr_eq(&tags, &shared_tags(&["primary", "v2"])));
        let other = shared_tags(&["v3", "primary"]);
        assert!(Arc::ptr_eq(&tags[1], &other[1]), "one copy of \"primary\"");
        let ports = shared_ports(&[("http", 80), ("metrics", 9100)]);
        assert!(Arc::ptr_eq(
            &ports,
            &shared_ports(&[("http", 80), ("metrics", 9100)])
        ));
        assert!(!Arc::ptr_eq(
            &ports,
            &shared_ports(&[("http", 81), ("metrics", 9100)])
        ));
        assert!(Arc::ptr_eq(&ports[1].0, &shared_label("metrics")));
        assert!(shared_tags(&[]).is_empty() && shared_ports(&[]).is_empty());
    }
}
