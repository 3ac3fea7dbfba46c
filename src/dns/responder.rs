//! Answering one query: read it, look it up in the current snapshot, write
//! the response. Synchronous and lock-free; forwarding is the one case that
//! leaves this module, as [`Outcome::Forward`].

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use super::answer::{MAX_MESSAGE, NotThisQuestion};
use super::cookie::{CookieCheck, CookieSecret};
pub use super::forward::RecursionAcl;
use super::forward::cname;
use super::packet::{Query, Rcode, Rejection, ReplyOpt, edns_of, error_response, response_flags};
use super::rrl::{RateLimiter, RrlClass, RrlConfig, Verdict};
use super::snapshot::{Lookup, Snapshot};
use crate::metrics::Metrics;
use arc_swap::ArcSwap;
use hickory_proto::rr::RecordType;

const CLASS_IN: u16 = 1;
const CLASS_CHAOS: u16 = 3;
const CLASS_HESIOD: u16 = 4;
const CLASS_NONE: u16 = 254;
const CLASS_ANY: u16 = 255;

/// The transport a query came over, which bounds the response size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP: 512 bytes, or the client's EDNS size.
    Udp,
    /// TCP: 64 KiB.
    Tcp,
}

/// What to do after [`Responder::respond`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Send `out`.
    Reply,
    /// Send nothing.
    Drop,
    /// Not disco's name and the client may recurse: forward the packet.
    Forward,
    /// `out` holds a CNAME whose target lies outside disco's zones, for a
    /// client that may recurse: complete it through the forwarder
    /// (`forward::cname::complete`), then send it.
    CompleteCname,
}

/// Answers queries from the current snapshot.
#[derive(Debug)]
pub struct Responder {
    snapshot: Arc<ArcSwap<Snapshot>>,
    acl: RecursionAcl,
    can_forward: bool,
    metrics: Arc<Metrics>,
    /// At most this many answer records per UDP response.
    udp_answer_limit: usize,
    /// Response rate limiting of UDP answers (`None`: off).
    rrl: Option<RateLimiter>,
    /// The secret of DNS cookies (`dns::cookie`).
    cookies: CookieSecret,
}

impl Responder {
    /// A responder reading `snapshot`. `can_forward` says whether any
    /// upstream is configured.
    pub fn new(
        snapshot: Arc<ArcSwap<Snapshot>>,
        acl: RecursionAcl,
        can_forward: bool,
        metrics: Arc<Metrics>,
    ) -> Self {
        Responder {
            snapshot,
            acl,
            can_forward,
            metrics,
            udp_answer_limit: usize::MAX,
            rrl: None,
            cookies: CookieSecret::random(),
        }
    }

    /// Makes and checks DNS cookies with `secret` rather than a random one.
    pub fn with_cookie_secret(mut self, secret: CookieSecret) -> Self {
        self.cookies = secret;
        self
    }

    /// Limits UDP responses as `config` says (see `dns::rrl`); off when
    /// every class's rate is 0.
    pub fn with_rate_limit(mut self, config: &RrlConfig) -> Self {
        self.rrl = config.enabled().then(|| RateLimiter::new(config));
        self
    }

    /// Sends at most `limit` answer records per UDP response (`None`: as
    /// many as fit), for clients that ignore TC and never retry over TCP.
    pub fn with_udp_answer_limit(mut self, limit: Option<usize>) -> Self {
        self.udp_answer_limit = limit.unwrap_or(usize::MAX);
        self
    }

    /// The metrics this responder records into.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Whether `client` may recurse through disco.
    pub fn may_recurse(&self, client: IpAddr) -> bool {
        self.can_forward && self.acl.allows(client)
    }

