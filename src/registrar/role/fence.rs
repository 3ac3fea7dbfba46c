//! The fencing rule: a leader stops calling itself primary before its
//! lease or session can have expired from the store's side, so that it
//! has stepped down before any other candidate can be elected.
//!
//! The store cannot expire the lease earlier than `expiry` after it last
//! heard from us; the latest proof is the request whose answer came back,
//! counted from when it was *sent* (the store heard it at or after that).
//! The margin covers what the count cannot: a timer that fires late on a
//! loaded machine, the time to withdraw, and the store's clock running
//! slightly fast.

use std::time::Duration;

use tokio::time::Instant;

/// The smallest margin kept before the store's earliest expiry.
pub const MIN_MARGIN: Duration = Duration::from_millis(250);

/// The margin for a lease or session of `expiry`: a quarter of it, at
/// least [`MIN_MARGIN`] (and never all of it).
pub fn margin(expiry: Duration) -> Duration {
    std::cmp::min(std::cmp::max(expiry / 4, MIN_MARGIN), expiry / 2)
}

/// Until when a leader whose store last acknowledged a request sent at
/// `acknowledged` may call itself primary: `None` when there is no proof
/// at all (it may not).
pub fn primary_until(acknowledged: Option<Instant>, expiry: Duration) -> Option<Instant> {
    Some(acknowledged? + expiry - margin(expiry))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_margin_is_a_quarter_bounded_below_and_above() {
        assert_eq!(margin(Duration::from_secs(10)), Duration::from_millis(2500));
        assert_eq!(margin(Duration::from_secs(2)), Duration::from_millis(500));
        assert_eq!(
            margin(Duration::from_millis(800)),
            Duration::from_millis(250)
        );
        assert_eq!(
            margin(Duration::from_millis(400)),
            Duration::from_millis(200)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_steps_down_before_the_store_can_expire_its_lease() {
        let ttl = Duration::from_secs(2);
        let sent = Instant::now();
        // The store heard the keep-alive at or after `sent`: the earliest
        // it can expire the lease is `sent + ttl`.
        let until = primary_until(Some(sent), ttl).unwrap();
        tokio::time::advance(Duration::from_millis(1499)).await;
        assert!(
            Instant::now() < until,
            "still primary 1.499 s after the keep-alive"
        );
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(Instant::now() >= until, "stepped down 1.5 s after it");
        assert!(until + margin(ttl) <= sent + ttl);
        // No proof, no primary.
        assert_eq!(primary_until(None, ttl), None);
    }

    #[tokio::test(start_paused = true)]
    async fn every_acknowledged_keep_alive_moves_the_fence() {
        let ttl = Duration::from_secs(10);
        let first = Instant::now();
        tokio::time::advance(Duration::from_secs(3)).await;
        let second = Instant::now();
        assert_eq!(
            primary_until(Some(second), ttl).unwrap() - primary_until(Some(first), ttl).unwrap(),
            Duration::from_secs(3)
        );
    }
}
