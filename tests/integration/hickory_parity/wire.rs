//! Responses cut at record boundaries, their names written out, for the
//! comparison with hickory-server's.

use std::fmt::Write as _;

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

/// A response cut at record boundaries, each record with its names written
/// out in full: what both servers say, in order, byte for byte, without the
/// choices each makes in compressing names (RFC 1035 §4.1.4 leaves them
/// free). They differ everywhere: hickory-server copies the question from
/// the request without noting where its names are, so it never points into
/// it, and disco writes the SOA of negative answers uncompressed, to append
/// it anywhere. Pointers are followed, so a wrong one still shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Wire {
    /// ID and flags; the counts are the sections' lengths.
    head: [u8; 4],
    /// The question, as sent.
    question: Vec<u8>,
    pub(super) sections: [Vec<Vec<u8>>; 3],
}

pub(super) const ANSWER: usize = 0;
pub(super) const AUTHORITY: usize = 1;
pub(super) const ADDITIONAL: usize = 2;
const SECTION_NAMES: [&str; 3] = ["answer", "authority", "additional"];

impl Wire {
    /// Cuts `bytes`, which must hold exactly what their header counts.
    pub(super) fn cut(bytes: &[u8]) -> Result<Wire, String> {
        let malformed = || format!("malformed response ({} bytes)", bytes.len());
        let count = |at: usize| u16::from_be_bytes([bytes[at], bytes[at + 1]]) as usize;
        if bytes.len() < 12 || count(4) != 1 {
            return Err(malformed());
        }
        let mut at = expand_name(bytes, 12).ok_or_else(malformed)?.1 + 4;
        let question = bytes.get(12..at).ok_or_else(malformed)?.to_vec();
        let mut sections: [Vec<Vec<u8>>; 3] = Default::default();
        for (section, records) in sections.iter_mut().enumerate() {
            for _ in 0..count(6 + 2 * section) {
                let (record, next) = expand_record(bytes, at).ok_or_else(malformed)?;
                records.push(record);
                at = next;
            }
        }
        if at != bytes.len() {
            return Err(format!("{} bytes after the last record", bytes.len() - at));
        }
        Ok(Wire {
            head: bytes[..4].try_into().unwrap(),
            question,
            sections,
        })
    }
}

/// The name at `at` in `message`, pointers followed, lowercased (names
/// compare case-insensitively, RFC 4343: disco's owner names point into the
/// question and take its case, hickory's are written as stored); and where
/// it ends in place.
fn expand_name(message: &[u8], mut at: usize) -> Option<(Vec<u8>, usize)> {
    let mut name = Vec::new();
    let mut end = None;
    // A name has at most 127 labels; past that, pointers loop.
    for _ in 0..128 {
        let len = *message.get(at)? as usize;
        if len & 0xc0 == 0xc0 {
            end.get_or_insert(at + 2);
            at = (len & 0x3f) << 8 | *message.get(at + 1)? as usize;
            continue;
        }
        name.extend(
            message
                .get(at..at + 1 + len)?
                .iter()
                .map(u8::to_ascii_lowercase),
        );
        at += 1 + len;
        if len == 0 {
            return Some((name, end.unwrap_or(at)));
        }
    }
    None
}

/// The record at `at`, its names expanded (its RDLENGTH to match), and
/// where it ends.
fn expand_record(message: &[u8], at: usize) -> Option<(Vec<u8>, usize)> {
    let (mut record, at) = expand_name(message, at)?;
    let fixed = message.get(at..at + 10)?;
    let rtype = RecordType::from(u16::from_be_bytes([fixed[0], fixed[1]]));
    let rdata_at = at + 10;
    let end = rdata_at + u16::from_be_bytes([fixed[8], fixed[9]]) as usize;
    // Where the names are in the RDATA of the types disco serves: after
    // how many fixed bytes, and how many (RFC 1035 §3.3, RFC 2782).
    let (before, names) = match rtype {
        RecordType::CNAME | RecordType::NS | RecordType::PTR => (0, 1),
        RecordType::MX => (2, 1),
        RecordType::SRV => (6, 1),
        RecordType::SOA => (0, 2),
        _ => (0, 0),
    };
    let mut rdata = message.get(rdata_at..rdata_at + before)?.to_vec();
    let mut next = rdata_at + before;
    for _ in 0..names {
        let (name, after) = expand_name(message, next)?;
        rdata.extend(name);
        next = after;
    }
    rdata.extend_from_slice(message.get(next..end)?);
    record.extend_from_slice(&fixed[..8]);
    record.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    record.extend(rdata);
    Some((record, end))
}

/// The type of a record cut by [`Wire::cut`].
pub(super) fn rtype_of(record: &[u8]) -> RecordType {
    let at = name_end(record);
    RecordType::from(u16::from_be_bytes([record[at], record[at + 1]]))
}

/// Where the owner name of a record cut by [`Wire::cut`] ends.
pub(super) fn name_end(record: &[u8]) -> usize {
    let mut at = 0;
    while record[at] != 0 {
        at += 1 + record[at] as usize;
    }
    at + 1
}

/// Where two cut responses first differ, if they do.
pub(super) fn first_difference(disco: &Wire, hickory: &Wire) -> Option<String> {
    if disco.head != hickory.head {
        return Some(format!(
            "ID and flags {:02x?} != hickory's {:02x?}",
            disco.head, hickory.head
        ));
    }
    if disco.question != hickory.question {
        return Some("the question differs".into());
    }
    for (section, name) in SECTION_NAMES.iter().enumerate() {
        let (ours, theirs) = (&disco.sections[section], &hickory.sections[section]);
        if ours.len() != theirs.len() {
            return Some(format!(
                "{} {name} records, hickory {}",
                ours.len(),
                theirs.len()
            ));
        }
        for (i, (ours, theirs)) in ours.iter().zip(theirs).enumerate() {
            if ours != theirs {
                return Some(format!(
                    "{name} record {i}: {ours:02x?} != hickory's {theirs:02x?}"
                ));
            }
        }
    }
    None
}

/// A response as text, for failure messages.
pub(super) fn describe(bytes: &[u8]) -> String {
    let message = match Message::from_vec(bytes) {
        Ok(message) => message,
        Err(err) => return format!("  unreadable ({err}): {bytes:02x?}\n"),
    };
    let mut text = format!("  {:?}\n", message.metadata);
    let sections = [&message.answers, &message.authorities, &message.additionals];
    for (records, name) in sections.into_iter().zip(SECTION_NAMES) {
        for record in records {
            writeln!(text, "  {name}: {record}").unwrap();
        }
    }
    if let Some(edns) = &message.edns {
        writeln!(text, "  {edns:?}").unwrap();
    }
    text
}
