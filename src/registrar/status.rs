//! What each service's tasks report, read by `/ready`, `/metrics` and the
//! page: relaxed atomics written by the checker and the publisher, never a
//! lock; the texts (a check's last error, why the last change happened)
//! are swapped in whole (`arc-swap`), written only when they change.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;

use super::role::Role;

/// The results of one check.
#[derive(Debug)]
pub struct CheckStatus {
    /// What it checks (`tcp 127.0.0.1:8080`).
    pub name: String,
    passed: AtomicU64,
    failed: AtomicU64,
    last_passed: AtomicBool,
    /// Sum of run times, microseconds (with the counts, a mean).
    duration_sum_us: AtomicU64,
    last_duration_us: AtomicU64,
    /// Why the last failing run failed; kept after it passes again.
    last_error: ArcSwapOption<String>,
}

impl CheckStatus {
    /// No result yet.
    pub fn new(name: &str) -> Self {
        CheckStatus {
            name: name.to_owned(),
            passed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            last_passed: AtomicBool::new(false),
            duration_sum_us: AtomicU64::new(0),
            last_duration_us: AtomicU64::new(0),
            last_error: ArcSwapOption::empty(),
        }
    }

    /// Records one run: `error` is why it failed, `None` when it passed.
    pub fn record(&self, error: Option<&str>, took: Duration) {
        let passed = error.is_none();
        if let Some(error) = error {
            self.last_error.store(Some(Arc::new(error.to_owned())));
        }
        let counter = if passed { &self.passed } else { &self.failed };
        counter.fetch_add(1, Relaxed);
        self.last_passed.store(passed, Relaxed);
        let micros = took.as_micros() as u64;
        self.duration_sum_us.fetch_add(micros, Relaxed);
        self.last_duration_us.store(micros, Relaxed);
    }

    /// Runs that passed and failed.
    pub fn counts(&self) -> (u64, u64) {
        (self.passed.load(Relaxed), self.failed.load(Relaxed))
    }

    /// Whether the last run passed.
    pub fn last_passed(&self) -> bool {
        self.last_passed.load(Relaxed)
    }

    /// Why the last failing run failed, if any run has failed.
    pub fn last_error(&self) -> Option<Arc<String>> {
        self.last_error.load_full()
    }

    /// Total and last run time.
    pub fn durations(&self) -> (Duration, Duration) {
        (
            Duration::from_micros(self.duration_sum_us.load(Relaxed)),
            Duration::from_micros(self.last_duration_us.load(Relaxed)),
        )
    }
}

/// A change of what the store holds or of the role, and why it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastChange {
    /// When.
    pub at: SystemTime,
    /// What changed (`published`, `withdrawn`, `primary`, …).
    pub what: String,
    /// Why (`check failed 3× (tcp 127.0.0.1:8080: connection refused)`,
    /// `maintenance file appeared`, `lost leadership: …`).
    pub why: String,
}

/// The state of one registered service.
#[derive(Debug)]
pub struct ServiceStatus {
    /// `service/instance`.
    pub name: String,
    /// Where it is published (the publisher's description).
    pub target: String,
    /// One per check, in the order configured.
    pub checks: Vec<CheckStatus>,
    healthy: AtomicBool,
    published: AtomicBool,
    maintenance: AtomicBool,
    store_errors: AtomicU64,
    publishes: AtomicU64,
    /// With `--elect`: 1 + the role's index in [`Role::ALL`]; 0 without.
    role: AtomicU8,
    /// Why the checks say what they say, from their last transition.
    health_reason: ArcSwapOption<String>,
    last_change: ArcSwapOption<LastChange>,
}

impl ServiceStatus {
    /// Unhealthy and unpublished.
    pub fn new(name: String, target: String, checks: Vec<CheckStatus>) -> Self {
        ServiceStatus {
            name,
            target,
            checks,
            healthy: AtomicBool::new(false),
            published: AtomicBool::new(false),
            maintenance: AtomicBool::new(false),
            store_errors: AtomicU64::new(0),
            publishes: AtomicU64::new(0),
            role: AtomicU8::new(0),
            health_reason: ArcSwapOption::empty(),
            last_change: ArcSwapOption::empty(),
        }
    }

    /// Why the checks say healthy or not (set at each transition).
    pub fn health_reason(&self) -> Option<Arc<String>> {
        self.health_reason.load_full()
    }

    /// Sets why the checks say what they say; the checker calls this
    /// before it tells the publisher, so the publisher reads the reason
    /// of the transition it acts on.
    pub fn set_health_reason(&self, reason: String) {
        self.health_reason.store(Some(Arc::new(reason)));
    }

    /// The last change and why, if anything has changed yet.
    pub fn last_change(&self) -> Option<Arc<LastChange>> {
        self.last_change.load_full()
    }

    /// Records a change and why it happened (now).
    pub fn record_change(&self, what: &str, why: &str) {
        tracing::debug!(service = %self.name, what, why, "change");
        self.last_change.store(Some(Arc::new(LastChange {
            at: SystemTime::now(),
            what: what.to_owned(),
            why: why.to_owned(),
        })));
    }

    /// Whether the checks say healthy.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Relaxed)
    }

    /// Sets what the checks say.
    pub fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Relaxed);
    }

    /// Whether the store holds the registration (as far as the registrar
    /// knows).
    pub fn published(&self) -> bool {
        self.published.load(Relaxed)
    }

    /// Sets whether the store holds it; counts each publish.
    pub fn set_published(&self, published: bool) {
        if published && !self.published.swap(true, Relaxed) {
            self.publishes.fetch_add(1, Relaxed);
        }
        self.published.store(published, Relaxed);
    }

    /// Whether maintenance withdraws it.
    pub fn maintenance(&self) -> bool {
        self.maintenance.load(Relaxed)
    }

    /// Sets maintenance.
    pub fn set_maintenance(&self, on: bool) {
        self.maintenance.store(on, Relaxed);
    }

    /// Counts a failed store request.
    pub fn record_store_error(&self) {
        self.store_errors.fetch_add(1, Relaxed);
    }

    /// Failed store requests so far.
    pub fn store_errors(&self) -> u64 {
        self.store_errors.load(Relaxed)
    }

    /// The role, for a service with `--elect`.
    pub fn role(&self) -> Option<Role> {
        match self.role.load(Relaxed) {
            0 => None,
            n => Role::ALL.get(usize::from(n) - 1).copied(),
        }
    }

    /// Sets the role.
    pub fn set_role(&self, role: Role) {
        let index = Role::ALL.iter().position(|r| *r == role).unwrap_or(0);
        self.role.store(index as u8 + 1, Relaxed);
    }

    /// Times the registration was written after being absent.
    pub fn publishes(&self) -> u64 {
        self.publishes.load(Relaxed)
    }
}
