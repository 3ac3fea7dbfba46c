//! `disco wait`: blocks until every name answers in DNS (at least N
//! addresses, or exactly one primary), for container entrypoints on swarm,
//! where `depends_on` is ignored (DESIGN §5). It asks DNS through
//! [`crate::dns::ask`], never the store: what it waits for is what the
//! application will resolve.

use std::time::Duration;

use tokio::time::Instant;

use crate::config::{WaitConfig, Want};
use crate::dns::ask::{self, Seen};

/// Time between rounds of questions: a name that starts answering is seen
/// within this (plus one round trip).
pub const POLL_EVERY: Duration = Duration::from_millis(25);

/// How long one question may go unanswered before it is asked again.
const QUESTION_TIMEOUT: Duration = Duration::from_millis(500);

/// How one name stands.
#[derive(Debug, Clone)]
pub struct Progress {
    /// The name as given.
    pub name: String,
    /// What was last seen, and as which absolute name.
    pub seen: Seen,
    /// The absolute name that gave `seen`, once one was asked.
    pub asked: Option<String>,
    /// Whether it answers as wanted.
    pub done: bool,
}

/// Why `disco wait` gave up: per name, what it wanted and last saw.
#[derive(Debug)]
pub struct TimedOut(pub Vec<String>);

impl std::fmt::Display for TimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("; "))
    }
}

/// Whether `seen` is what `want` asks for.
pub fn satisfied(want: Want, seen: &Seen) -> bool {
    match (want, seen) {
        (Want::AtLeast(n), Seen::Addresses(found)) => found.len() >= n,
        (Want::OnePrimary, Seen::Addresses(found)) => found.len() == 1,
        _ => false,
    }
}

/// What `want` asks of `name`, for the timeout message.
fn wanted(want: Want, name: &str) -> String {
    match want {
        Want::AtLeast(1) => format!("{name}: wanted an address"),
        Want::AtLeast(n) => format!("{name}: wanted at least {n} addresses"),
        Want::OnePrimary => format!("{name}: wanted exactly one primary (primary.{name})"),
    }
}

/// Asks until every name is satisfied (`Ok`) or the timeout passes.
pub async fn run(config: &WaitConfig) -> Result<(), TimedOut> {
    let deadline = Instant::now() + config.timeout;
    let mut progress: Vec<Progress> = config
        .names
        .iter()
        .map(|name| Progress {
            name: name.clone(),
            seen: Seen::Nothing,
            asked: None,
            done: false,
        })
        .collect();
    loop {
        let round = progress
            .iter()
            .filter(|p| !p.done)
            .map(|p| look(config, p.name.clone()));
        let results = futures_util::future::join_all(round).await;
        let mut results = results.into_iter();
        for p in progress.iter_mut().filter(|p| !p.done) {
            let (asked, seen) = results.next().expect("one result per name");
            p.done = satisfied(config.want, &seen);
            p.seen = seen;
            p.asked = Some(asked);
        }
        if progress.iter().all(|p| p.done) {
            return Ok(());
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(TimedOut(
                progress
                    .iter()
                    .filter(|p| !p.done)
                    .map(|p| {
                        let asked = p.asked.as_deref().unwrap_or(&p.name);
                        format!(
                            "{}, last saw {} for {asked}",
                            wanted(config.want, &p.name),
                            p.seen
                        )
                    })
                    .collect(),
            ));
        }
        tokio::time::sleep_until(std::cmp::min(now + POLL_EVERY, deadline)).await;
    }
}

/// One look at `name`: each absolute name it completes to in turn, asked
/// of the servers in order until one replies. The first that answers
/// with addresses ends the search, as it does for the libc resolver;
/// otherwise the most telling reply is kept (NODATA over an error code
/// over silence).
async fn look(config: &WaitConfig, name: String) -> (String, Seen) {
    let name = match config.want {
        Want::OnePrimary => format!("primary.{name}"),
        Want::AtLeast(_) => name,
    };
    let rank = |seen: &Seen| match seen {
        Seen::Addresses(_) => 2,
        Seen::Code(_) => 1,
        _ => 0,
    };
    let mut best: Option<(String, Seen)> = None;
    for candidate in config.resolv.candidates(&name) {
        let mut seen = Seen::Nothing;
        for server in &config.servers {
            seen = ask::addresses(*server, &candidate, QUESTION_TIMEOUT).await;
            if !matches!(seen, Seen::NoReply(_)) {
                break;
            }
        }
        if matches!(&seen, Seen::Addresses(found) if !found.is_empty()) {
            return (candidate, seen);
        }
        if best.as_ref().is_none_or(|(_, b)| rank(&seen) > rank(b)) {
            best = Some((candidate, seen));
        }
    }
    best.unwrap_or((name, Seen::Nothing))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_primary_means_exactly_one_address() {
        let one = Seen::Addresses(vec!["10.0.0.1".parse().unwrap()]);
        let two = Seen::Addresses(vec![
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
        ]);
        assert!(satisfied(Want::OnePrimary, &one));
        assert!(!satisfied(Want::OnePrimary, &two));
        assert!(satisfied(Want::AtLeast(2), &two));
        assert!(!satisfied(Want::AtLeast(1), &Seen::Addresses(vec![])));
        assert!(!satisfied(Want::AtLeast(1), &Seen::Code("NXDOMAIN".into())));
    }
}
