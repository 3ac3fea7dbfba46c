//! Names as keys: the lowercase wire form of a name, which the snapshot's
//! indexes are keyed by, the answer encoder's compression table and the SRV
//! rotation look names up by, and [`super::packet::Query::name_key`] reads
//! straight off a query; and the offsets of its labels, by which the
//! snapshot walks a key's suffixes. A leaf: it knows only hickory's `Name`.

use std::sync::Arc;

use hickory_proto::rr::Name;

/// A name in lowercase wire format: the key of every index. Shared rather
/// than boxed: the snapshot's persistent maps copy a node of up to 32
/// entries, keys and all, for every change that reaches it, and a boxed
/// key made each of those an allocation and a copy (3% of a change's
/// instructions, bench/heap.rs's churn under callgrind).
pub(crate) type NameKey = Arc<[u8]>;

/// The lowercase wire form of `name`.
pub(crate) fn name_key(name: &Name) -> NameKey {
    let mut key = Vec::with_capacity(name.len() + 1);
    for label in name.iter() {
        key.push(label.len() as u8);
        key.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    key.push(0);
    key.into()
}

/// Offsets of each label in a wire-format name, from the first label to the
/// root (exclusive). Suffix `i` of the name is `name[offsets[i]..]`. A
/// name is at most 255 bytes, so 127 labels; past that (no such name comes
/// from the parser or hickory) the offsets stop rather than overflow.
pub(crate) fn label_offsets(name: &[u8]) -> LabelOffsets {
    let mut offsets = LabelOffsets {
        at: [0; 128],
        len: 0,
    };
    let mut at = 0;
    while at < name.len().min(256) && name[at] != 0 && offsets.len < offsets.at.len() {
        offsets.at[offsets.len] = at as u8;
        offsets.len += 1;
        at += 1 + name[at] as usize;
    }
    offsets
}

/// The label offsets of a name (at most 127 labels fit in 255 bytes).
#[derive(Debug)]
pub(crate) struct LabelOffsets {
    at: [u8; 128],
    len: usize,
}

impl LabelOffsets {
    /// Offsets, leftmost label first.
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.at[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_offsets_walk_the_suffixes() {
        let name = b"\x03web\x05disco\x08internal\x00";
        assert_eq!(label_offsets(name).as_slice(), &[0, 4, 10]);
        assert_eq!(label_offsets(b"\x00").as_slice(), &[] as &[u8]);
    }
}
