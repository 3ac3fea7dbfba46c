//! Everything DNS: the only module that uses hickory's types.
//!
//! - [`packet`]: reading queries and writing headers by hand (the query path).
//! - [`answer`]: answers encoded once with hickory, patched per response
//!   (A and AAAA shuffled, SRV rotated on the wire: `rotation`, a helper
//!   below `answer` that knows nothing of it).
//! - [`records`]: pure record building from the registry model.
//! - `name`: a name's lowercase wire form, the key every index and the
//!   encoder share, and the offsets of its labels.
//! - [`snapshot`]: the immutable index the query path reads.
//! - [`zonefile`]: static records from `*.zone` files.
//! - [`responder`]: one query in, one response out ([`Responder`]).
//! - [`forward`]: names outside disco's zones, sent upstream.
//! - [`rrl`]: response rate limiting, which the responder applies to UDP
//!   answers; [`cookie`]: DNS cookies, which exempt a client from it.
//! - [`server`]: UDP and TCP sockets.
//! - [`ask`]: the other way round, a small client asking a server for a
//!   name's addresses (`disco wait`).

pub mod answer;
pub mod ask;
pub mod cookie;
pub mod forward;
mod name;
pub mod packet;
pub mod records;
pub mod responder;
mod rotation;
pub mod rrl;
pub mod server;
pub mod snapshot;
pub mod udp_batch;
pub mod zonefile;

pub use responder::{RecursionAcl, Responder};
pub use snapshot::{Snapshot, SnapshotBuilder};
pub use zonefile::{ZoneFile, ZoneFileError};

/// Why a name given on the command line (`--domain`, a `disco wait` name)
/// is not one DNS can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// `.` or nothing, given as the served domain.
    #[error("the root cannot be served; name a zone such as disco.internal")]
    Root,
    /// `a..b`, `.a`, or nothing at all.
    #[error("an empty label (two dots in a row, or a leading dot)")]
    EmptyLabel,
    /// hickory refuses it (a label over 63 bytes, a name over 255): its
    /// reason.
    #[error("not a DNS name: {0}")]
    Invalid(String),
}

/// Checks that `domain` can be served: a valid, non-root DNS name.
pub fn validate_domain(domain: &str) -> Result<(), NameError> {
    if domain.trim_end_matches('.').is_empty() {
        return Err(NameError::Root);
    }
    if domain.trim_end_matches('.').split('.').any(str::is_empty) {
        return Err(NameError::EmptyLabel);
    }
    let name = hickory_proto::rr::Name::from_ascii(domain)
        .map_err(|err| NameError::Invalid(err.to_string()))?;
    if name.is_root() {
        return Err(NameError::Root);
    }
    Ok(())
}
