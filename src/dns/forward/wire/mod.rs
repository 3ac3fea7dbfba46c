//! The forwarder's wire work, by hand: reading a client's question, taking
//! an upstream's response apart once (where its TTLs are, how long it may be
//! cached), and writing it out for each client with the ID, flags, question
//! and TTLs patched in place.
//!
//! Hand-written rather than a hickory parse and re-encode per answer because
//! that is what the cache-hit path costs: `bench/forward.sh` measures it
//! against unbound and dnsmasq. Every read is bounds-checked; nothing an
//! upstream or a client sends can panic here (`fuzz/` feeds both).

use crate::dns::packet::{
    EDNS_UDP_PAYLOAD, MAX_NAME_LEN, OPT_RECORD_LEN, ReplyOpt, push_opt, skip_name,
};

/// DNS header length.
pub const HEADER_LEN: usize = 12;
/// Longest cache key: a name, its type and class, and the DO and CD bits.
pub const MAX_KEY_LEN: usize = MAX_NAME_LEN + 5;
/// TTL of every record in a stale answer (RFC 8767 §4 suggests 30 s).
pub const STALE_TTL: u32 = 30;

const TYPE_OPT: u16 = 41;
const TYPE_SOA: u16 = 6;
const RCODE_NOERROR: u8 = 0;
const RCODE_NXDOMAIN: u8 = 3;
const FLAG_QR: u8 = 0x80;
const FLAG_TC: u8 = 0x02;
/// Header byte 3: RA, AD, CD.
const FLAG_RA: u8 = 0x80;
const FLAG_AD: u8 = 0x20;
const FLAG_CD: u8 = 0x10;

/// What the forwarder needs of a client's query. Borrows the packet; the
/// cache key is built, lowercased, in an inline buffer (no allocation).
#[derive(Debug)]
pub struct ClientQuery<'a> {
    packet: &'a [u8],
    question_end: usize,
    key: [u8; MAX_KEY_LEN],
    key_len: usize,
    /// Whether the query had an OPT record (then so has the response).
    pub edns: bool,
    /// The OPT record's DNSSEC OK bit.
    pub dnssec_ok: bool,
    /// The header's CD bit: the client validates itself and wants what
    /// the upstream has even where it fails validation (RFC 4035 §3.2.2).
    pub checking_disabled: bool,
    /// The largest response it accepts over UDP: 512, or its EDNS size up
    /// to the 1232 disco advertises.
    pub udp_limit: usize,
}

impl<'a> ClientQuery<'a> {
    /// Reads the header, the single question and the OPT record of `packet`;
    /// None if they cannot be read.
    pub fn parse(packet: &'a [u8]) -> Option<Self> {
        if packet.len() < HEADER_LEN || count(packet, 4)? != 1 {
            return None;
        }
        let mut key = [0u8; MAX_KEY_LEN];
        let mut at = HEADER_LEN;
        loop {
            let len = usize::from(*packet.get(at)?);
            if len & 0xc0 != 0 || at + 1 + len - HEADER_LEN > MAX_NAME_LEN {
                return None;
            }
            at += 1 + len;
            if len == 0 {
                break;
            }
        }
        let name_len = at - HEADER_LEN;
        let fixed = packet.get(at..at + 4)?;
        key[..name_len].copy_from_slice(&packet[HEADER_LEN..at]);
        key[..name_len].make_ascii_lowercase();
        key[name_len..name_len + 4].copy_from_slice(fixed);
        let question_end = at + 4;
        let (edns, dnssec_ok, udp_limit) = match read_opt(packet, question_end) {
            Some((size, ttl)) => (
                true,
                ttl & 0x8000 != 0,
                usize::from(size.clamp(512, EDNS_UDP_PAYLOAD)),
            ),
            None => (false, false, 512),
        };
        // Both bits change what an upstream answers (RFC 4035 §3.2.2: with
        // CD set a validating upstream returns data that fails validation,
        // which must never reach a client that left CD clear).
        let checking_disabled = packet[3] & FLAG_CD != 0;
        key[name_len + 4] = u8::from(dnssec_ok) | u8::from(checking_disabled) << 1;
        Some(ClientQuery {
            packet,
            question_end,
            key,
            key_len: name_len + 5,
            edns,
            dnssec_ok,
            checking_disabled,
            udp_limit,
        })
    }

    /// The cache key: lowercased name, type, class, DO and CD bits.
    pub fn key(&self) -> &[u8] {
        &self.key[..self.key_len]
    }

    /// The question, lowercased, as it goes upstream.
    pub fn lowercase_question(&self) -> &[u8] {
        &self.key[..self.key_len - 1]
    }

