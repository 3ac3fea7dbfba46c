//! Precomputed answers: a response encoded once per (name, type) with
//! hickory's encoder, then sent many times with only the ID, the flags and the
//! question patched in.

use std::collections::HashMap;

use hickory_proto::ProtoError;
use hickory_proto::op::{Message, Query as HickoryQuery, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

use super::name::{NameKey, name_key};
use super::packet::{Query, Rcode, push_opt, response_flags};
use super::rotation::{Layout, POINTER_REACH, Rotated, Rotation};

type ProtoResult<T> = Result<T, ProtoError>;

/// Largest DNS message (the TCP length prefix is 16 bits).
pub const MAX_MESSAGE: usize = 65_535;

/// A response in wire format, ready to send after patching.
#[derive(Debug, Clone)]
pub struct WireAnswer {
    /// Header (ID zero), the question as lowercase, then the records.
    bytes: Box<[u8]>,
    question_end: usize,
    /// End offset of every record, answers then authority then additional.
    record_ends: Box<[u32]>,
    answers: u16,
    authorities: u16,
    /// When every answer record has the same length (A and AAAA sets), that
    /// length: the answer records are shuffled per response by swapping
    /// fixed-size chunks, which keeps every compression pointer valid
    /// because they all point into the question.
    shuffle_stride: usize,
    /// Whether the answer section ends in a CNAME: for any type but CNAME
    /// (a lone CNAME answers every type), a chain whose end disco does not
    /// have, which the forwarder may complete (`forward::cname`).
    ends_in_cname: bool,
    /// How an SRV answer is rotated per response, when it can be.
    rotation: Option<Rotation>,
}

/// Why a stored answer was not written: it is not for the question asked.
/// Every lookup should make this impossible (the snapshot is looked up by
/// the question's own name); the writer checks rather than assumes,
/// because the bytes it patches in come from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the stored answer's question is not the question asked")]
pub struct NotThisQuestion;

/// The sections of an answer, as hickory records.
#[derive(Debug, Default)]
pub struct Sections {
    /// Answer section.
    pub answers: Vec<Record>,
    /// Authority section.
    pub authorities: Vec<Record>,
    /// Additional section.
    pub additionals: Vec<Record>,
    /// Whether the answer records may be shuffled per response.
    pub shuffle: bool,
    /// Response code.
    pub rcode: Rcode,
}

impl WireAnswer {
    /// Encodes an authoritative answer to `qname`/`qtype`. Records past what
    /// a DNS message can hold (64 KiB) are left out.
    pub fn encode(qname: &Name, qtype: RecordType, sections: &Sections) -> WireAnswer {
        let mut bytes = Vec::with_capacity(512);
        let mut record_ends = Vec::new();
        let mut counts = [0u16; 3];
        let question_end;
        {
            let mut encoder = BinEncoder::new(&mut bytes);
            // Header placeholder: flags and counts are written below.
            encoder.emit_vec(&[0; 12]).expect("a Vec grows");
            HickoryQuery::query(qname.to_lowercase(), qtype)
                .emit(&mut encoder)
                .expect("a valid name encodes");
            question_end = encoder.offset();
            let sections = [
                &sections.answers,
                &sections.authorities,
                &sections.additionals,
            ];
            let mut known = HashMap::from([(name_key(qname), 12u16)]);
            'all: for (section, records) in sections.into_iter().enumerate() {
                for record in records {
                    if emit_record(&mut encoder, record, &mut known).is_err()
                        || encoder.offset() > MAX_MESSAGE
                    {
                        break 'all;
                    }
                    record_ends.push(encoder.offset() as u32);
                    counts[section] += 1;
                }
            }
        }
        // Drop whatever a record that did not fit left behind.
        bytes.truncate(record_ends.last().map_or(question_end, |&end| end as usize));
        let shuffle_stride = if sections.shuffle && counts[0] > 1 {
            let first = record_ends[0] as usize - question_end;
            let uniform = (1..counts[0] as usize)
                .all(|i| (record_ends[i] - record_ends[i - 1]) as usize == first);
            if uniform { first } else { 0 }
        } else {
            0
        };
        let flags = [0x84, sections.rcode as u8]; // QR, AA
        bytes[2..4].copy_from_slice(&flags);
        bytes[4..6].copy_from_slice(&1u16.to_be_bytes());
        for (i, count) in counts.iter().enumerate() {
            bytes[6 + 2 * i..8 + 2 * i].copy_from_slice(&count.to_be_bytes());
        }
        let ends_in_cname =
            (sections.answers.last()).is_some_and(|r| r.record_type() == RecordType::CNAME);
        let layout = Layout {
            question_end,
            record_ends: &record_ends,
            answers: counts[0] as usize,
            authorities: counts[1] as usize,
        };
        let rotation = Rotation::plan(&bytes, layout, &sections.answers, &sections.additionals);
        WireAnswer {
            bytes: bytes.into_boxed_slice(),
            question_end,
            record_ends: record_ends.into_boxed_slice(),
            answers: counts[0],
            authorities: counts[1],
            shuffle_stride,
            ends_in_cname,
            rotation,
        }
    }

    fn layout(&self) -> Layout<'_> {
        Layout {
            question_end: self.question_end,
            record_ends: &self.record_ends,
            answers: self.answers as usize,
            authorities: self.authorities as usize,
        }
    }

    /// Its records, read back: for an answer that continues another, as
    /// when a zone file's CNAME points at a registered name.
    pub fn sections(&self) -> Sections {
        let message = Message::from_vec(&self.bytes).expect("encoded by `WireAnswer::encode`");
        Sections {
            answers: message.answers,
            authorities: message.authorities,
            additionals: message.additionals,
            shuffle: self.shuffle_stride > 0,
            rcode: match message.metadata.response_code {
                ResponseCode::NXDomain => Rcode::NxDomain,
                _ => Rcode::NoError,
            },
        }
    }

    /// Whether the answer section ends in a CNAME: asked for another type,
    /// a chain whose end someone else may know.
    pub fn ends_in_cname(&self) -> bool {
        self.ends_in_cname
    }

    /// Its length on the wire, as encoded.
    pub fn wire_len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether its records are rotated per response (SRV sets).
    pub fn rotates(&self) -> bool {
        self.rotation.is_some()
    }

    /// Number of records in the answer section.
    pub fn answer_count(&self) -> usize {
        self.answers as usize
    }

    /// Writes the response to `query` into `out`, at most `limit` bytes
    /// and `max_answers` answer records: A and AAAA records shuffled, SRV
    /// records rotated. Additional records that do not fit are dropped (RFC
    /// 2181 §9); when the answer itself does not fit, as many answer records
    /// as fit are sent with TC set, so the client retries over TCP. Answers
    /// past `max_answers` are left out without TC, with their additional
    /// records (`--udp-answer-limit`). Writes nothing when the answer's
    /// name is not the question's (see [`NotThisQuestion`]).
    pub fn write(
        &self,
        query: &Query<'_>,
        recursion_available: bool,
        limit: usize,
        max_answers: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), NotThisQuestion> {
        out.clear();
        // The question is echoed as asked, over the stored lowercase one:
        // it must be the same name (so the same length, which keeps every
        // compression pointer into it valid).
        let asked = query.question_bytes();
        let stored = self.bytes.get(12..self.question_end).unwrap_or_default();
        let name_len = query.name_key().len();
        if asked.len() != stored.len()
            || name_len > stored.len()
            || !asked[..name_len].eq_ignore_ascii_case(&stored[..name_len])
        {
            return Err(NotThisQuestion);
        }
        let opt_len = query.edns.map_or(0, |edns| edns.reply().record_len());
        let room = limit.min(MAX_MESSAGE) - opt_len;
        let rcode = match self.bytes[3] & 0x0f {
            3 => Rcode::NxDomain,
            _ => Rcode::NoError,
        };
        out.extend_from_slice(&self.bytes);
        out[..2].copy_from_slice(&query.id().to_be_bytes());
        out[2..4].copy_from_slice(&response_flags(
            query.packet(),
            true,
            recursion_available,
            rcode,
        ));
        out[12..self.question_end].copy_from_slice(asked);
        if self.shuffle_stride > 0 {
            shuffle_chunks(
                &mut out[self.question_end..self.record_ends[self.answers as usize - 1] as usize],
                self.shuffle_stride,
            );
        }
        let mut rotated = Rotated::default();
        if let Some(rotation) = &self.rotation
            && (room <= POINTER_REACH || self.bytes.len() <= POINTER_REACH)
        {
            let first = fast_random(self.answers as usize);
            rotated = rotation.rotate(self.layout(), first, out);
        }
        if out.len() > room || self.answers as usize > max_answers {
            self.cut(out, room, max_answers, rotated);
        }
        if let Some(edns) = query.edns {
            push_opt(out, edns.reply());
        }
        Ok(())
    }

    /// Keeps the records that fit in `room`, at most `max_answers` answer
    /// records, in the order `rotated` left them.
    fn cut(&self, out: &mut Vec<u8>, room: usize, max_answers: usize, rotated: Rotated) {
        let layout = self.layout();
        let (answers, authorities) = (layout.answers, layout.authorities);
        let additionals = layout.additionals();
        let wanted = answers.min(max_answers);
        let mut end = self.question_end;
        let mut kept = 0;
        while kept < wanted {
            let len = layout.len((rotated.answer + kept) % answers);
            if end + len > room {
                break;
            }
            end += len;
            kept += 1;
        }
        let authority_len = layout.start(answers + authorities) - layout.start(answers);
        let limited = kept < answers;
        if kept < wanted || (!limited && end + authority_len > room) {
            out.truncate(end);
            out[2] |= 0x02; // TC
            self.set_counts(out, [kept, 0, 0]);
            return;
        }
        let mut counts = [kept, authorities, 0];
        if limited {
            // Left out by `max_answers`: the other answers, and the
            // authority records, which may name them.
            out.drain(end..layout.start(answers + authorities));
            counts[1] = 0;
        } else {
            end += authority_len;
        }
        // The additional records of the answers kept come first.
        let candidates = match &self.rotation {
            _ if !limited => additionals,
            Some(rotation) => rotation.additionals_of(rotated, kept, answers),
            None => 0,
        };
        let first_additional = layout.first_additional();
        while counts[2] < candidates {
            let len = layout.len(first_additional + (rotated.additional + counts[2]) % additionals);
            if end + len > room {
                break;
            }
            end += len;
            counts[2] += 1;
        }
        out.truncate(end);
        self.set_counts(out, counts);
    }

    fn set_counts(&self, out: &mut [u8], counts: [usize; 3]) {
        for (i, count) in counts.into_iter().enumerate() {
            out[6 + 2 * i..8 + 2 * i].copy_from_slice(&(count as u16).to_be_bytes());
        }
    }
}

