//! The reconcile: what the engine's containers want against what this
//! registrar runs, in both directions. Pure; the event loop applies the
//! [`Changes`]. A full reconcile (at start, on every reopened event
//! stream, every `--resync`) looks at every container; an event looks at
//! its container only.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::time::Duration;

use super::select::{Key, Wanted};

/// Which registrations a plan may stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// All of them: `wanted` is every container's.
    All,
    /// Those of this container: `wanted` is its alone.
    Container(&'a str),
}

/// What to do to make the running registrations equal the wanted ones.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// New registrations.
    pub start: Vec<Wanted>,
    /// Registrations that moved (address, port, tags, metadata): the
    /// running loop withdraws the old and publishes the new.
    pub update: Vec<Wanted>,
    /// Registrations whose checks or election changed: stopped, then
    /// started anew.
    pub restart: Vec<Wanted>,
    /// A HEALTHCHECK's new verdict.
    pub health: Vec<(Key, bool)>,
    /// Registrations to withdraw.
    pub stop: Vec<Key>,
}

impl Changes {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        *self == Changes::default()
    }
}

/// The plan that makes `running` equal `wanted` within `scope`.
pub fn plan<R: Borrow<Wanted>>(
    wanted: &[Wanted],
    running: &BTreeMap<Key, R>,
    scope: Scope<'_>,
) -> Changes {
    let mut changes = Changes::default();
    for want in wanted {
        let Some(now) = running.get(&want.key).map(Borrow::borrow) else {
            changes.start.push(want.clone());
            continue;
        };
        let checked_alike = now.checks == want.checks
            && now.interval == want.interval
            && now.timeout == want.timeout
            && now.thresholds == want.thresholds
            && now.docker_health.is_some() == want.docker_health.is_some()
            && now.elect == want.elect;
        if !checked_alike {
            changes.restart.push(want.clone());
            continue;
        }
        if now.registration != want.registration {
            changes.update.push(want.clone());
        }
        if let Some(healthy) = want.docker_health
            && now.docker_health != want.docker_health
        {
            changes.health.push((want.key.clone(), healthy));
        }
    }
    let in_scope = |key: &Key| match scope {
        Scope::All => true,
        Scope::Container(id) => key.container == id,
    };
    for key in running.keys().filter(|k| in_scope(k)) {
        if !wanted.iter().any(|w| w.key == *key) {
            changes.stop.push(key.clone());
        }
    }
    changes
}

/// Docker's stop timeout when the container sets none.
pub const DOCKER_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// After `docker stop` has run out its timeout: the SIGKILL, and the
/// `die` event reaching the registrar.
const AFTER_SIGKILL: Duration = Duration::from_secs(2);