    /// The question section exactly as the client sent it.
    pub fn question(&self) -> &'a [u8] {
        &self.packet[HEADER_LEN..self.question_end]
    }

    /// The query type.
    pub fn qtype(&self) -> u16 {
        let at = self.key_len - 5;
        u16::from_be_bytes([self.key[at], self.key[at + 1]])
    }

    /// The whole packet.
    pub fn packet(&self) -> &'a [u8] {
        self.packet
    }
}

/// An upstream response taken apart once: ready to be written for any
/// client asking the same question, and to be cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The message with ID 0, the question lowercased, no OPT record, and
    /// every TTL capped (negative SOAs at their minimum).
    bytes: Box<[u8]>,
    /// Offset of every record's TTL field.
    ttl_at: Box<[u16]>,
    /// End of the answer and authority sections: where additional records
    /// start, the first thing dropped when a response must shrink.
    complete_end: usize,
    question_end: usize,
    /// How long it may be served as fresh, in seconds; 0: not cacheable.
    pub lifetime: u32,
    /// Whether it is a negative answer (NXDOMAIN or NODATA).
    pub negative: bool,
}

impl Prepared {
    /// Takes `response` apart, if it is a response to `question` (lowercase
    /// wire question, compared without regard to case) that disco can relay
    /// as it is. TTLs are capped at `max_ttl`. None when the bytes do not
    /// read as a DNS message, or carry an OPT record anywhere but last (the
    /// caller then re-encodes the message).
    pub fn new(response: &[u8], question: &[u8], max_ttl: u32) -> Option<Self> {
        if response.len() < HEADER_LEN || response[2] & FLAG_QR == 0 || count(response, 4)? != 1 {
            return None;
        }
        let question_end = HEADER_LEN + question.len();
        let theirs = response.get(HEADER_LEN..question_end)?;
        if !same_question(theirs, question) {
            return None;
        }
        let mut bytes = response.to_vec();
        bytes[..2].copy_from_slice(&[0, 0]);
        bytes[HEADER_LEN..question_end].copy_from_slice(question);
        let (answers, authorities, additionals) =
            (count(&bytes, 6)?, count(&bytes, 8)?, count(&bytes, 10)?);
        let mut ttl_at = Vec::with_capacity(answers + authorities + additionals);
        let mut at = question_end;
        let mut complete_end = question_end;
        let mut lifetime = u32::MAX;
        let mut has_soa = false;
        let mut opt = None;
        for index in 0..answers + authorities + additionals {
            let record = skip_record(&bytes, at)?;
            if opt.is_some() {
                // Something after the OPT record: not taken as it is.
                return None;
            }
            let in_additional = index >= answers + authorities;
            if record.rtype == TYPE_OPT {
                if !in_additional {
                    return None;
                }
                opt = Some(at);
                at = record.end;
                continue;
            }
            let mut ttl = record.ttl(&bytes).min(max_ttl);
            if record.rtype == TYPE_SOA && !in_additional && index >= answers {
                // RFC 2308 §5: a negative answer lives min(TTL, MINIMUM).
                let minimum = bytes.get(record.end - 4..record.end)?;
                ttl = ttl.min(u32::from_be_bytes(minimum.try_into().ok()?));
                has_soa = true;
            }
            bytes[record.ttl_at..record.ttl_at + 4].copy_from_slice(&ttl.to_be_bytes());
            ttl_at.push(u16::try_from(record.ttl_at).ok()?);
            if !in_additional {
                lifetime = lifetime.min(ttl);
                complete_end = record.end;
            }
            at = record.end;
        }
        if let Some(start) = opt {
            bytes.truncate(start);
            let kept = u16::try_from(additionals - 1).ok()?;
            bytes[10..12].copy_from_slice(&kept.to_be_bytes());
        } else {
            bytes.truncate(at);
        }
        let rcode = bytes[3] & 0x0f;
        let negative = answers == 0;
        let cacheable = matches!(rcode, RCODE_NOERROR | RCODE_NXDOMAIN)
            && bytes[2] & FLAG_TC == 0
            // RFC 2308 §5: a negative answer without an SOA is not cached.
            && (!negative || has_soa);
        Some(Prepared {
            bytes: bytes.into_boxed_slice(),
            ttl_at: ttl_at.into_boxed_slice(),
            complete_end,
            question_end,
            lifetime: if cacheable && lifetime != u32::MAX {
                lifetime
            } else {
                0
            },
            negative,
        })
    }

    /// The response code.
    pub fn rcode(&self) -> u8 {
        self.bytes[3] & 0x0f
    }

