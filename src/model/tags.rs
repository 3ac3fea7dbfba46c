//! An instance's tags. Instances repeat a few tag lists (a version, a
//! role, a zone: eighteen lists across a million instances in
//! `bench/heap.rs`), so a list is a shared copy, and so is each tag in it.

use std::ops::Deref;
use std::sync::Arc;

use super::shared::{List, NO_TAGS, shared_tags};

/// Tags, each once, in the order given. Built with `collect()`, which
/// keeps the first of repeated tags; replaced whole rather than edited.
/// Dereferences to the tags as a slice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tags(List<Arc<str>>);

impl Default for Tags {
    fn default() -> Self {
        Tags(NO_TAGS.clone())
    }
}

impl Deref for Tags {
    type Target = [Arc<str>];

    fn deref(&self) -> &[Arc<str>] {
        &self.0
    }
}

impl<S: AsRef<str>> FromIterator<S> for Tags {
    fn from_iter<I: IntoIterator<Item = S>>(tags: I) -> Self {
        let tags: Vec<S> = tags.into_iter().collect();
        let mut once: Vec<&str> = Vec::with_capacity(tags.len());
        for tag in &tags {
            if !once.contains(&tag.as_ref()) {
                once.push(tag.as_ref());
            }
        }
        Tags(shared_tags(&once))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_keep_their_order_once_each_and_lists_are_shared() {
        let tags: Tags = ["v2", "primary", "v2"].into_iter().collect();
        assert_eq!(*tags, ["v2".into(), "primary".into()]);
        let again: Tags = ["v2", "primary"].into_iter().collect();
        assert!(Arc::ptr_eq(&tags.0, &again.0));
        assert!(Tags::default().is_empty());
        let none: Tags = Vec::<String>::new().into_iter().collect();
        assert_eq!(none, Tags::default());
    }
}
