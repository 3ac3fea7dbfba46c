//! Roles (`--elect`, DESIGN §5): a service's healthy instances campaign
//! through the store's election ([`crate::store::election`]); the leader
//! is published with the primary tag, the others with `replica`. This
//! module is the registrar's policy around the store's primitive:
//!
//! - [`fence`]: when a leader must stop calling itself primary, a pure
//!   function of the last acknowledged keep-alive and the TTL.
//! - [`report`]: how the service learns its role: the role file, written
//!   atomically, and the `--on-role-change` hook.
//!
//! The publisher loop (`super::publishing`) drives the election.

pub mod fence;
pub mod report;

use std::path::PathBuf;

/// The tag the leader is published with when `--elect` names none.
pub const DEFAULT_TAG: &str = "primary";

/// The tag every other healthy candidate is published with.
pub const REPLICA_TAG: &str = "replica";

/// What an instance is, as its role file and hook say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Not published (unhealthy, in maintenance, store away, fenced).
    None,
    /// Published, not the leader.
    Replica,
    /// Published as the leader.
    Primary,
}

impl Role {
    /// `none`, `replica`, `primary`: the role file's content and
    /// `DISCO_ROLE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::None => "none",
            Role::Replica => "replica",
            Role::Primary => "primary",
        }
    }

    /// Every role, for `/metrics`.
    pub const ALL: [Role; 3] = [Role::None, Role::Replica, Role::Primary];
}

/// `--elect [TAG]`, `--role-file`, `--on-role-change` of one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectConfig {
    /// The leader's tag (`primary`).
    pub tag: String,
    /// Where the role is written, if anywhere.
    pub role_file: Option<PathBuf>,
    /// The command run (by `sh -c`) on every change of role.
    pub on_role_change: Option<String>,
}