/// Emits a record as hickory's `Record::emit` does, except that owner names
/// seen before (the question, SRV targets) become pointers to them. hickory
/// stops compressing after 120 names per message (a defence that costs
/// nothing in a precomputed answer), which would leave 2,000 A records at
/// 34 bytes each instead of 16: more than a TCP message can carry.
fn emit_record(
    encoder: &mut BinEncoder<'_>,
    record: &Record,
    known: &mut HashMap<NameKey, u16>,
) -> ProtoResult<()> {
    let owner = name_key(&record.name);
    match known.get(&owner) {
        Some(&at) => encoder.emit_u16(0xc000 | at)?,
        None => {
            let at = encoder.offset();
            record.name.emit(encoder)?;
            remember(known, owner, at, encoder);
        }
    }
    record.record_type().emit(encoder)?;
    record.dns_class.emit(encoder)?;
    encoder.emit_u32(record.ttl)?;
    let length = encoder.place::<u16>()?;
    let rdata_at = encoder.offset();
    record.data.emit(encoder)?;
    if let RData::SRV(srv) = &record.data {
        // The target is written whole (RFC 2782 forbids compressing it), so
        // the address records that follow can point at it.
        remember(known, name_key(&srv.target), rdata_at + 6, encoder);
    }
    let len = encoder.len_since_place(&length);
    length.replace(encoder, len as u16)
}

/// Records where a name was written in full, if a pointer can reach it.
fn remember(known: &mut HashMap<NameKey, u16>, name: NameKey, at: usize, encoder: &BinEncoder<'_>) {
    let written_in_full = encoder
        .slice_of(at, at + 1)
        .first()
        .is_some_and(|b| b & 0xc0 == 0);
    if at < 0x3fff && written_in_full {
        known.entry(name).or_insert(at as u16);
    }
}

/// Fisher–Yates over fixed-size chunks, with a cheap thread-local generator:
/// this spreads load, it is not a secret.
fn shuffle_chunks(records: &mut [u8], stride: usize) {
    let count = records.len() / stride;
    for i in (1..count).rev() {
        let j = fast_random(i + 1);
        if i != j {
            let (low, high) = records.split_at_mut(i * stride);
            low[j * stride..(j + 1) * stride].swap_with_slice(&mut high[..stride]);
        }
    }
}

fn fast_random(below: usize) -> usize {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(rand::random::<u64>() | 1);
    }
    STATE.with(|state| {
        // xorshift64*
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        ((x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as usize) % below
    })
}
