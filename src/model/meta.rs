//! An instance's metadata, kept as the `key=value` strings its TXT answer
//! carries (RFC 1464 style), all of them in one allocation: a million
//! instances with three pairs each would otherwise hold four million small
//! blocks (a slice and a string an entry) where one a instance will do.

use std::fmt;
use std::iter::FusedIterator;
use std::ops::Index;

/// Metadata entries sorted by key, keys unique. Built with `collect()`;
/// replaced whole rather than edited.
///
/// The entries are packed into one string: the number of entries, then
/// for each its key's length, its value's length and its text `key=value`
/// (the key may itself contain `=`). The numbers are written in ASCII
/// bytes, six bits a byte with `0x40` meaning "more follow", so that the
/// whole stays a `str` and each text a slice of it. No metadata is the
/// empty string, which allocates nothing.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Meta(Box<str>);

/// The bit of a length byte that says another byte follows.
const MORE: u8 = 0x40;
/// The payload bits of a length byte.
const BITS: u32 = 6;

/// Appends `n` in the packed form.
fn put_number(packed: &mut String, mut n: usize) {
    loop {
        let low = (n & (MORE as usize - 1)) as u8;
        n >>= BITS;
        if n == 0 {
            packed.push(char::from(low));
            return;
        }
        packed.push(char::from(low | MORE));
    }
}

/// Bytes `n` takes in the packed form.
fn number_len(n: usize) -> usize {
    let bits = usize::BITS - n.leading_zeros();
    (bits.max(1)).div_ceil(BITS) as usize
}

/// Reads a number at `*at`, moving `*at` past it.
fn take_number(packed: &[u8], at: &mut usize) -> usize {
    let (mut n, mut shift) = (0, 0);
    loop {
        let byte = packed[*at];
        *at += 1;
        n |= usize::from(byte & (MORE - 1)) << shift;
        if byte & MORE == 0 {
            return n;
        }
        shift += BITS;
    }
}

impl Meta {
    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        // A handful of entries: a scan, stopping past where `key` would be.
        self.iter()
            .take_while(|(k, _)| *k <= key)
            .find_map(|(k, value)| (k == key).then_some(value))
    }

    /// The entries as `(key, value)`, sorted by key.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.entries().map(|(text, key_len)| {
            let (key, value) = text.split_at(key_len);
            (key, &value[1..])
        })
    }

    /// The entries as `key=value`, sorted by key.
    pub fn texts(&self) -> impl ExactSizeIterator<Item = &str> {
        self.entries().map(|(text, _)| text)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn entries(&self) -> Entries<'_> {
        let mut at = 0;
        let remaining = if self.0.is_empty() {
            0
        } else {
            take_number(self.0.as_bytes(), &mut at)
        };
        Entries {
            packed: &self.0,
            at,
            remaining,
        }
    }
}

/// The packed entries in turn, each as its text and its key's length.
struct Entries<'a> {
    packed: &'a str,
    at: usize,
    remaining: usize,
}

impl<'a> Iterator for Entries<'a> {
    type Item = (&'a str, usize);

    fn next(&mut self) -> Option<(&'a str, usize)> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let bytes = self.packed.as_bytes();
        let key_len = take_number(bytes, &mut self.at);
        let value_len = take_number(bytes, &mut self.at);
        let end = self.at + key_len + 1 + value_len;
        let text = &self.packed[self.at..end];
        self.at = end;
        Some((text, key_len))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Entries<'_> {}

impl FusedIterator for Entries<'_> {}

/// As inserting into a map in turn: of entries with the same key, the last
/// one stays.
impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for Meta {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(entries: I) -> Self {
        let mut entries: Vec<(K, V)> = entries.into_iter().collect();
        if entries.is_empty() {
            return Meta::default();
        }
        // Stable, so equal keys keep their order and the last can win.
        entries.sort_by(|(a, _), (b, _)| a.as_ref().cmp(b.as_ref()));
        entries.dedup_by(|later, kept| {
            let same = later.0.as_ref() == kept.0.as_ref();
            if same {
                std::mem::swap(later, kept);
            }
            same
        });
        let size = number_len(entries.len())
            + (entries.iter())
                .map(|(k, v)| {
                    let (k, v) = (k.as_ref().len(), v.as_ref().len());
                    number_len(k) + number_len(v) + k + 1 + v
                })
                .sum::<usize>();
        let mut packed = String::with_capacity(size);
        put_number(&mut packed, entries.len());
        for (key, value) in &entries {
            let (key, value) = (key.as_ref(), value.as_ref());
            put_number(&mut packed, key.len());
            put_number(&mut packed, value.len());
            packed.push_str(key);
            packed.push('=');
            packed.push_str(value);
        }
        debug_assert_eq!(packed.len(), size);
        Meta(packed.into_boxed_str())
    }
}

impl fmt::Debug for Meta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
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
        assert_eq!(meta.get("zz"), None);
        assert_eq!(meta.len(), 2);
        assert_eq!(meta.texts().len(), 2);
        assert!(Meta::default().is_empty());
        assert_eq!(Meta::default().len(), 0);
        let none: Meta = Vec::<(&str, &str)>::new().into_iter().collect();
        assert_eq!(none, Meta::default());
        assert_eq!(format!("{meta:?}"), r#"{"a=b": "c", "version": "1.5"}"#);
    }

    #[test]
    fn long_and_odd_entries_come_back_whole() {
        let long = "é".repeat(5000);
        let entries: Vec<(String, String)> = (0..70)
            .map(|n| (format!("k{n:02}"), format!("{n}\0={long}")))
            .chain([(String::new(), String::new()), ("=".into(), "=".into())])
            .collect();
        let meta: Meta = entries.iter().cloned().collect();
        let mut sorted = entries.clone();
        sorted.sort();
        assert_eq!(meta.len(), 72);
        assert!(
            meta.iter()
                .eq(sorted.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        );
        assert_eq!(meta.get("k69"), Some(&*format!("69\0={long}")));
        assert_eq!(meta.get(""), Some(""));
        assert_eq!(meta.texts().take(2).collect::<Vec<_>>(), ["=", "==="]);
    }

    #[test]
    fn numbers_pack_into_as_many_bytes_as_they_need() {
        for n in [0, 1, 63, 64, 4095, 4096, 1 << 20, usize::MAX] {
            let mut packed = String::new();
            put_number(&mut packed, n);
            assert!(packed.is_ascii());
            assert_eq!(packed.len(), number_len(n), "{n}");
            let mut at = 0;
            assert_eq!(take_number(packed.as_bytes(), &mut at), n);
            assert_eq!(at, packed.len());
        }
    }
}
