//! Answers valid for one version of the snapshot: those that read names
//! whose data can change while the node keeping the answer stays (a zone
//! file's CNAME into the registry, a SkyDNS CNAME or SRV target elsewhere
//! in the zone). Each is computed at most once per version, however many
//! questions ask for it, so its cost follows the rate of changes, not of
//! queries. Reading one takes an atomic load and a reference count: no
//! lock, no allocation.

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwapOption;

use crate::dns::answer::WireAnswer;

/// The answer as of one version: `None` is "no data".
type Held = (u64, Option<Arc<WireAnswer>>);

/// One answer, recomputed when the snapshot's version moves on.
#[derive(Default)]
pub(crate) struct VersionedAnswer {
    held: ArcSwapOption<Held>,
}

impl fmt::Debug for VersionedAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VersionedAnswer")
    }
}

impl VersionedAnswer {
    /// The answer as of `version`: the one held if it was computed for
    /// that version, else `compute()`'s, which is then held. Two threads
    /// meeting a new version may both compute it; either result is right.
    pub(crate) fn get(
        &self,
        version: u64,
        compute: impl FnOnce() -> Option<WireAnswer>,
    ) -> Option<Arc<WireAnswer>> {
        if let Some(held) = &*self.held.load()
            && held.0 == version
        {
            return held.1.clone();
        }
        let answer = compute().map(Arc::new);
        self.held.store(Some(Arc::new((version, answer.clone()))));
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::answer::Sections;
    use hickory_proto::rr::{Name, RecordType};

    #[test]
    fn an_answer_is_computed_once_per_version() {
        let slot = VersionedAnswer::default();
        let mut computed = 0;
        let mut ask = |version| {
            slot.get(version, || {
                computed += 1;
                let name = Name::from_ascii("a.example.").unwrap();
                Some(WireAnswer::encode(
                    &name,
                    RecordType::A,
                    &Sections::default(),
                ))
            })
        };
        let first = ask(1).unwrap();
        let again = ask(1).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        let next = ask(2).unwrap();
        assert!(!Arc::ptr_eq(&first, &next));
        ask(2);
        assert_eq!(computed, 2);
    }
}
