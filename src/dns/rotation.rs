//! Rotating an encoded SRV answer per response, on the wire.
//!
//! SRV records differ in length and their targets are written out in full
//! (RFC 2782), so the additional records owned by those targets point into
//! the answer section. A rotation moves the answer records as one block
//! (`rotate_left`), moves the additional records the same way (they are
//! grouped by the answer whose target owns them, in answer order), and
//! rewrites the two-byte owner pointer of each additional record. That is a
//! few `memmove`s and one store per additional record: no re-encoding, and
//! the answers stay encoded once per name and type.
//!
//! Rotated, a truncated UDP answer leaves out different instances each
//! time, and the additional records kept are those of the answers kept.
//!
//! [`super::answer`] plans and applies the rotation; this module sees only
//! bytes, offsets and record slices, and imports nothing of it.

use std::collections::HashMap;

use hickory_proto::rr::{RData, Record, RecordType};

use super::name::name_key;

/// Largest offset a compression pointer reaches.
pub(crate) const POINTER_REACH: usize = 0x3fff;

/// Where the records of an encoded answer are.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout<'a> {
    /// End of the question section.
    pub(crate) question_end: usize,
    /// End offset of every record: answers, authority, additional.
    pub(crate) record_ends: &'a [u32],
    /// Number of answer records.
    pub(crate) answers: usize,
    /// Number of authority records.
    pub(crate) authorities: usize,
}

impl Layout<'_> {
    /// Start offset of record `i`.
    pub(crate) fn start(&self, i: usize) -> usize {
        match i {
            0 => self.question_end,
            _ => self.record_ends[i - 1] as usize,
        }
    }

    /// Length of record `i`.
    pub(crate) fn len(&self, i: usize) -> usize {
        self.record_ends[i] as usize - self.start(i)
    }

    /// Index of the first additional record.
    pub(crate) fn first_additional(&self) -> usize {
        self.answers + self.authorities
    }

    /// Number of additional records.
    pub(crate) fn additionals(&self) -> usize {
        self.record_ends.len() - self.first_additional()
    }
}

/// Which answer an additional record belongs to, and its owner pointer.
#[derive(Debug, Clone, Copy)]
struct Link {
    /// The answer whose SRV target owns the additional record.
    answer: u16,
    /// Where in that answer record the owner pointer points, if it points
    /// there (an owner written out in full needs no rewriting).
    pointer: Option<u16>,
}

/// A rotation applied to one response: the answer and the additional
/// record that come first. `(0, 0)` leaves the order as encoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Rotated {
    pub(crate) answer: usize,
    pub(crate) additional: usize,
}

/// How an SRV answer is rotated: one link per additional record.
#[derive(Debug, Clone)]
pub(crate) struct Rotation {
    links: Box<[Link]>,
}

impl Rotation {
    /// The rotation of an encoded answer, or `None` when it cannot be
    /// rotated this way: fewer than two answers, answers other than SRV,
    /// an authority section, additional records other than the targets'
    /// addresses, or in another order than their answers.
    ///
    /// `answer_records` and `additional_records` are the sections `bytes`
    /// encodes, in order; records past `layout`'s counts (those a message
    /// could not hold) are ignored.
    pub(crate) fn plan(
        bytes: &[u8],
        layout: Layout<'_>,
        answer_records: &[Record],
        additional_records: &[Record],
    ) -> Option<Rotation> {
        let Layout {
            answers,
            authorities,
            ..
        } = layout;
        if answers < 2 || authorities > 0 || answer_records.len() < answers {
            return None;
        }
        let pointer_at = |at: usize| {
            (bytes[at] & 0xc0 == 0xc0)
                .then(|| (u16::from_be_bytes([bytes[at], bytes[at + 1]]) & 0x3fff) as usize)
        };
        let mut targets = HashMap::new();
        for (i, record) in answer_records[..answers].iter().enumerate() {
            let RData::SRV(srv) = &record.data else {
                return None;
            };
            // Owned by the question's name, so moving it breaks nothing,
            // and its target written out in full (after the owner pointer,
            // type, class, TTL, length, priority, weight and port).
            let start = layout.start(i);
            if pointer_at(start).is_none_or(|to| to >= layout.question_end)
                || !written_in_full(bytes, start + 2 + 10 + 6)
            {
                return None;
            }
            targets.entry(name_key(&srv.target)).or_insert(i);
        }
        let mut links = Vec::with_capacity(layout.additionals());
        let additionals = &additional_records[..layout.additionals()];
        for (k, record) in additionals.iter().enumerate() {
            if !matches!(record.record_type(), RecordType::A | RecordType::AAAA) {
                return None;
            }
            let &answer = targets.get(&name_key(&record.name))?;
            let (start, end) = (layout.start(answer), layout.record_ends[answer] as usize);
            // Its owner: a pointer to the target (rewritten when the answer
            // moves), or labels ending in the question's name or the root.
            let owner = layout.start(layout.first_additional() + k);
            let pointer = match pointer_at(owner) {
                Some(to) if to < layout.question_end => None,
                Some(to) if (start..end).contains(&to) => Some((to - start) as u16),
                Some(_) => return None,
                None => match ends_in_pointer(bytes, owner)? {
                    Some(to) if to >= layout.question_end => return None,
                    _ => None,
                },
            };
            links.push(Link {
                answer: answer as u16,
                pointer,
            });
        }
        if !links.is_sorted_by_key(|link| link.answer) {
            return None;
        }
        Some(Rotation {
            links: links.into_boxed_slice(),
        })
    }

