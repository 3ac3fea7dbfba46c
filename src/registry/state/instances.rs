//! One source's instances, found by service and id.
//!
//! A `HashMap<(ServiceName, InstanceId), Arc<Instance>>` would store each
//! key beside the instance that already holds it: 32 bytes more an
//! instance, 3 MB with 100,000. Here the set holds the instances alone,
//! hashed and compared by their service and id, and a lookup borrows a key
//! pair as the same thing through a trait object (the usual way to look a
//! set up by part of its values with std's `HashSet`).

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use foldhash::fast::RandomState;

use crate::model::{Instance, InstanceId, ServiceName};

/// Instances, at most one per service and id. Hashed with foldhash,
/// seeded per process: std's SipHash was a tenth of a cold start at a
/// million instances, each hashed three times (`bench/scale.sh`).
#[derive(Debug, Default, Clone)]
pub(super) struct Instances(HashSet<ById, RandomState>);

impl Instances {
    /// An empty set with room for `capacity` instances.
    pub(super) fn with_capacity(capacity: usize) -> Self {
        Instances(HashSet::with_capacity_and_hasher(
            capacity,
            RandomState::default(),
        ))
    }

    /// The instance with `key`'s service and id.
    pub(super) fn get(&self, key: &dyn Identified) -> Option<&Arc<Instance>> {
        self.0.get(key).map(|stored| &stored.0)
    }

    /// Whether there is an instance with `key`'s service and id.
    pub(super) fn contains(&self, key: &dyn Identified) -> bool {
        self.0.contains(key)
    }

    /// Stores `instance`, returning the one it replaces.
    pub(super) fn insert(&mut self, instance: Arc<Instance>) -> Option<Arc<Instance>> {
        self.0.replace(ById(instance)).map(|old| old.0)
    }

    /// Removes the instance with `key`'s service and id.
    pub(super) fn remove(&mut self, key: &dyn Identified) -> Option<Arc<Instance>> {
        self.0.take(key).map(|old| old.0)
    }

    /// Takes every instance out.
    pub(super) fn drain(&mut self) -> impl Iterator<Item = Arc<Instance>> + '_ {
        self.0.drain().map(|stored| stored.0)
    }

    /// Number of instances.
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Something with a service and an instance id: an instance, or the
/// `(ServiceName, InstanceId)` of one.
pub(super) trait Identified {
    fn identity(&self) -> (&str, &str);
}

impl Identified for (ServiceName, InstanceId) {
    fn identity(&self) -> (&str, &str) {
        (self.0.as_str(), self.1.as_str())
    }
}

impl Identified for Instance {
    fn identity(&self) -> (&str, &str) {
        (self.service.as_str(), self.id.as_str())
    }
}

impl Identified for ById {
    fn identity(&self) -> (&str, &str) {
        self.0.identity()
    }
}

impl Hash for dyn Identified + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.identity().hash(state);
    }
}

impl PartialEq for dyn Identified + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.identity() == other.identity()
    }
}

impl Eq for dyn Identified + '_ {}

/// A stored instance, as the set sees it: its service and id.
#[derive(Debug, Clone)]
struct ById(Arc<Instance>);

impl<'a> Borrow<dyn Identified + 'a> for ById {
    fn borrow(&self) -> &(dyn Identified + 'a) {
        self
    }
}

// Hashed and compared exactly as the borrowed form, as `Borrow` requires.
impl Hash for ById {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self as &dyn Identified).hash(state);
    }
}

impl PartialEq for ById {
    fn eq(&self, other: &Self) -> bool {
        self.identity() == other.identity()
    }
}

impl Eq for ById {}