    /// Answers `packet` from `client` into `out`. Over UDP the answer is
    /// rate limited: [`Outcome::Drop`], or `out` a truncated answer, when
    /// the client's network has had too many like it.
    pub fn respond(
        &self,
        packet: &[u8],
        client: IpAddr,
        transport: Transport,
        out: &mut Vec<u8>,
    ) -> Outcome {
        let started = Instant::now();
        let mut query = match Query::parse(packet) {
            Ok(query) => query,
            Err(Rejection::Drop) => {
                self.metrics.record_dropped();
                return Outcome::Drop;
            }
            Err(Rejection::Error(rcode)) => {
                let cookie = self.cookie_only(packet, rcode, client, out);
                if cookie.is_none() {
                    let opt = edns_of(packet).map(|edns| edns.reply());
                    error_response(packet, None, rcode, opt, out);
                }
                return self.finish(None, cookie, packet, client, transport, started, out);
            }
            Err(Rejection::BadOpt) => {
                // Including a malformed COOKIE option (RFC 7873 §5.2.2).
                error_response(packet, None, Rcode::FormErr, Some(ReplyOpt::default()), out);
                return self.finish(None, None, packet, client, transport, started, out);
            }
        };
        let cookie = self.stamp_cookie(&mut query, client);
        let outcome = self.answer(&query, client, transport, out);
        match outcome {
            Outcome::Reply | Outcome::CompleteCname => {
                let limited = self.finish(
                    Some(&query),
                    cookie,
                    packet,
                    client,
                    transport,
                    started,
                    out,
                );
                match limited {
                    Outcome::Reply => outcome,
                    other => other,
                }
            }
            Outcome::Drop | Outcome::Forward => outcome,
        }
    }

    /// Checks the query's COOKIE option, if it has one, and sets the one
    /// its answer carries (RFC 7873 §5.2.3 to §5.2.5: a client cookie alone
    /// or with a server cookie not disco's gets a new server cookie and an
    /// answer as usual).
    fn stamp_cookie(&self, query: &mut Query<'_>, client: IpAddr) -> Option<CookieCheck> {
        let edns = query.edns.as_mut()?;
        let (check, reply) = self.cookies.answer(edns.cookie.as_ref()?, client);
        edns.reply_cookie = Some(reply);
        self.metrics.limits().record_cookie(check);
        Some(check)
    }

    /// The answer to a query with no question and a COOKIE option, which
    /// asks for a server cookie (RFC 7873 §5.4): NOERROR with one, or
    /// BADCOOKIE when the server cookie it sent is not disco's. `None` for
    /// any other question-less query (FORMERR as before).
    fn cookie_only(
        &self,
        packet: &[u8],
        rcode: Rcode,
        client: IpAddr,
        out: &mut Vec<u8>,
    ) -> Option<CookieCheck> {
        let no_question = packet.get(4..6) == Some(&[0, 0]);
        if rcode != Rcode::FormErr || !no_question {
            return None;
        }
        let edns = edns_of(packet)?;
        let (check, reply) = self.cookies.answer(edns.cookie.as_ref()?, client);
        self.metrics.limits().record_cookie(check);
        let opt = ReplyOpt {
            cookie: Some(reply),
            ..edns.reply()
        };
        match check {
            CookieCheck::Invalid => bad_cookie(packet, None, opt, out),
            _ => error_response(packet, None, Rcode::NoError, Some(opt), out),
        }
        Some(check)
    }

