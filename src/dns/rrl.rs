//! Response rate limiting (RRL), as BIND, Knot and NSD have it: disco's
//! UDP answers can be aimed at a victim by a client that forges the
//! victim's address, so answers of one kind to one client network beyond
//! a rate are dropped, or every Nth of them "slipped" as a short TC=1
//! answer (a real client retries over TCP, which cannot be forged; a
//! victim gets no more bytes than the forger sent).
//!
//! A response is counted against a bucket keyed by the client's network
//! (an IPv4 /24, an IPv6 /56) and its identity: for answers and NODATA the
//! question's name and type, for NXDOMAIN and errors the kind alone, so
//! that random names cost a flood the same bucket. Each class has its own
//! rate (`--rrl-responses`, `--rrl-nxdomains`, `--rrl-errors`) and a burst
//! of one second's worth.
//!
//! The buckets live in a fixed table of atomic words, one per bucket, each
//! holding a tag of its key, the slip count and the bucket's state as a
//! GCRA "theoretical arrival time": a bucket is one compare-and-swap, no
//! lock, and nothing is allocated per packet. A key whose slot another key
//! holds takes it over with a full bucket: with 2^16 slots that happens to
//! flows of many networks at low rates, which are no one's flood.

use std::hash::Hasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use ipnet::IpNet;
use siphasher::sip::SipHasher13;

/// Slots in the table (a power of two): 512 KiB.
const SLOTS: usize = 1 << 16;
/// Bits of a slot holding the arrival time, in microseconds since the
/// limiter started; it wraps after 2^40 µs (12.7 days), which
/// [`RateLimiter::check`] tells from a live state.
const TIME_BITS: u32 = 40;
const TIME_MASK: u64 = (1 << TIME_BITS) - 1;
const SLIP_SHIFT: u32 = TIME_BITS;
const TAG_SHIFT: u32 = 48;
/// The highest rate a class may have, per second: one response per
/// microsecond, the clock's unit.
pub const MAX_RATE: u32 = 1_000_000;
/// The highest `--rrl-slip`.
pub const MAX_SLIP: u8 = 10;

/// What a response is counted as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RrlClass {
    /// An answer, or NODATA: keyed by the question's name and type.
    Response,
    /// NXDOMAIN: keyed by the network alone.
    NxDomain,
    /// Any other error (REFUSED, FORMERR, SERVFAIL, NOTIMP, BADVERS,
    /// BADCOOKIE): keyed by the network alone.
    Error,
}

impl RrlClass {
    /// Every class, in the order the metrics use.
    pub const ALL: [RrlClass; 3] = [RrlClass::Response, RrlClass::NxDomain, RrlClass::Error];

    /// The class of a response with this header rcode and answer count.
    pub fn of(rcode: u8, answers: u16) -> RrlClass {
        match rcode {
            0 if answers > 0 => RrlClass::Response,
            // NODATA: the name exists, so its names are bounded.
            0 => RrlClass::Response,
            3 => RrlClass::NxDomain,
            _ => RrlClass::Error,
        }
    }

    /// Its label in `/metrics`.
    pub fn label(self) -> &'static str {
        match self {
            RrlClass::Response => "response",
            RrlClass::NxDomain => "nxdomain",
            RrlClass::Error => "error",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What to do with a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the rate (or exempt): send it.
    Send,
    /// Over the rate: send nothing.
    Drop,
    /// Over the rate, and this one's turn to slip: send a truncated
    /// answer (TC=1, no records) instead.
    Slip,
}

/// The limits, per second (0: that class is not limited).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RrlConfig {
    /// Answers and NODATA, per name and type (`--rrl-responses`).
    pub responses: u32,
    /// NXDOMAIN answers (`--rrl-nxdomains`).
    pub nxdomains: u32,
    /// Errors (`--rrl-errors`).
    pub errors: u32,
    /// Every `slip`th limited response is slipped, the others dropped; 0:
    /// all dropped (`--rrl-slip`).
    pub slip: u8,
    /// Client networks never limited (`--rrl-exempt`).
    pub exempt: Vec<IpNet>,
}

impl RrlConfig {
    /// Default `--rrl-responses`.
    pub const DEFAULT_RESPONSES: u32 = 1000;
    /// Default `--rrl-nxdomains`.
    pub const DEFAULT_NXDOMAINS: u32 = 1000;
    /// Default `--rrl-errors`.
    pub const DEFAULT_ERRORS: u32 = 100;
    /// Default `--rrl-slip`.
    pub const DEFAULT_SLIP: u8 = 2;

    /// The defaults, exempting `exempt`.
    pub fn with_exempt(exempt: Vec<IpNet>) -> Self {
        RrlConfig {
            responses: Self::DEFAULT_RESPONSES,
            nxdomains: Self::DEFAULT_NXDOMAINS,
            errors: Self::DEFAULT_ERRORS,
            slip: Self::DEFAULT_SLIP,
            exempt,
        }
    }

    /// Whether any class is limited.
    pub fn enabled(&self) -> bool {
        self.responses > 0 || self.nxdomains > 0 || self.errors > 0
    }
}

