//! How long to wait before trying again (a store, a listener that ended):
//! 100 ms doubling to 5 s, with jitter so that many disco replicas (or
//! registrars) do not retry in step. A leaf: the backends, the registrar
//! and the DNS server's supervision all use it.

use std::time::Duration;

use rand::Rng;

const FIRST: Duration = Duration::from_millis(100);
const MAX: Duration = Duration::from_secs(5);

/// Exponential backoff with jitter.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Backoff {
    /// A backoff whose first delay is about 100 ms.
    pub fn new() -> Self {
        Backoff { next: FIRST }
    }

    /// The next delay: between half and all of the current step, which
    /// then doubles up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let step = self.next;
        self.next = (step * 2).min(MAX);
        let half = step / 2;
        half + rand::rng().random_range(Duration::ZERO..=half)
    }

    /// Back to the first step, after a success.
    pub fn reset(&mut self) {
        self.next = FIRST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_to_the_cap_with_jitter() {
        let mut backoff = Backoff::new();
        let first = backoff.next_delay();
        assert!(first >= FIRST / 2 && first <= FIRST);
        for _ in 0..20 {
            let delay = backoff.next_delay();
            assert!(delay <= MAX);
        }
        let capped = backoff.next_delay();
        assert!(capped >= MAX / 2);
        backoff.reset();
        assert!(backoff.next_delay() <= FIRST);
    }
}
