//! An instance's metadata, kept as the `key=value` strings its TXT answer
//! carries (RFC 1464 style): one allocation per entry rather than a key, a
//! value and a map node, which with 100,000 instances adds up.

use std::ops::Index;

/// Metadata entries sorted by key, keys unique. Built with `collect()`;
/// replaced whole rather than edited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta(Box<[Entry]>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    /// `key=value`.
    text: Box<str>,
    /// Where the key ends (the key may itself contain `=`).
    key_len: u32,
}

impl Entry {
    fn key(&self) -> &str {
        &self.text[..self.key_len as usize]
    }

    fn value(&self) -> &str {
        &self.text[self.key_len as usize + 1..]
    }
}

impl Meta {
    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        let at = self.0.binary_search_by(|e| e.key().cmp(key)).ok()?;
        Some(self.0[at].value())
    }

    /// The entries as `(key, value)`, sorted by key.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.0.iter().map(|e| (e.key(), e.value()))
    }

    /// The entries as `key=value`, sorted by key.
    pub fn texts(&self) -> impl ExactSizeIterator<Item = &str> {
        self.0.iter().map(|e| &*e.text)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// As inserting into a map in turn: of entries with the same key, the last
/// one stays.
impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for Meta {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(entries: I) -> Self {
        let mut entries: Vec<Entry> = entries
            .into_iter()
            .map(|(key, value)| {
                let (key, value) = (key.as_ref(), value.as_ref());
                Entry {
                    text: [key, "=", value].concat().into_boxed_str(),
                    key_len: u32::try_from(key.len()).expect("keys are far below 4 GiB"),
                }
            })
            .collect();
        // Stable, so equal keys keep their order and the last can win.
        entries.sort_by(|a, b| a.key().cmp(b.key()));
        entries.dedup_by(|later, kept| {
            let same = later.key() == kept.key();
            if same {
                std::mem::swap(later, kept);
            }
            same
        });
        Meta(entries.into_boxed_slice())
    }
}

impl Index<&str> for Meta {
    type Output = str;

    /// The value under `key`; panics when there is none, as maps do.
    fn index(&self, key: &str) -> &str {
        self.get(key).expect("no entry with that key")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_key_value_strings_sorted_by_key() {
        let meta: Meta = [("version", "1.4"), ("a=b", "c"), ("version", "1.5")]
            .into_iter()
            .collect();
        assert_eq!(meta.texts().collect::<Vec<_>>(), ["a=b=c", "version=1.5"]);
        assert_eq!(
            meta.iter().collect::<Vec<_>>(),
            [("a=b", "c"), ("version", "1.5")]
        );
        assert_eq!(meta.get("a=b"), Some("c"));
        assert_eq!(&meta["version"], "1.5");
        assert_eq!(meta.get("a"), None);
        assert_eq!(meta.len(), 2);
        assert!(Meta::default().is_empty());
    }
}