    /// Rotates `out` (an encoded answer with `layout`) so that answer
    /// `first` comes first, and its additional records with it.
    /// Pointers that would pass [`POINTER_REACH`] are left as they were:
    /// the caller only rotates such an answer when it is cut to fit below
    /// that, which drops the records they belong to.
    pub(crate) fn rotate(&self, layout: Layout<'_>, first: usize, out: &mut [u8]) -> Rotated {
        if first == 0 {
            return Rotated::default();
        }
        let question_end = layout.question_end;
        let answers_end = layout.start(layout.answers);
        let lead = layout.start(first);
        out[question_end..answers_end].rotate_left(lead - question_end);
        let moved_answer = |i: usize| {
            let start = layout.start(i);
            match i >= first {
                true => question_end + start - lead,
                false => question_end + (answers_end - lead) + (start - question_end),
            }
        };
        let additional = self
            .links
            .partition_point(|link| (link.answer as usize) < first);
        let first_additional = layout.first_additional();
        let additional_start = layout.start(first_additional);
        let additional_end = layout.start(layout.record_ends.len());
        let additional_lead = layout.start(first_additional + additional);
        out[additional_start..additional_end].rotate_left(additional_lead - additional_start);
        for (k, link) in self.links.iter().enumerate() {
            let Some(offset) = link.pointer else {
                continue;
            };
            let start = layout.start(first_additional + k);
            let at = match k >= additional {
                true => additional_start + start - additional_lead,
                false => {
                    additional_start
                        + (additional_end - additional_lead)
                        + (start - additional_start)
                }
            };
            let target = moved_answer(link.answer as usize) + offset as usize;
            if target <= POINTER_REACH {
                out[at..at + 2].copy_from_slice(&(0xc000 | target as u16).to_be_bytes());
            }
        }
        Rotated {
            answer: first,
            additional,
        }
    }

    /// How many additional records the `kept` answers that come first
    /// after `rotated` own: they come first too.
    pub(crate) fn additionals_of(&self, rotated: Rotated, kept: usize, answers: usize) -> usize {
        let before =
            |answer: usize| (self.links).partition_point(|link| (link.answer as usize) < answer);
        let end = rotated.answer + kept;
        if end <= answers {
            before(end) - before(rotated.answer)
        } else {
            (self.links.len() - before(rotated.answer)) + before(end - answers)
        }
    }
}

/// Where the name at `at` ends in a compression pointer to, `Some(None)`
/// when it ends in the root; `None` if it does not end in the message.
fn ends_in_pointer(bytes: &[u8], mut at: usize) -> Option<Option<usize>> {
    loop {
        let len = *bytes.get(at)? as usize;
        match len {
            0 => return Some(None),
            1..=63 => at += 1 + len,
            _ => {
                let low = *bytes.get(at + 1)? as usize;
                return Some(Some((len & 0x3f) << 8 | low));
            }
        }
    }
}

