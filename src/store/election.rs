//! The election contract: how a registrar's instance of a service
//! campaigns for leadership with its store's own primitive (etcd's
//! election API on the registration's lease, ZooKeeper's leader recipe on
//! its session), so that its registration can carry the `primary` tag
//! (DESIGN §5, "Roles"). Store-agnostic, beside [`super::publish`]: a
//! store's publisher implements it, because the candidacy must live and
//! die with the registration's own lease or session.
//!
//! The store decides who leads; the policy (when to stop calling yourself
//! primary) is the registrar's (`crate::registrar::role`), from what
//! [`Election::acknowledged`] and [`Election::expiry`] say.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::time::Instant;

use super::publish::{PublishError, PublisherFuture};
use crate::model::Instance;

/// A campaign in flight: resolves once the candidate leads, or with the
/// reason it never will. It owns what it needs (it borrows no publisher),
/// so the loop polls it beside the publisher's own futures; dropping it
/// abandons the campaign.
pub type Campaign = Pin<Box<dyn Future<Output = Result<Leadership, PublishError>> + Send>>;

/// Proof of leadership, as the store gave it: what a write as the leader
/// is made conditional on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leadership {
    /// The candidate's key or node.
    pub key: String,
    /// Its create revision (etcd) or creation zxid (ZooKeeper).
    pub revision: i64,
    /// The lease (etcd) or session (ZooKeeper) it lives on.
    pub lease: i64,
}

/// A candidacy in a store's leader election.
///
/// The loop calls it from one task, never two methods at once, and only
/// while the registration is published (the candidacy is on the same
/// lease or session).
pub trait Election: Send {
    /// Joins the election of `registration`'s service (a key on the
    /// registration's lease, an ephemeral sequential node of its session),
    /// the candidate's address as its value. Returns once the store has
    /// the candidacy, with the campaign to wait on.
    fn campaign<'a>(
        &'a mut self,
        registration: &'a Instance,
    ) -> PublisherFuture<'a, Result<Campaign, PublishError>>;

    /// Writes `registration` (carrying the primary tag) only if
    /// `leadership` still holds, in one request the store checks
    /// atomically (an etcd transaction on the leader key's create
    /// revision, a ZooKeeper multi with a check of the candidate's node).
    /// `Err(Lost)` when it no longer leads: nothing was written.
    fn publish_leading<'a>(
        &'a mut self,
        registration: &'a Instance,
        leadership: &'a Leadership,
    ) -> PublisherFuture<'a, Result<(), PublishError>>;

    /// The current leader's value (its address), if there is a leader.
    fn leader(&mut self) -> PublisherFuture<'_, Result<Option<String>, PublishError>>;

    /// Leaves the election (the candidacy's key or node deleted). The
    /// registration should have been withdrawn first.
    fn resign(&mut self) -> PublisherFuture<'_, Result<(), PublishError>>;

    /// When the request was *sent* whose answer last proved the lease or
    /// session alive: the store cannot expire it before this plus
    /// [`Election::expiry`].
    fn acknowledged(&self) -> Option<Instant>;

    /// How long the store keeps the lease or session without hearing from
    /// us: the lease TTL, the session timeout the server granted.
    fn expiry(&self) -> Duration;
}
