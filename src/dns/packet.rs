//! Reading a query off the wire, by hand, and writing the parts of a response
//! that do not come from the snapshot (headers, negative answers, EDNS).
//!
//! This is the query path's parser: it reads the header, the one question and
//! the OPT record, and copies nothing but the lowercased name. Anything it
//! cannot read is answered FORMERR or dropped; it never panics on input (see
//! the tests at the bottom and `tests/malformed.rs`).
//!
//! One job, the query path's hand-written wire format, in both directions:
//! the reading and the writing share the header layout, the response codes
//! and the OPT record ([`Edns::reply`] turns what a query's OPT said into
//! what the response's carries), and the writing half is a hundred lines.
//! Names as keys, and their label offsets, are `dns::name`'s.

/// Largest DNS name on the wire, in bytes (RFC 1035 §3.1).
pub const MAX_NAME_LEN: usize = 255;
/// The UDP payload size disco advertises and uses for EDNS clients: the
/// DNS flag day 2020 value, which avoids IP fragmentation.
pub const EDNS_UDP_PAYLOAD: u16 = 1232;
/// Size of the OPT record disco appends to answers of EDNS queries.
pub const OPT_RECORD_LEN: usize = 11;

/// Size of the COOKIE option disco appends to that record when the query
/// had one: code, length, the client's cookie and disco's server cookie.
pub const COOKIE_OPTION_LEN: usize = 4 + REPLY_COOKIE_LEN;
/// A COOKIE option's data in a response: the client cookie (8 bytes) and
/// an RFC 9018 server cookie (16).
pub const REPLY_COOKIE_LEN: usize = 24;

const HEADER_LEN: usize = 12;
const TYPE_OPT: u16 = 41;
/// The EDNS option code of COOKIE (RFC 7873 §4).
const OPTION_COOKIE: u16 = 10;

/// Response codes disco sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum Rcode {
    /// No error.
    #[default]
    NoError = 0,
    /// The query could not be read.
    FormErr = 1,
    /// The server failed (upstream unreachable).
    ServFail = 2,
    /// The name does not exist.
    NxDomain = 3,
    /// The opcode is not implemented.
    NotImp = 4,
    /// Refused by policy.
    Refused = 5,
}

/// What the EDNS OPT record of a query said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edns {
    /// The client's UDP payload size, at least 512.
    pub udp_payload: u16,
    /// EDNS version; only 0 exists.
    pub version: u8,
    /// The DO bit (RFC 3225), copied into the response.
    pub dnssec_ok: bool,
    /// The COOKIE option (RFC 7873), if the query had one.
    pub cookie: Option<Cookie>,
    /// The COOKIE option's data the response carries: set by the
    /// responder once it has checked `cookie` (`dns::cookie`).
    pub reply_cookie: Option<[u8; REPLY_COOKIE_LEN]>,
}

impl Edns {
    /// The OPT record of the response to this query.
    pub fn reply(&self) -> ReplyOpt {
        ReplyOpt {
            extended_rcode: 0,
            dnssec_ok: self.dnssec_ok,
            cookie: self.reply_cookie,
        }
    }
}

/// A query's COOKIE option (RFC 7873 §4): the client cookie, and the server
/// cookie the client had from the server before, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cookie {
    /// The client cookie.
    pub client: [u8; 8],
    server: [u8; 32],
    server_len: u8,
}

impl Cookie {
    /// Reads a COOKIE option's data: `None` when its length is not one RFC
    /// 7873 §5.2.2 allows (8 bytes, or 16 to 40), which is FORMERR.
    pub fn parse(data: &[u8]) -> Option<Cookie> {
        let (client, server) = data.split_first_chunk::<8>()?;
        if !(server.is_empty() || (8..=32).contains(&server.len())) {
            return None;
        }
        let mut cookie = Cookie {
            client: *client,
            server: [0; 32],
            server_len: server.len() as u8,
        };
        cookie.server[..server.len()].copy_from_slice(server);
        Some(cookie)
    }

    /// The server cookie, empty when the client sent none.
    pub fn server(&self) -> &[u8] {
        &self.server[..usize::from(self.server_len).min(32)]
    }
}

/// What disco's OPT record in a response carries besides its payload size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplyOpt {
    /// The upper eight bits of the response code (1 for BADVERS).
    pub extended_rcode: u8,
    /// The query's DO bit: RFC 3225 §3 says it "MUST be copied in the
    /// response".
    pub dnssec_ok: bool,
    /// The COOKIE option's data, when the query had a cookie.
    pub cookie: Option<[u8; REPLY_COOKIE_LEN]>,
}