    /// Rate limits the response in `out` (see [`Responder::rate_limit`]),
    /// then counts it: [`Outcome::Reply`] to send `out`, or
    /// [`Outcome::Drop`].
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        query: Option<&Query<'_>>,
        cookie: Option<CookieCheck>,
        packet: &[u8],
        client: IpAddr,
        transport: Transport,
        started: Instant,
        out: &mut Vec<u8>,
    ) -> Outcome {
        let verdict = match transport {
            // A client that sent back a valid server cookie receives what
            // is sent to its address: it forges none.
            Transport::Udp if cookie != Some(CookieCheck::Valid) => {
                self.rate_limit(query, cookie, packet, client, out)
            }
            Transport::Udp | Transport::Tcp => Verdict::Send,
        };
        if verdict == Verdict::Drop {
            return Outcome::Drop;
        }
        let rcode = response_rcode(out);
        let qtype = query.map_or(0, |query| query.qtype);
        self.metrics.record_query(qtype, rcode, started.elapsed());
        Outcome::Reply
    }

    /// Counts the UDP response in `out` against its bucket (see
    /// `dns::rrl`): a verdict, and when it is [`Verdict::Slip`], `out`
    /// rewritten as what replaces it: a truncated answer, or for a client
    /// that sent a cookie, BADCOOKIE with a server cookie, which it sends
    /// back to be exempt (RFC 7873 §5.2.3, as BIND does).
    fn rate_limit(
        &self,
        query: Option<&Query<'_>>,
        cookie: Option<CookieCheck>,
        packet: &[u8],
        client: IpAddr,
        out: &mut Vec<u8>,
    ) -> Verdict {
        let Some(rrl) = &self.rrl else {
            return Verdict::Send;
        };
        if rrl.exempt(client) {
            return Verdict::Send;
        }
        let rcode = response_rcode(out);
        let answers = out
            .get(6..8)
            .map_or(0, |n| u16::from_be_bytes([n[0], n[1]]));
        let class = RrlClass::of(rcode, answers);
        let (name, qtype) = query.map_or((&[][..], 0), |query| (query.name_key(), query.qtype));
        let verdict = rrl.check(class, client, name, qtype);
        match verdict {
            Verdict::Send => {}
            Verdict::Drop => self.metrics.limits().record_dropped(class),
            Verdict::Slip => {
                self.metrics.limits().record_slipped(class);
                let reply_opt = query.and_then(|query| query.edns).map(|edns| edns.reply());
                match (query, reply_opt) {
                    (Some(query), Some(opt)) if cookie.is_some() => {
                        let opt = ReplyOpt {
                            extended_rcode: 0,
                            ..opt
                        };
                        bad_cookie(packet, Some(query.question_bytes()), opt, out);
                    }
                    _ => slip(query, packet, rcode, out),
                }
            }
        }
        verdict
    }

    fn answer(
        &self,
        query: &Query<'_>,
        client: IpAddr,
        transport: Transport,
        out: &mut Vec<u8>,
    ) -> Outcome {
        match query.qclass {
            CLASS_IN | CLASS_ANY => {}
            CLASS_CHAOS | CLASS_HESIOD | CLASS_NONE => {
                return self.error(query, Rcode::Refused, out);
            }
            _ => return self.error(query, Rcode::FormErr, out),
        }
        if let Some(edns) = query.edns.filter(|edns| edns.version > 0) {
            // RFC 6891 §6.1.3: BADVERS is extended rcode 16: 1 in the OPT
            // record's upper bits, 0 in the header.
            let opt = ReplyOpt {
                extended_rcode: 1,
                ..edns.reply()
            };
            error_response(
                query.packet(),
                Some(query.question_bytes()),
                Rcode::NoError,
                Some(opt),
                out,
            );
            return Outcome::Reply;
        }
        let qtype = RecordType::from(query.qtype);
        match qtype {
            RecordType::OPT | RecordType::Unknown(0) => {
                return self.error(query, Rcode::FormErr, out);
            }
            RecordType::AXFR | RecordType::IXFR => return self.error(query, Rcode::Refused, out),
            _ => {}
        }
        let recursion = self.may_recurse(client);
        // RFC 1034 §4.3.1: with RD clear the client asks for what disco
        // knows itself: never forwarded, nor completed through the
        // forwarder (nor answered from its cache).
        let recurse = recursion && query.recursion_desired();
        let (limit, max_answers) = match transport {
            Transport::Udp => (query.udp_limit(), self.udp_answer_limit),
            Transport::Tcp => (MAX_MESSAGE, usize::MAX),
        };
        let snapshot = self.snapshot.load();
        match snapshot.lookup(query.name_key(), qtype) {
            Lookup::Answer(answer) => {
                if let Err(mismatch) = answer.write(query, recursion, limit, max_answers, out) {
                    return self.internal_error(query, mismatch, out);
                }
                if recurse
                    && answer.ends_in_cname()
                    && !matches!(qtype, RecordType::CNAME | RecordType::ANY)
                    && cname::leaves(out, &snapshot, qtype)
                {
                    return Outcome::CompleteCname;
                }
            }
            Lookup::NoData(apex) => {
                if let Err(mismatch) = apex.write_negative(query, Rcode::NoError, recursion, out) {
                    return self.internal_error(query, mismatch, out);
                }
            }
            Lookup::NxDomain(apex) => {
                if let Err(mismatch) = apex.write_negative(query, Rcode::NxDomain, recursion, out) {
                    return self.internal_error(query, mismatch, out);
                }
            }
            Lookup::NotAuthoritative if recurse => return Outcome::Forward,
            Lookup::NotAuthoritative | Lookup::Refused => {
                return self.error(query, Rcode::Refused, out);
            }
        }
        Outcome::Reply
    }

    /// SERVFAIL for a lookup that found data not fit for the question (a
    /// bug, which the writers check for rather than send a wrong answer).
    fn internal_error(
        &self,
        query: &Query<'_>,
        mismatch: NotThisQuestion,
        out: &mut Vec<u8>,
    ) -> Outcome {
        tracing::debug!(%mismatch, name = ?query.name_key(), "answered SERVFAIL");
        self.error(query, Rcode::ServFail, out)
    }

    fn error(&self, query: &Query<'_>, rcode: Rcode, out: &mut Vec<u8>) -> Outcome {
        let opt = query.edns.map(|edns| edns.reply());
        error_response(
            query.packet(),
            Some(query.question_bytes()),
            rcode,
            opt,
            out,
        );
        Outcome::Reply
    }
}