/// How long a container withdrawn at `kill`/`stop` stays withdrawn while
/// it still runs (a reconcile meanwhile does not publish it again), unless
/// it dies or starts again first. The registrar waits for nothing: the
/// container's own stop timeout is its drain, so it stays out of DNS as
/// long as `docker stop` lets it drain, however long that is; a
/// `disco.drain` label lengthens it (for `docker kill -s TERM`, which has
/// no timeout); never shorter than two reconciles.
pub fn stopping_window(
    resync: Duration,
    stop_timeout: Option<Duration>,
    drain: Option<Duration>,
) -> Duration {
    let stop = stop_timeout.unwrap_or(DOCKER_STOP_TIMEOUT) + AFTER_SIGKILL;
    (resync * 2).max(stop).max(drain.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::model::{Instance, InstanceId, ServiceName};
    use crate::registrar::health::Thresholds;

    fn wanted(container: &str, service: &str, port: u16, health: Option<bool>) -> Wanted {
        let id = format!("{container}-x");
        let mut registration = Instance::new(
            ServiceName::new(service).unwrap(),
            InstanceId::new(&id).unwrap(),
            "10.0.0.1".parse().unwrap(),
        );
        registration.port = Some(port);
        Wanted {
            key: Key {
                container: container.into(),
                service: service.into(),
                instance: id,
            },
            container_name: container.into(),
            registration,
            checks: Vec::new(),
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
            thresholds: Thresholds { rise: 2, fall: 3 },
            docker_health: health,
            elect: None,
            drain: None,
        }
    }

    fn running(items: &[Wanted]) -> BTreeMap<Key, Wanted> {
        items.iter().map(|w| (w.key.clone(), w.clone())).collect()
    }

    fn keys(items: &[Wanted]) -> Vec<&str> {
        items.iter().map(|w| w.key.container.as_str()).collect()
    }

    /// Each row: `--resync`, the container's stop timeout and
    /// `disco.drain`; how long it stays withdrawn while stopping.
    #[test]
    fn a_stopping_container_stays_withdrawn_for_its_stop_timeout() {
        let s = Duration::from_secs;
        let rows = [
            // Docker's default stop timeout, and the SIGKILL's die event.
            (s(1), None, None, s(12)),
            // compose's stop_grace_period: 2m: out of DNS all along.
            (s(30), Some(s(120)), None, s(122)),
            // A short stop timeout: never shorter than two reconciles.
            (s(30), Some(s(1)), None, s(60)),
            (s(1), Some(s(0)), None, s(2)),
            // disco.drain lengthens it (docker kill -s TERM), never shortens.
            (s(1), Some(s(1)), Some(s(8)), s(8)),
            (s(1), Some(s(30)), Some(s(8)), s(32)),
            (s(1), Some(s(1)), Some(s(0)), s(3)),
        ];
        for (resync, stop_timeout, drain, window) in rows {
            assert_eq!(
                stopping_window(resync, stop_timeout, drain),
                window,
                "resync {resync:?}, stop timeout {stop_timeout:?}, disco.drain {drain:?}"
            );
        }
    }

    /// Each row: what the engine wants, what runs, the scope; what to
    /// start, update, restart, the health changes and what to stop.
    #[test]
    // Each row spells out its inputs, clones and all.
    #[allow(clippy::cloned_ref_to_slice_refs)]
    fn the_reconcile_table() {
        let a = wanted("a", "web", 80, None);
        let b = wanted("b", "web", 80, Some(true));
        let b_sick = wanted("b", "web", 80, Some(false));
        let a_moved = wanted("a", "web", 81, None);
        let mut a_checked = a.clone();
        a_checked.checks = vec![crate::registrar::check::CheckSpec::Tcp {
            target: "10.0.0.1:80".into(),
        }];
        // Nothing runs: everything starts.
        let c = plan(&[a.clone(), b.clone()], &running(&[]), Scope::All);
        assert_eq!(keys(&c.start), ["a", "b"]);
        // Equal: nothing to do.
        let c = plan(&[a.clone()], &running(&[a.clone()]), Scope::All);
        assert!(c.is_empty());
        // Gone from the engine: stopped (a missed `die`).
        let c = plan(&[a.clone()], &running(&[a.clone(), b.clone()]), Scope::All);
        assert_eq!(c.stop, [b.key.clone()]);
        assert!(c.start.is_empty());
        // An event about `a` never stops `b`.
        let c = plan(
            &[],
            &running(&[a.clone(), b.clone()]),
            Scope::Container("a"),
        );
        assert_eq!(c.stop, [a.key.clone()]);
        // Moved: updated in place.
        let c = plan(&[a_moved.clone()], &running(&[a.clone()]), Scope::All);
        assert_eq!(keys(&c.update), ["a"]);
        // Checks changed: restarted.
        let c = plan(&[a_checked], &running(&[a.clone()]), Scope::All);
        assert_eq!(keys(&c.restart), ["a"]);
        // HEALTHCHECK turned: a health change only.
        let c = plan(&[b_sick.clone()], &running(&[b.clone()]), Scope::All);
        assert_eq!(c.health, [(b.key.clone(), false)]);
        assert!(c.update.is_empty() && c.restart.is_empty());
        // A HEALTHCHECK appeared (image changed under the same key): restarted.
        let c = plan(&[b], &running(&[wanted("b", "web", 80, None)]), Scope::All);
        assert_eq!(keys(&c.restart), ["b"]);
        // disco.elect given, or its tag changed: restarted (a new candidacy).
        let mut a_elected = a.clone();
        a_elected.elect = Some("primary".into());
        let c = plan(&[a_elected.clone()], &running(&[a.clone()]), Scope::All);
        assert_eq!(keys(&c.restart), ["a"]);
        let mut a_leader = a.clone();
        a_leader.elect = Some("leader".into());
        let c = plan(&[a_leader], &running(&[a_elected.clone()]), Scope::All);
        assert_eq!(keys(&c.restart), ["a"]);
        let c = plan(&[a_elected.clone()], &running(&[a_elected]), Scope::All);
        assert!(c.is_empty());
    }
}