impl ReplyOpt {
    /// The size of the OPT record [`push_opt`] writes for it.
    pub fn record_len(&self) -> usize {
        OPT_RECORD_LEN + self.cookie.map_or(0, |_| COOKIE_OPTION_LEN)
    }
}

/// A query read from the wire. Borrows the packet; the name is copied,
/// lowercased, into an inline buffer.
#[derive(Debug)]
pub struct Query<'a> {
    packet: &'a [u8],
    question_end: usize,
    name_len: usize,
    name_lower: [u8; MAX_NAME_LEN],
    /// The question type.
    pub qtype: u16,
    /// The question class.
    pub qclass: u16,
    /// The OPT record, if the query had one.
    pub edns: Option<Edns>,
}

/// Why a query is not answered normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Too short to carry an ID, or a response: send nothing.
    Drop,
    /// Answer with a bare header carrying this code.
    Error(Rcode),
    /// The OPT record is malformed: FORMERR, with an OPT record of disco's
    /// own so the client can tell an EDNS error from no EDNS (RFC 6891 §7).
    BadOpt,
}

impl<'a> Query<'a> {
    /// Reads a query. Only standard queries with exactly one question get
    /// `Ok`; see [`Rejection`] for the rest.
    pub fn parse(packet: &'a [u8]) -> Result<Self, Rejection> {
        if packet.len() < HEADER_LEN {
            return Err(Rejection::Drop);
        }
        let flags = u16::from_be_bytes([packet[2], packet[3]]);
        if flags & 0x8000 != 0 {
            // Never answer a response: that is how reflection loops start.
            return Err(Rejection::Drop);
        }
        let opcode = (flags >> 11) & 0xf;
        if opcode != 0 {
            return Err(Rejection::Error(Rcode::NotImp));
        }
        let count = |at: usize| u16::from_be_bytes([packet[at], packet[at + 1]]);
        let (qdcount, ancount, nscount, arcount) = (count(4), count(6), count(8), count(10));
        if qdcount != 1 {
            return Err(Rejection::Error(Rcode::FormErr));
        }
        let mut query = Query {
            packet,
            question_end: 0,
            name_len: 0,
            name_lower: [0; MAX_NAME_LEN],
            qtype: 0,
            qclass: 0,
            edns: None,
        };
        let formerr = Rejection::Error(Rcode::FormErr);
        let mut at = HEADER_LEN;
        // The question name: plain labels only. A compression pointer in the
        // first name of a message can only point backwards into the header.
        loop {
            let len = *packet.get(at).ok_or(formerr)? as usize;
            if len & 0xc0 != 0 {
                return Err(formerr);
            }
            if query.name_len + len + 1 > MAX_NAME_LEN {
                return Err(formerr);
            }
            let label = packet.get(at..at + 1 + len).ok_or(formerr)?;
            let out = &mut query.name_lower[query.name_len..query.name_len + 1 + len];
            out.copy_from_slice(label);
            out[1..].make_ascii_lowercase();
            query.name_len += 1 + len;
            at += 1 + len;
            if len == 0 {
                break;
            }
        }
        let fixed = packet.get(at..at + 4).ok_or(formerr)?;
        query.qtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        query.qclass = u16::from_be_bytes([fixed[2], fixed[3]]);
        at += 4;
        query.question_end = at;

        // Skip answer and authority records (a query has none, but they are
        // legal), then look for the OPT record among the additionals.
        for _ in 0..(ancount as usize + nscount as usize) {
            at = skip_record(packet, at).ok_or(formerr)?.0;
        }
        for _ in 0..arcount {
            let (next, rtype, record_start) = skip_record(packet, at).ok_or(formerr)?;
            if rtype == TYPE_OPT {
                if query.edns.is_some() || packet[record_start] != 0 {
                    // Two OPT records, or one not owned by the root (RFC 6891 §6.1.1).
                    return Err(Rejection::BadOpt);
                }
                let (edns, cookie_malformed) = read_opt(packet, record_start);
                if cookie_malformed {
                    // RFC 7873 §5.2.2: FORMERR.
                    return Err(Rejection::BadOpt);
                }
                query.edns = Some(edns);
            }
            at = next;
        }
        Ok(query)
    }

    /// The question name in wire format, lowercased: the lookup key.
    pub fn name_key(&self) -> &[u8] {
        &self.name_lower[..self.name_len]
    }