/// Rewrites a response as its slip (RRL): the header with TC set and the
/// question, no records, the OPT record when the query had one. A client
/// that is no forger retries over TCP.
fn slip(query: Option<&Query<'_>>, packet: &[u8], rcode: u8, out: &mut Vec<u8>) {
    // An error to a query that could not be read is already as short as
    // an answer gets.
    if let Some(query) = query {
        error_response(
            packet,
            Some(query.question_bytes()),
            Rcode::NoError,
            query.edns.map(|edns| edns.reply()),
            out,
        );
    }
    if let Some(flags) = out.get_mut(2..4) {
        flags[0] |= 0x02;
        flags[1] = (flags[1] & 0xf0) | (rcode & 0x0f);
    }
}

/// Writes BADCOOKIE (extended rcode 23: 1 in the OPT record, 7 in the
/// header) with the COOKIE option of `opt`.
fn bad_cookie(packet: &[u8], question: Option<&[u8]>, opt: ReplyOpt, out: &mut Vec<u8>) {
    let opt = ReplyOpt {
        extended_rcode: 1,
        ..opt
    };
    error_response(packet, question, Rcode::NoError, Some(opt), out);
    if let Some(flags) = out.get_mut(3) {
        *flags = (*flags & 0xf0) | 7;
    }
}

/// A SERVFAIL for a query that could not be forwarded.
pub fn servfail(packet: &[u8], out: &mut Vec<u8>) {
    match Query::parse(packet) {
        Ok(query) => error_response(
            packet,
            Some(query.question_bytes()),
            Rcode::ServFail,
            query.edns.map(|edns| edns.reply()),
            out,
        ),
        Err(_) => error_response(
            packet,
            None,
            Rcode::ServFail,
            edns_of(packet).map(|edns| edns.reply()),
            out,
        ),
    }
    if let (Some(header), Some(flags)) = (packet.get(..4), out.get_mut(2..4)) {
        flags.copy_from_slice(&response_flags(header, false, true, Rcode::ServFail));
    }
}

/// The rcode of the response written in `out` (SERVFAIL if it is shorter
/// than a header, which no writer leaves).
fn response_rcode(out: &[u8]) -> u8 {
    out.get(3)
        .map_or(Rcode::ServFail as u8, |flags| flags & 0x0f)
}
