//! Names as keys: the lowercase wire form of a name, which the snapshot's
//! indexes are keyed by, the answer encoder's compression table and the SRV
//! rotation look names up by, and [`super::packet::Query::name_key`] reads
//! straight off a query. A leaf: it knows only hickory's `Name`.

use hickory_proto::rr::Name;

/// A name in lowercase wire format: the key of every index.
pub(crate) type NameKey = Box<[u8]>;

/// The lowercase wire form of `name`.
pub(crate) fn name_key(name: &Name) -> NameKey {
    let mut key = Vec::with_capacity(name.len() + 1);
    for label in name.iter() {
        key.push(label.len() as u8);
        key.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    key.push(0);
    key.into_boxed_slice()
}