    /// The question section exactly as the client sent it.
    pub fn question_bytes(&self) -> &'a [u8] {
        &self.packet[HEADER_LEN..self.question_end]
    }

    /// The query ID.
    pub fn id(&self) -> u16 {
        u16::from_be_bytes([self.packet[0], self.packet[1]])
    }

    /// Whether the client asked for recursion.
    pub fn recursion_desired(&self) -> bool {
        self.packet[2] & 0x01 != 0
    }

    /// Whether the client set the checking-disabled bit (echoed back).
    pub fn checking_disabled(&self) -> bool {
        self.packet[3] & 0x10 != 0
    }

    /// The largest response the client accepts over UDP.
    pub fn udp_limit(&self) -> usize {
        match self.edns {
            Some(edns) => edns.udp_payload.min(EDNS_UDP_PAYLOAD) as usize,
            None => 512,
        }
    }

    /// The raw packet.
    pub fn packet(&self) -> &'a [u8] {
        self.packet
    }
}

/// The fields of the OPT record whose owner (the root) is at `at`, which
/// [`skip_record`] has checked, and whether its COOKIE option is malformed.
/// Other options are skipped (RFC 6891 §6.1.2), as is a list of them cut
/// short.
fn read_opt(packet: &[u8], at: usize) -> (Edns, bool) {
    // Owner, TYPE, CLASS = payload size, TTL = extended rcode, version,
    // flags, RDLENGTH, then the options.
    let fields = &packet[at + 3..];
    let rdlen = usize::from(u16::from_be_bytes([fields[6], fields[7]]));
    let mut options = fields.get(8..8 + rdlen).unwrap_or_default();
    let (mut cookie, mut malformed) = (None, false);
    while let Some((head, rest)) = options.split_first_chunk::<4>() {
        let code = u16::from_be_bytes([head[0], head[1]]);
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let Some(data) = rest.get(..len) else { break };
        if code == OPTION_COOKIE && cookie.is_none() && !malformed {
            cookie = Cookie::parse(data);
            malformed = cookie.is_none();
        }
        options = &rest[len..];
    }
    let edns = Edns {
        udp_payload: u16::from_be_bytes([fields[0], fields[1]]).max(512),
        version: fields[3],
        dnssec_ok: fields[4] & 0x80 != 0,
        cookie,
        reply_cookie: None,
    };
    (edns, malformed)
}

/// The OPT record of a message [`Query::parse`] rejected before reading it
/// (another opcode, no question or several): RFC 6891 §7 wants an OPT in
/// the response to every query that has one. `None` when there is none or
/// the message cannot be walked to it.
pub fn edns_of(packet: &[u8]) -> Option<Edns> {
    let count = |at: usize| u16::from_be_bytes([packet[at], packet[at + 1]]) as usize;
    if packet.len() < HEADER_LEN {
        return None;
    }
    let mut at = HEADER_LEN;
    for _ in 0..count(4) {
        at = skip_name(packet, at)? + 4;
    }
    for _ in 0..count(6) + count(8) {
        at = skip_record(packet, at)?.0;
    }
    for _ in 0..count(10) {
        let (next, rtype, start) = skip_record(packet, at)?;
        if rtype == TYPE_OPT && packet[start] == 0 {
            return Some(read_opt(packet, start).0);
        }
        at = next;
    }
    None
}

/// Skips one resource record starting at `at`. Returns the offset after it,
/// its type, and the offset where its owner name starts.
fn skip_record(packet: &[u8], at: usize) -> Option<(usize, u16, usize)> {
    let start = at;
    let at = skip_name(packet, at)?;
    let fixed = packet.get(at..at + 10)?;
    let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
    let rdlen = u16::from_be_bytes([fixed[8], fixed[9]]) as usize;
    let end = at + 10 + rdlen;
    if end > packet.len() {
        return None;
    }
    Some((end, rtype, start))
}

/// Skips a name starting at `at`; the offset after it.
pub(crate) fn skip_name(packet: &[u8], at: usize) -> Option<usize> {
    let start = at;
    let mut at = at;
    loop {
        let len = *packet.get(at)? as usize;
        match len & 0xc0 {
            0x00 if len == 0 => {
                at += 1;
                break;
            }
            0x00 => at += 1 + len,
            // A pointer ends the name. It must point at a prior name (RFC
            // 1035 §4.1.4); one that points here or further on is a loop.
            0xc0 => {
                let target = (len & 0x3f) << 8 | *packet.get(at + 1)? as usize;
                if target >= start {
                    return None;
                }
                at += 2;
                break;
            }
            _ => return None,
        }
        if at - start > MAX_NAME_LEN {
            return None;
        }
    }
    Some(at)
}

