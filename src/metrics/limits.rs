//! The response rate limiting counters: UDP responses dropped and slipped,
//! by class (see `dns::rrl`); and the queries that carried a DNS cookie, by
//! what it proved (see `dns::cookie`).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::dns::cookie::CookieCheck;
use crate::dns::rrl::RrlClass;

/// Response rate limiting counters. Touched only for a response over the
/// rate, never for one within it.
#[derive(Debug, Default)]
pub struct LimitMetrics {
    dropped: [AtomicU64; RrlClass::ALL.len()],
    slipped: [AtomicU64; RrlClass::ALL.len()],
    cookies: [AtomicU64; CookieCheck::ALL.len()],
}

impl LimitMetrics {
    /// Counts a response of `class` dropped over the rate.
    pub fn record_dropped(&self, class: RrlClass) {
        self.dropped[class as usize].fetch_add(1, Relaxed);
    }

    /// Counts a response of `class` slipped (sent truncated) over the rate.
    pub fn record_slipped(&self, class: RrlClass) {
        self.slipped[class as usize].fetch_add(1, Relaxed);
    }

    /// Counts a query that carried a COOKIE option, by what it proved.
    pub fn record_cookie(&self, check: CookieCheck) {
        self.cookies[check as usize].fetch_add(1, Relaxed);
    }

    /// Responses dropped, every class.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().map(|c| c.load(Relaxed)).sum()
    }

    /// Responses slipped, every class.
    pub fn slipped_total(&self) -> u64 {
        self.slipped.iter().map(|c| c.load(Relaxed)).sum()
    }

    pub(super) fn render(&self, out: &mut String) {
        for (name, help, counters) in [
            (
                "disco_rrl_dropped_total",
                "UDP responses dropped by response rate limiting, by class.",
                &self.dropped,
            ),
            (
                "disco_rrl_slipped_total",
                "UDP responses sent truncated (TC=1) instead, by response rate limiting, by class.",
                &self.slipped,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (class, counter) in RrlClass::ALL.iter().zip(counters) {
                let _ = writeln!(
                    out,
                    "{name}{{class=\"{}\"}} {}",
                    class.label(),
                    counter.load(Relaxed)
                );
            }
        }
        let name = "disco_cookies_total";
        let _ = writeln!(
            out,
            "# HELP {name} Queries that carried a DNS cookie, by what it proved \
             (client_only: no server cookie; valid: disco's, for that address, in date; invalid: not).\n\
             # TYPE {name} counter"
        );
        for (check, counter) in CookieCheck::ALL.iter().zip(&self.cookies) {
            let _ = writeln!(
                out,
                "{name}{{cookie=\"{}\"}} {}",
                check.label(),
                counter.load(Relaxed)
            );
        }
    }
}