    /// The message as stored: ID 0, lowercase question, no OPT.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Writes the response for `client` into `out`, at most `limit` bytes:
    /// its ID, RD and CD bits, its question as asked, RA set, AA clear, every
    /// TTL lowered by `age` seconds (or set to [`STALE_TTL`] when `stale`),
    /// an OPT record if the client sent one. When it does not fit, the
    /// additional records go first (RFC 2181 §9), then everything but the
    /// question, with TC set so that the client retries over TCP.
    pub fn write(
        &self,
        client: &ClientQuery<'_>,
        age: u32,
        stale: bool,
        limit: usize,
        out: &mut Vec<u8>,
    ) {
        out.clear();
        out.extend_from_slice(&self.bytes);
        let packet = client.packet();
        out[..2].copy_from_slice(&packet[..2]);
        // QR, the opcode and RD from the query, TC from the upstream; AA
        // clear: disco is not the authority for what it relays.
        out[2] = FLAG_QR | (packet[2] & 0x79) | (self.bytes[2] & FLAG_TC);
        let ad = if client.dnssec_ok || packet[3] & FLAG_AD != 0 {
            self.bytes[3] & FLAG_AD
        } else {
            0
        };
        out[3] = FLAG_RA | ad | (packet[3] & FLAG_CD) | self.rcode();
        out[HEADER_LEN..self.question_end].copy_from_slice(client.question());
        for &at in self.ttl_at.iter() {
            let at = usize::from(at);
            let field = &mut out[at..at + 4];
            let ttl = if stale {
                STALE_TTL
            } else {
                u32::from_be_bytes([field[0], field[1], field[2], field[3]]).saturating_sub(age)
            };
            field.copy_from_slice(&ttl.to_be_bytes());
        }
        let room = limit.saturating_sub(if client.edns { OPT_RECORD_LEN } else { 0 });
        if out.len() > room {
            if self.complete_end <= room {
                out.truncate(self.complete_end);
                out[10..12].copy_from_slice(&[0, 0]);
            } else {
                out.truncate(self.question_end);
                out[2] |= FLAG_TC;
                out[6..12].copy_from_slice(&[0; 6]);
            }
        }
        if client.edns {
            push_opt(
                out,
                ReplyOpt {
                    extended_rcode: 0,
                    dnssec_ok: client.dnssec_ok,
                    cookie: None,
                },
            );
        }
    }
}

/// Whether two wire questions (name, type, class) are equal, the name
/// compared without regard to ASCII case. Type and class are compared
/// exactly: their bytes may happen to look like letters.
pub(super) fn same_question(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() || a.len() < 5 {
        return false;
    }
    let split = a.len() - 4;
    // Label length bytes are at most 63, never letters, so a case-blind
    // comparison of the name bytes still compares the lengths exactly.
    a[..split].eq_ignore_ascii_case(&b[..split]) && a[split..] == b[split..]
}

/// The 16-bit count at `at` in the header.
fn count(packet: &[u8], at: usize) -> Option<usize> {
    Some(usize::from(u16::from_be_bytes([
        *packet.get(at)?,
        *packet.get(at + 1)?,
    ])))
}

/// Where one record lies.
struct RecordAt {
    rtype: u16,
    ttl_at: usize,
    end: usize,
}

impl RecordAt {
    fn ttl(&self, packet: &[u8]) -> u32 {
        let field = &packet[self.ttl_at..self.ttl_at + 4];
        u32::from_be_bytes([field[0], field[1], field[2], field[3]])
    }
}

/// Skips the record starting at `start` (its name read as the query parser
/// reads names: pointers only backwards).
fn skip_record(packet: &[u8], start: usize) -> Option<RecordAt> {
    let at = skip_name(packet, start)?;
    let fixed = packet.get(at..at + 10)?;
    let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
    let rdlength = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
    let end = at + 10 + rdlength;
    (end <= packet.len()).then_some(RecordAt {
        rtype,
        ttl_at: at + 4,
        end,
    })
}

/// The class field (UDP payload size) and TTL field (extended RCODE,
/// version, DO and Z bits) of the query's OPT record, or None when it has
/// none or its records cannot be read. `at` is where the question ends.
fn read_opt(packet: &[u8], mut at: usize) -> Option<(u16, u32)> {
    let (answers, authorities, additionals) =
        (count(packet, 6)?, count(packet, 8)?, count(packet, 10)?);
    for _ in 0..answers + authorities {
        at = skip_record(packet, at)?.end;
    }
    for _ in 0..additionals {
        let record = skip_record(packet, at)?;
        if record.rtype == TYPE_OPT {
            let class = &packet[record.ttl_at - 2..record.ttl_at];
            return Some((u16::from_be_bytes([class[0], class[1]]), record.ttl(packet)));
        }
        at = record.end;
    }
    None
}

#[cfg(test)]
mod tests;