/// One class's rate as GCRA has it.
#[derive(Debug, Clone, Copy)]
struct Limit {
    /// Microseconds one response costs (1 s / rate).
    interval: u64,
    /// How far ahead of now a bucket's arrival time may run: a burst of
    /// one second's worth.
    tolerance: u64,
}

impl Limit {
    fn per_second(rate: u32) -> Option<Limit> {
        let rate = u64::from(rate.min(MAX_RATE));
        (rate > 0).then(|| {
            let interval = 1_000_000 / rate;
            Limit {
                interval,
                tolerance: interval * (rate - 1),
            }
        })
    }
}

/// The limiter: the table, the limits, the exempt networks.
pub struct RateLimiter {
    slots: Box<[AtomicU64]>,
    limits: [Option<Limit>; 3],
    slip: u8,
    exempt: Vec<IpNet>,
    epoch: Instant,
    /// Random hash keys, so that no client can aim two keys at one slot.
    keys: (u64, u64),
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("limits", &self.limits)
            .field("slip", &self.slip)
            .field("exempt", &self.exempt)
            .finish()
    }
}

impl RateLimiter {
    /// A limiter with `config`'s limits, its table empty.
    pub fn new(config: &RrlConfig) -> Self {
        RateLimiter {
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            limits: [config.responses, config.nxdomains, config.errors].map(Limit::per_second),
            slip: config.slip.min(MAX_SLIP),
            exempt: config.exempt.clone(),
            epoch: Instant::now(),
            keys: (rand::random(), rand::random()),
        }
    }

    /// Whether `client` is never limited. An IPv4-mapped IPv6 address
    /// counts as the IPv4 address it carries.
    pub fn exempt(&self, client: IpAddr) -> bool {
        let client = canonical(client);
        self.exempt.iter().any(|net| net.contains(&client))
    }

    /// Counts one response of `class` to `client` (for a
    /// [`RrlClass::Response`], to the question `name`, a lowercase wire
    /// name, and `qtype`), and says what to do with it. Exemption is the
    /// caller's to check first ([`RateLimiter::exempt`]).
    pub fn check(&self, class: RrlClass, client: IpAddr, name: &[u8], qtype: u16) -> Verdict {
        let Some(limit) = self.limits[class.index()] else {
            return Verdict::Send;
        };
        let now = self.epoch.elapsed().as_micros() as u64;
        self.check_at(now, limit, class, client, name, qtype)
    }

    fn check_at(
        &self,
        now: u64,
        limit: Limit,
        class: RrlClass,
        client: IpAddr,
        name: &[u8],
        qtype: u16,
    ) -> Verdict {
        let hash = self.key(class, client, name, qtype);
        let slot = &self.slots[hash as usize & (SLOTS - 1)];
        let tag = hash >> TAG_SHIFT;
        let now = now & TIME_MASK;
        let mut current = slot.load(Relaxed);
        // Another thread counting the same bucket at the same instant makes
        // this try again, with what that thread left.
        loop {
            let (mut arrival, mut slips) = (current & TIME_MASK, (current >> SLIP_SHIFT) & 0xff);
            let ahead = signed_time(arrival.wrapping_sub(now));
            // Another key's slot, a bucket idle long enough to be full, or
            // a time from before the clock wrapped: start afresh.
            if current >> TAG_SHIFT != tag
                || ahead < 0
                || ahead as u64 > limit.tolerance + limit.interval
            {
                arrival = now;
                slips = 0;
            }
            let ahead = signed_time(arrival.wrapping_sub(now)) as u64;
            let verdict = if ahead <= limit.tolerance {
                arrival = (arrival + limit.interval) & TIME_MASK;
                Verdict::Send
            } else {
                slips = match self.slip {
                    0 => 0,
                    slip => (slips + 1) % u64::from(slip),
                };
                match (self.slip, slips) {
                    (0, _) => Verdict::Drop,
                    (_, 0) => Verdict::Slip,
                    _ => Verdict::Drop,
                }
            };
            let next = tag << TAG_SHIFT | slips << SLIP_SHIFT | arrival;
            match slot.compare_exchange_weak(current, next, Relaxed, Relaxed) {
                Ok(_) => return verdict,
                Err(seen) => current = seen,
            }
        }
    }

    /// The bucket's hash: the class, the client's network, and for
    /// answers the name and type.
    fn key(&self, class: RrlClass, client: IpAddr, name: &[u8], qtype: u16) -> u64 {
        let mut hasher = SipHasher13::new_with_keys(self.keys.0, self.keys.1);
        hasher.write_u8(class as u8);
        match canonical(client) {
            IpAddr::V4(v4) => hasher.write_u32(u32::from(v4) & 0xffff_ff00),
            IpAddr::V6(v6) => hasher.write_u64((u128::from(v6) >> 72) as u64),
        }
        if class == RrlClass::Response {
            hasher.write_u16(qtype);
            hasher.write(name);
        }
        hasher.finish()
    }
}