/// Header flags of a response: QR, the query's opcode (always 0 here), RD
/// and CD copied, AA and RA as given.
pub fn response_flags(
    query_packet: &[u8],
    authoritative: bool,
    recursion_available: bool,
    rcode: Rcode,
) -> [u8; 2] {
    // The parser read a whole header; a shorter packet gets flags of zeros
    // rather than a panic.
    let byte = |at: usize| query_packet.get(at).copied().unwrap_or(0);
    let mut hi = 0x80 | (byte(2) & 0x79); // QR, opcode, RD
    if authoritative {
        hi |= 0x04;
    }
    let mut lo = (byte(3) & 0x10) | rcode as u8; // CD
    if recursion_available {
        lo |= 0x80;
    }
    [hi, lo]
}

/// Writes an error response to a packet that has at least a header: the
/// question echoed when it could be read, and disco's OPT record when the
/// query used EDNS (RFC 6891 §7: a response to an EDNS query carries an OPT
/// record). To a packet without a header it writes nothing (`out` is left
/// empty): there is nothing to answer.
pub fn error_response(
    packet: &[u8],
    question: Option<&[u8]>,
    rcode: Rcode,
    opt: Option<ReplyOpt>,
    out: &mut Vec<u8>,
) {
    out.clear();
    if packet.len() < HEADER_LEN {
        return;
    }
    out.extend_from_slice(&packet[..2]);
    out.extend_from_slice(&response_flags(packet, false, false, rcode));
    out.extend_from_slice(&[0, question.is_some() as u8, 0, 0, 0, 0, 0, 0]);
    if let Some(question) = question {
        out.extend_from_slice(question);
    }
    if let Some(opt) = opt {
        push_opt(out, opt);
    }
}

