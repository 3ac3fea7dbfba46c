//! Completing CNAMEs whose target lies outside disco's zones (DESIGN §2),
//! as CoreDNS's etcd plugin does: a zone-file or SkyDNS CNAME to an outside
//! name comes back, for clients allowed recursion, with the target's
//! records resolved through the forwarder (and its cache), because a
//! container's stub resolver never follows a CNAME itself.
//!
//! When the target has nothing of that type (the upstream says NODATA or
//! NXDOMAIN), the answer is NODATA: NOERROR, the CNAME chain, and the SOA
//! the upstream gave for the target's zone (RFC 2308 §2.2). When no
//! upstream answers, the CNAME goes out alone, as it does to clients
//! outside `--allow-recursion`.
//!
//! Only CNAME-ending answers for recursing clients come here, so this path
//! parses and encodes with hickory.

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

use super::Forwarder;
use crate::dns::answer::MAX_MESSAGE;
use crate::dns::name::name_key;
use crate::dns::snapshot::{Lookup, Snapshot};

/// Whether the CNAME chain that `response` (a complete answer disco wrote)
/// ends with leads outside what `snapshot` is authoritative for. A
/// truncated response is not completed: the client asks again over TCP.
pub fn leaves(response: &[u8], snapshot: &Snapshot, qtype: RecordType) -> bool {
    if response.get(2).is_none_or(|flags| flags & 0x02 != 0) {
        return false;
    }
    last_target(response).is_some_and(|target| {
        matches!(
            snapshot.lookup(&name_key(&target), qtype),
            Lookup::NotAuthoritative
        )
    })
}

/// The target of the last CNAME in the answer section.
fn last_target(response: &[u8]) -> Option<Name> {
    let message = Message::from_vec(response).ok()?;
    match &message.answers.last()?.data {
        RData::CNAME(target) => Some(target.0.to_lowercase()),
        _ => None,
    }
}

/// `response` (disco's answer ending in a CNAME, see [`leaves`]) with the
/// target's records appended, resolved through `forwarder`; at most
/// `limit` bytes, else the CNAME alone with TC set so that the client asks
/// again over TCP.
pub async fn complete(forwarder: &Forwarder, response: &[u8], limit: usize) -> Vec<u8> {
    match completed(forwarder, response).await {
        Some(bytes) if bytes.len() <= limit => bytes,
        Some(_) => {
            let mut alone = response.to_vec();
            alone[2] |= 0x02;
            alone
        }
        None => response.to_vec(),
    }
}

async fn completed(forwarder: &Forwarder, response: &[u8]) -> Option<Vec<u8>> {
    let mut message = Message::from_vec(response).ok()?;
    let qtype = message.queries.first()?.query_type();
    let target = last_target(response)?;
    let mut query = Message::new(0, MessageType::Query, OpCode::Query);
    query.metadata.recursion_desired = true;
    // The client's CD bit, which disco's answer echoes: the target is
    // asked as the client would have asked it.
    query.metadata.checking_disabled = message.metadata.checking_disabled;
    query.add_query(Query::query(target, qtype));
    let found = forwarder
        .forward(&query.to_vec().ok()?, MAX_MESSAGE)
        .await?;
    let found = Message::from_vec(&found.bytes).ok()?;
    match found.metadata.response_code {
        ResponseCode::NoError if !found.answers.is_empty() => {
            message.answers.extend(found.answers);
        }
        ResponseCode::NoError | ResponseCode::NXDomain => {
            message.metadata.response_code = ResponseCode::NoError;
            message.authorities = (found.authorities.into_iter())
                .filter(|record| record.record_type() == RecordType::SOA)
                .collect();
        }
        _ => return None,
    }
    message.to_vec().ok()
}
