//! The etcd side of `--elect`: etcd's own election API (the v3election
//! service), campaigning on the registration's lease, so that the
//! candidacy and the registration expire together. The lowest create
//! revision under `<prefix>.elect/<service>/` leads: beside the prefix,
//! not under it, so that `disco serve`, which reads everything under
//! `<prefix>/`, never reads (and skips, and counts) a candidate's key. The leader's
//! registration is written in a transaction that compares the leader key's
//! create revision: a candidate that lost its key (its lease expired while
//! it was frozen or cut off) cannot write `primary` again.

use std::time::Duration;

use etcd_client::{Compare, CompareOp, PutOptions, Txn, TxnOp};
use tokio::time::Instant;

use super::connect::describe;
use super::publish::{EtcdPublisher, key_value};
use super::session::timed;
use crate::model::Instance;
use crate::store::election::{Campaign, Election, Leadership};
use crate::store::publish::{PublishError, PublisherFuture};

/// One publisher's candidacy: the election's name, and the lease and its
/// generation the candidate's key is on.
#[derive(Debug, Default)]
pub(super) struct Candidacy {
    /// `<prefix>.elect/<service>`.
    name: String,
    lease: Option<(i64, u64)>,
}

/// The election's name for `service` under `prefix`.
pub(super) fn election_name(prefix: &str, service: &str) -> String {
    format!("{}.elect/{service}", prefix.trim_end_matches('/'))
}

impl EtcdPublisher {
    async fn start_campaign(&mut self, registration: &Instance) -> Result<Campaign, PublishError> {
        let granted = self.session.lease().await?;
        let name = election_name(&self.registry.path, registration.service.as_str());
        let value = registration.address.to_string();
        let mut client = granted.client.clone();
        let lease = granted.lease;
        self.candidacy = Candidacy {
            name: name.clone(),
            lease: Some((lease, granted.generation)),
        };
        Ok(Box::pin(async move {
            let response = client
                .campaign(name, value, lease)
                .await
                .map_err(|e| PublishError::Unavailable(format!("campaign: {}", describe(&e))))?;
            let leader = response
                .leader()
                .ok_or_else(|| PublishError::Lost("etcd named no leader key".to_owned()))?;
            Ok(Leadership {
                key: String::from_utf8_lossy(leader.key()).into_owned(),
                revision: leader.rev(),
                lease: leader.lease(),
            })
        }))
    }

    async fn put_leading(
        &mut self,
        registration: &Instance,
        leadership: &Leadership,
    ) -> Result<(), PublishError> {
        let (key, value) = key_value(self.format, &self.registry.path, &self.domain, registration);
        let mut client = self.session.client().await?;
        let put = TxnOp::put(
            key,
            value,
            Some(PutOptions::new().with_lease(leadership.lease)),
        );
        let txn = Txn::new()
            .when([Compare::create_revision(
                leadership.key.clone(),
                CompareOp::Equal,
                leadership.revision,
            )])
            .and_then([put]);
        match timed(client.txn(txn)).await? {
            Ok(response) if response.succeeded() => Ok(()),
            Ok(_) => Err(PublishError::Lost(
                "the leader key is gone (its lease expired): no longer the leader".to_owned(),
            )),
            Err(error) => Err(self.failed(error).await),
        }
    }

    async fn current_leader(&mut self) -> Result<Option<String>, PublishError> {
        if self.candidacy.name.is_empty() {
            return Ok(None);
        }
        let mut client = self.session.client().await?;
        match timed(client.leader(self.candidacy.name.clone())).await? {
            Ok(response) => Ok(response
                .kv()
                .and_then(|kv| kv.value_str().ok())
                .map(str::to_owned)),
            // "election: no leader"
            Err(error) if describe(&error).contains("no leader") => Ok(None),
            Err(error) => Err(PublishError::Unavailable(describe(&error))),
        }
    }

    async fn leave(&mut self) -> Result<(), PublishError> {
        let candidacy = std::mem::take(&mut self.candidacy);
        let Some((lease, _)) = candidacy.lease else {
            return Ok(());
        };
        // etcd's own naming of a candidate's key: the name, then the lease
        // in hex.
        let key = format!("{}/{lease:x}", candidacy.name);
        let mut client = self.session.client().await?;
        match timed(client.delete(key, None)).await? {
            Ok(_) => Ok(()),
            Err(error) => Err(self.failed(error).await),
        }
    }
}

impl Election for EtcdPublisher {
    fn campaign<'a>(
        &'a mut self,
        registration: &'a Instance,
    ) -> PublisherFuture<'a, Result<Campaign, PublishError>> {
        Box::pin(self.start_campaign(registration))
    }

    fn publish_leading<'a>(
        &'a mut self,
        registration: &'a Instance,
        leadership: &'a Leadership,
    ) -> PublisherFuture<'a, Result<(), PublishError>> {
        Box::pin(self.put_leading(registration, leadership))
    }

    fn leader(&mut self) -> PublisherFuture<'_, Result<Option<String>, PublishError>> {
        Box::pin(self.current_leader())
    }

    fn resign(&mut self) -> PublisherFuture<'_, Result<(), PublishError>> {
        Box::pin(self.leave())
    }

    fn acknowledged(&self) -> Option<Instant> {
        let acknowledged = self.session.acknowledged()?;
        // Proof for another lease says nothing of the candidacy's.
        match self.candidacy.lease {
            Some((_, generation)) if generation != acknowledged.generation => None,
            _ => Some(acknowledged.at),
        }
    }

    fn expiry(&self) -> Duration {
        Duration::from_secs(self.session.ttl() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_service_has_its_own_election() {
        assert_eq!(election_name("/disco/", "db"), "/disco.elect/db");
        assert_eq!(
            election_name("/disco", "api.billing"),
            "/disco.elect/api.billing"
        );
    }
}