/// Appends disco's OPT record: its payload size, the extended rcode and DO
/// bit of `opt`, and its COOKIE option when it has one (the query's other
/// options are ignored: RFC 6891 §6.1.2).
pub fn push_opt(out: &mut Vec<u8>, opt: ReplyOpt) {
    let size = EDNS_UDP_PAYLOAD.to_be_bytes();
    let flags = if opt.dnssec_ok { 0x80 } else { 0 };
    let rdlen = (opt.record_len() - OPT_RECORD_LEN) as u8;
    out.extend_from_slice(&[
        0,
        0,
        41,
        size[0],
        size[1],
        opt.extended_rcode,
        0,
        flags,
        0,
        0,
        rdlen,
    ]);
    if let Some(cookie) = opt.cookie {
        out.extend_from_slice(&[0, OPTION_COOKIE as u8, 0, REPLY_COOKIE_LEN as u8]);
        out.extend_from_slice(&cookie);
    }
    if let Some(count) = out.get_mut(10..12) {
        let additionals = u16::from_be_bytes([count[0], count[1]]).saturating_add(1);
        count.copy_from_slice(&additionals.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query_bytes(name: &[u8], qtype: u16, extra: &[u8], arcount: u16) -> Vec<u8> {
        let mut p = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0];
        p.extend_from_slice(&arcount.to_be_bytes());
        p.extend_from_slice(name);
        p.extend_from_slice(&qtype.to_be_bytes());
        p.extend_from_slice(&[0, 1]);
        p.extend_from_slice(extra);
        p
    }

    #[test]
    fn a_query_is_read_and_its_name_lowercased() {
        let p = query_bytes(b"\x03WeB\x05disco\x08internal\x00", 33, &[], 0);
        let q = Query::parse(&p).unwrap();
        assert_eq!(q.name_key(), b"\x03web\x05disco\x08internal\x00");
        assert_eq!(q.question_bytes(), &p[12..]);
        assert_eq!((q.id(), q.qtype, q.qclass), (0x1234, 33, 1));
        assert!(q.recursion_desired());
        assert_eq!(q.udp_limit(), 512);
    }

    #[test]
    fn rfc6891_the_opt_record_sets_the_udp_limit() {
        let opt = [0, 0, 41, 0x10, 0x00, 0, 0, 0, 0, 0, 0];
        let p = query_bytes(b"\x00", 1, &opt, 1);
        let q = Query::parse(&p).unwrap();
        assert_eq!(
            q.edns,
            Some(Edns {
                udp_payload: 4096,
                version: 0,
                dnssec_ok: false,
                cookie: None,
                reply_cookie: None,
            })
        );
        assert_eq!(q.udp_limit(), EDNS_UDP_PAYLOAD as usize);
        let twice = query_bytes(b"\x00", 1, &[opt, opt].concat(), 2);
        assert_eq!(Query::parse(&twice).unwrap_err(), Rejection::BadOpt);
    }

    #[test]
    fn malformed_queries_are_rejected_not_panicked_on() {
        let formerr = Err(Rejection::Error(Rcode::FormErr));
        assert_eq!(Query::parse(&[1, 2, 3]).unwrap_err(), Rejection::Drop);
        // A pointer in the question name, pointing at itself.
        assert_eq!(
            Query::parse(&query_bytes(b"\xc0\x0c", 1, &[], 0)).map(|_| ()),
            formerr
        );
        // Truncated in the middle of a label.
        let p = query_bytes(b"\x05ab", 1, &[], 0);
        assert_eq!(Query::parse(&p[..15]).map(|_| ()), formerr);
        // A name longer than 255 bytes.
        let long: Vec<u8> = std::iter::repeat_n(
            b"\x3faaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".as_slice(),
            5,
        )
        .flatten()
        .copied()
        .chain([0])
        .collect();
        assert_eq!(
            Query::parse(&query_bytes(&long, 1, &[], 0)).map(|_| ()),
            formerr
        );
        // Claims an additional record that is not there.
        assert_eq!(
            Query::parse(&query_bytes(b"\x00", 1, &[], 1)).map(|_| ()),
            formerr
        );
        // A response is never answered.
        let mut response = query_bytes(b"\x00", 1, &[], 0);
        response[2] |= 0x80;
        assert_eq!(Query::parse(&response).unwrap_err(), Rejection::Drop);
    }

    #[test]
    fn rfc3225_section3_the_do_bit_is_read_and_copied() {
        let opt = [0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0];
        let packet = query_bytes(b"\x00", 1, &opt, 1);
        let edns = Query::parse(&packet).unwrap().edns.unwrap();
        assert!(edns.dnssec_ok);
        let mut out = vec![0; 12];
        push_opt(&mut out, edns.reply());
        assert_eq!(&out[12..], &[0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0]);
        assert_eq!(out[11], 1, "ARCOUNT counts the OPT");
    }

    #[test]
    fn rfc7873_section5_2_2_a_cookie_of_a_bad_length_is_formerr() {
        let with_cookie = |data: &[u8]| {
            let mut opt = vec![0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0];
            opt.extend_from_slice(&(4 + data.len() as u16).to_be_bytes());
            opt.extend_from_slice(&[0, 10]);
            opt.extend_from_slice(&(data.len() as u16).to_be_bytes());
            opt.extend_from_slice(data);
            query_bytes(b"\x00", 1, &opt, 1)
        };
        for len in (0..8).chain(9..16).chain(41..48) {
            let packet = with_cookie(&vec![7; len]);
            assert_eq!(
                Query::parse(&packet).unwrap_err(),
                Rejection::BadOpt,
                "{len}"
            );
        }
        for len in [8, 16, 24, 40] {
            let data: Vec<u8> = (0..len as u8).collect();
            let packet = with_cookie(&data);
            let cookie = Query::parse(&packet).unwrap().edns.unwrap().cookie.unwrap();
            assert_eq!(cookie.client, data[..8]);
            assert_eq!(cookie.server(), &data[8..]);
        }
    }

    #[test]
    fn a_reply_cookie_is_written_into_the_opt_record() {
        let mut out = vec![0; 12];
        let opt = ReplyOpt {
            cookie: Some([9; REPLY_COOKIE_LEN]),
            ..ReplyOpt::default()
        };
        push_opt(&mut out, opt);
        assert_eq!(out.len(), 12 + opt.record_len());
        assert_eq!(&out[12 + 9..12 + 15], &[0, 28, 0, 10, 0, 24]);
        assert_eq!(&out[12 + 15..], &[9; 24]);
    }

    #[test]
    fn rfc6891_section7_the_opt_of_a_rejected_query_is_found() {
        let opt = [0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0];
        // No question at all (a cookie-only query, RFC 7873 §5.4).
        let mut none = vec![0x12, 0x34, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 1];
        none.extend_from_slice(&opt);
        assert!(Query::parse(&none).is_err());
        assert!(edns_of(&none).unwrap().dnssec_ok);
        // Two questions, the second name compressed.
        let mut two = query_bytes(b"\x03web\x00", 1, &[], 1);
        two[5] = 2;
        two.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        two.extend_from_slice(&opt);
        assert!(edns_of(&two).is_some());
        assert_eq!(edns_of(&query_bytes(b"\x00", 1, &[], 0)), None);
        assert_eq!(edns_of(&[0; 5]), None);
    }
}