/// Whether the name at `at` has no compression pointer.
fn written_in_full(bytes: &[u8], mut at: usize) -> bool {
    while let Some(&len) = bytes.get(at) {
        match len {
            0 => return true,
            1..=63 => at += 1 + len as usize,
            _ => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::net::Ipv4Addr;

    use hickory_proto::op::Message;
    use hickory_proto::rr::rdata::{A, SRV};
    use hickory_proto::rr::{Name, Record};

    use super::*;
    use crate::dns::answer::{Sections, WireAnswer};
    use crate::dns::packet::Query;

    /// An SRV set of `n` instances with names of different lengths, and an
    /// A record per target in the additional section.
    fn srv_answer(n: usize) -> WireAnswer {
        let owner = Name::from_ascii("web.disco.internal.").unwrap();
        let mut sections = Sections::default();
        for i in 0..n {
            let target = Name::from_ascii(format!("web-{i}.web.disco.internal.")).unwrap();
            let srv = SRV::new(0, 100, 8080, target.clone());
            sections
                .answers
                .push(Record::from_rdata(owner.clone(), 5, RData::SRV(srv)));
            let a = A(Ipv4Addr::new(10, 0, 0, i as u8));
            sections
                .additionals
                .push(Record::from_rdata(target, 5, RData::A(a)));
        }
        WireAnswer::encode(&owner, RecordType::SRV, &sections)
    }

    fn query() -> Vec<u8> {
        let mut p = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        p.extend_from_slice(b"\x03WEB\x05disco\x08internal\x00\x00\x21\x00\x01");
        p
    }

    /// The targets of the answers and the owners of the additional
    /// records of one response, read back by hickory, lowercase (an owner
    /// may end in the question's name, echoed as asked).
    fn read(bytes: &[u8]) -> (Vec<String>, Vec<String>, bool) {
        let message = Message::from_vec(bytes).expect("a well-formed response");
        let targets = (message.answers.iter())
            .map(|r| match &r.data {
                RData::SRV(srv) => srv.target.to_lowercase().to_ascii(),
                other => panic!("not SRV: {other:?}"),
            })
            .collect();
        let owners = message
            .additionals
            .iter()
            .map(|r| r.name.to_lowercase().to_ascii())
            .collect();
        (targets, owners, message.metadata.truncation)
    }

    #[test]
    fn rotated_responses_read_back_whole_with_each_address_at_its_target() {
        let answer = srv_answer(30);
        let packet = query();
        let query = Query::parse(&packet).unwrap();
        let mut firsts = BTreeSet::new();
        let mut out = Vec::new();
        for _ in 0..200 {
            answer
                .write(&query, false, 65_535, usize::MAX, &mut out)
                .unwrap();
            let (targets, owners, truncated) = read(&out);
            assert!(!truncated);
            assert_eq!(targets.len(), 30);
            // Rotated: the order of the encoded set, from another first.
            let first: usize = targets[0][4..targets[0].find('.').unwrap()]
                .parse()
                .unwrap();
            let expected: Vec<String> = (0..30)
                .map(|i| format!("web-{}.web.disco.internal.", (first + i) % 30))
                .collect();
            assert_eq!(targets, expected);
            assert_eq!(owners, targets, "each address follows its answer");
            assert_eq!(
                &out[12..12 + packet.len() - 12],
                &packet[12..],
                "question as asked"
            );
            firsts.insert(first);
        }
        assert!(firsts.len() > 20, "rotations seen: {firsts:?}");
    }

    #[test]
    fn a_cut_keeps_the_additional_records_of_the_answers_kept() {
        let answer = srv_answer(30);
        let packet = query();
        let query = Query::parse(&packet).unwrap();
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for _ in 0..200 {
            // Five answers at most: their five addresses, no TC.
            answer.write(&query, false, 1232, 5, &mut out).unwrap();
            let (targets, owners, truncated) = read(&out);
            assert!(!truncated);
            assert_eq!(targets.len(), 5);
            assert_eq!(owners, targets);
            // 512 bytes: the answers that fit, TC, no additional records.
            answer
                .write(&query, false, 512, usize::MAX, &mut out)
                .unwrap();
            let (targets, owners, truncated) = read(&out);
            assert!(truncated && out.len() <= 512);
            assert!(owners.is_empty());
            seen.extend(targets);
            // Room for every answer and some addresses: the first ones'.
            answer
                .write(&query, false, 1_700, usize::MAX, &mut out)
                .unwrap();
            let (targets, owners, truncated) = read(&out);
            assert!(!truncated && targets.len() == 30 && !owners.is_empty());
            assert_eq!(owners[..], targets[..owners.len()]);
        }
        assert_eq!(seen.len(), 30, "every instance is in some truncated answer");
    }

    #[test]
    fn a_set_past_pointer_reach_rotates_when_cut_to_a_udp_size() {
        // 400 targets: past 16 KiB, where rotated pointers cannot reach.
        let answer = srv_answer(400);
        assert!(answer.wire_len() > POINTER_REACH);
        let packet = query();
        let query = Query::parse(&packet).unwrap();
        let mut out = Vec::new();
        let mut firsts = BTreeSet::new();
        for _ in 0..50 {
            answer.write(&query, false, 1232, 10, &mut out).unwrap();
            let (targets, owners, _) = read(&out);
            assert_eq!((targets.len(), &owners), (10, &targets));
            firsts.insert(targets[0].clone());
        }
        assert!(firsts.len() > 10, "{firsts:?}");
        // Whole over TCP: in the order encoded, every pointer intact.
        answer
            .write(&query, false, 65_535, usize::MAX, &mut out)
            .unwrap();
        let (targets, owners, truncated) = read(&out);
        assert!(!truncated && targets.len() == 400);
        assert_eq!(targets[0], "web-0.web.disco.internal.");
        assert_eq!(owners, targets);
    }

    #[test]
    fn answers_that_cannot_be_rotated_on_the_wire_are_not() {
        // A single record, or answers other than SRV.
        let owner = Name::from_ascii("web.disco.internal.").unwrap();
        let target = Name::from_ascii("web-1.web.disco.internal.").unwrap();
        let srv = SRV::new(0, 100, 8080, target);
        let sections = Sections {
            answers: vec![Record::from_rdata(owner.clone(), 5, RData::SRV(srv))],
            ..Sections::default()
        };
        let encoded = WireAnswer::encode(&owner, RecordType::SRV, &sections);
        assert!(!encoded.rotates());
        assert!(srv_answer(2).rotates());
    }
}
