//! The rise/fall state machine: a service starts unhealthy, becomes healthy
//! after `rise` consecutive passing rounds of checks and unhealthy again
//! after `fall` consecutive failing ones. Pure: the checker feeds it results
//! and acts on the transitions it returns.

/// How many rounds in a row turn the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Passing rounds in a row to become healthy (at least 1).
    pub rise: u32,
    /// Failing rounds in a row to become unhealthy (at least 1).
    pub fall: u32,
}

/// A change of state, returned once when it happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The service passed `rise` rounds in a row.
    Healthy,
    /// The service failed `fall` rounds in a row.
    Unhealthy,
}

/// The health of one service.
#[derive(Debug, Clone)]
pub struct Health {
    thresholds: Thresholds,
    healthy: bool,
    /// Consecutive rounds that disagree with the current state.
    streak: u32,
}

impl Health {
    /// Unhealthy, with no round seen: nothing is published before the
    /// service has passed.
    pub fn new(thresholds: Thresholds) -> Self {
        Health {
            thresholds,
            healthy: false,
            streak: 0,
        }
    }

    /// Whether the service counts as healthy now.
    pub fn is_healthy(&self) -> bool {
        self.healthy
    }

    /// Records one round of checks; returns the transition it caused.
    pub fn record(&mut self, passed: bool) -> Option<Transition> {
        if passed == self.healthy {
            // Agrees with the state: a streak toward the other is broken.
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        let needed = if passed {
            self.thresholds.rise
        } else {
            self.thresholds.fall
        };
        if self.streak < needed {
            return None;
        }
        self.healthy = passed;
        self.streak = 0;
        Some(if passed {
            Transition::Healthy
        } else {
            Transition::Unhealthy
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(rise: u32, fall: u32, rounds: &str) -> Vec<Option<Transition>> {
        let mut health = Health::new(Thresholds { rise, fall });
        rounds.chars().map(|c| health.record(c == '+')).collect()
    }

    #[test]
    fn starts_unhealthy_and_rises_after_rise_passes_in_a_row() {
        use Transition::*;
        assert_eq!(run(2, 3, "++"), [None, Some(Healthy)]);
        assert_eq!(run(2, 3, "+-++"), [None, None, None, Some(Healthy)]);
        assert_eq!(run(1, 1, "+"), [Some(Healthy)]);
        assert_eq!(run(2, 3, "---"), [None, None, None], "already unhealthy");
    }

    #[test]
    fn falls_after_fall_failures_in_a_row() {
        use Transition::*;
        let seen = run(1, 3, "+--+---+");
        assert_eq!(
            seen,
            [
                Some(Healthy),
                None,
                None,
                None,
                None,
                None,
                Some(Unhealthy),
                Some(Healthy)
            ]
        );
    }
}