/// A 40-bit time difference as a signed number.
fn signed_time(diff: u64) -> i64 {
    let diff = diff & TIME_MASK;
    if diff >> (TIME_BITS - 1) != 0 {
        diff as i64 - (1 << TIME_BITS)
    } else {
        diff as i64
    }
}

fn canonical(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(client, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(rate: u32, slip: u8) -> RateLimiter {
        RateLimiter::new(&RrlConfig {
            responses: rate,
            nxdomains: rate,
            errors: rate,
            slip,
            exempt: vec!["127.0.0.0/8".parse().unwrap()],
        })
    }

    /// The verdicts for `count` responses at time `at` (µs).
    fn burst(
        rrl: &RateLimiter,
        at: u64,
        count: usize,
        client: &str,
        name: &[u8],
    ) -> (usize, usize, usize) {
        let limit = rrl.limits[0].unwrap();
        let client = client.parse().unwrap();
        let (mut sent, mut dropped, mut slipped) = (0, 0, 0);
        for _ in 0..count {
            match rrl.check_at(at, limit, RrlClass::Response, client, name, 1) {
                Verdict::Send => sent += 1,
                Verdict::Drop => dropped += 1,
                Verdict::Slip => slipped += 1,
            }
        }
        (sent, dropped, slipped)
    }

    #[test]
    fn a_burst_past_one_seconds_worth_is_limited_and_every_second_one_slipped() {
        let rrl = limiter(100, 2);
        assert_eq!(
            burst(&rrl, 0, 300, "192.0.2.7", b"\x03web\x00"),
            (100, 100, 100)
        );
        // Half a second later, half a second's worth more.
        assert_eq!(
            burst(&rrl, 500_000, 100, "192.0.2.7", b"\x03web\x00"),
            (50, 25, 25)
        );
    }

    #[test]
    fn the_network_is_the_client_and_the_name_is_the_identity() {
        let rrl = limiter(10, 0);
        assert_eq!(burst(&rrl, 0, 20, "192.0.2.7", b"\x03web\x00"), (10, 10, 0));
        // Same /24, same name: the same bucket, empty.
        assert_eq!(burst(&rrl, 0, 5, "192.0.2.200", b"\x03web\x00"), (0, 5, 0));
        // Another network, or another name: buckets of their own.
        assert_eq!(burst(&rrl, 0, 10, "192.0.3.7", b"\x03web\x00"), (10, 0, 0));
        assert_eq!(burst(&rrl, 0, 10, "192.0.2.7", b"\x03api\x00"), (10, 0, 0));
        // IPv6: one /56.
        assert_eq!(burst(&rrl, 0, 15, "2001:db8:0:1::1", b"\x00"), (10, 5, 0));
        assert_eq!(burst(&rrl, 0, 5, "2001:db8:0:ff::9", b"\x00"), (0, 5, 0));
        assert_eq!(burst(&rrl, 0, 5, "2001:db8:0:100::1", b"\x00"), (5, 0, 0));
    }

    #[test]
    fn nxdomains_and_errors_share_one_bucket_per_network_whatever_the_name() {
        let rrl = limiter(10, 0);
        let client = "198.51.100.1".parse().unwrap();
        let sent = (0..30)
            .filter(|n| {
                let name = format!("\x05rand{n:01}\x00");
                rrl.check(RrlClass::NxDomain, client, name.as_bytes(), 1) == Verdict::Send
            })
            .count();
        assert_eq!(sent, 10);
        // Errors are counted apart from NXDOMAIN.
        assert_eq!(rrl.check(RrlClass::Error, client, b"", 1), Verdict::Send);
    }

    #[test]
    fn a_class_at_zero_is_not_limited_and_exempt_networks_are_known() {
        let rrl = RateLimiter::new(&RrlConfig {
            responses: 0,
            ..RrlConfig::with_exempt(vec!["10.0.0.0/8".parse().unwrap()])
        });
        let client = "192.0.2.1".parse().unwrap();
        assert!(
            (0..5000).all(|_| rrl.check(RrlClass::Response, client, b"\x00", 1) == Verdict::Send)
        );
        assert!(rrl.exempt("10.1.2.3".parse().unwrap()));
        assert!(rrl.exempt("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!rrl.exempt(client));
    }

    #[test]
    fn a_bucket_idle_past_the_clock_wrap_starts_full() {
        let rrl = limiter(10, 0);
        assert_eq!(burst(&rrl, 0, 20, "192.0.2.7", b"\x00"), (10, 10, 0));
        // A wrap minus a quarter second: the stored time looks ahead by
        // more than any live bucket runs.
        let later = (1 << TIME_BITS) - 250_000;
        assert_eq!(burst(&rrl, later, 10, "192.0.2.7", b"\x00"), (10, 0, 0));
    }

    #[test]
    fn threads_counting_one_bucket_let_through_the_rate_and_no_more() {
        let rrl = limiter(1000, 0);
        let sent: usize = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..4)
                .map(|_| scope.spawn(|| burst(&rrl, 7, 2000, "192.0.2.7", b"\x03web\x00").0))
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).sum()
        });
        assert_eq!(sent, 1000);
    }
}
