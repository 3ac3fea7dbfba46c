//! The ZooKeeper side of `--elect`: the leader recipe. Each candidate
//! creates an ephemeral sequential node `<root>/elect/<service>/n_<seq>`
//! of the registration's own session (so the candidacy and the
//! registration end together); the lowest sequence leads, and each other
//! candidate watches only the node just before its own, so a leader's end
//! wakes one candidate, not all. The leader's registration is written in a
//! multi that checks its candidate node: a candidate whose session expired
//! (frozen, cut off) cannot write `primary` again.

use std::time::Duration;

use tokio::time::Instant;
use zookeeper_client::{Acls, Client, CreateMode, Error, EventType};

use super::publish::{ZkPublisher, timed};
use crate::model::{self, Instance};
use crate::store::election::{Campaign, Election, Leadership};
use crate::store::publish::{PublishError, PublisherFuture};

/// The prefix of a candidate's node; ZooKeeper appends the sequence.
const CANDIDATE: &str = "n_";

/// One publisher's candidacy.
#[derive(Debug, Clone)]
pub(super) struct Candidacy {
    /// `<root>/elect/<service>`.
    dir: String,
    /// The candidate's node.
    node: String,
}

/// The election's directory for `service` under `root`.
pub(super) fn election_dir(root: &str, service: &str) -> String {
    format!("{}/elect/{service}", root.trim_end_matches('/'))
}

/// The candidates among `children`, lowest sequence first.
fn in_order(children: Vec<String>) -> Vec<String> {
    let mut candidates: Vec<(u64, String)> = children
        .into_iter()
        .filter_map(|child| {
            let sequence = child.strip_prefix(CANDIDATE)?.parse().ok()?;
            Some((sequence, child))
        })
        .collect();
    candidates.sort();
    candidates.into_iter().map(|(_, child)| child).collect()
}

fn unavailable(what: &str, error: Error) -> PublishError {
    PublishError::Unavailable(format!("{what}: {error}"))
}

/// Waits until `node` is the lowest candidate in `dir`, watching the one
/// before it each time.
async fn campaign(client: Client, dir: String, node: String) -> Result<Leadership, PublishError> {
    let own = node.rsplit('/').next().unwrap_or_default().to_owned();
    loop {
        let children = timed(client.list_children(&dir))
            .await?
            .map_err(|e| unavailable(&format!("listing {dir}"), e))?;
        let candidates = in_order(children);
        let Some(position) = candidates.iter().position(|c| *c == own) else {
            return Err(PublishError::Lost(format!(
                "the candidate node {node} is gone (the session ended)"
            )));
        };
        if position == 0 {
            let stat = timed(client.check_stat(&node))
                .await?
                .map_err(|e| unavailable(&format!("reading {node}"), e))?
                .ok_or_else(|| PublishError::Lost(format!("{node} is gone")))?;
            return Ok(Leadership {
                key: node,
                revision: stat.czxid,
                lease: stat.ephemeral_owner,
            });
        }
        let before = format!("{dir}/{}", candidates[position - 1]);
        let (stat, watcher) = timed(client.check_and_watch_stat(&before))
            .await?
            .map_err(|e| unavailable(&format!("watching {before}"), e))?;
        if stat.is_none() {
            continue;
        }
        let event = watcher.changed().await;
        if event.event_type == EventType::Session && event.session_state.is_terminated() {
            return Err(PublishError::Lost(format!(
                "the ZooKeeper session is {}",
                event.session_state
            )));
        }
    }
}

impl ZkPublisher {
    async fn start_campaign(&mut self, registration: &Instance) -> Result<Campaign, PublishError> {
        let client = self.client().await?;
        let dir = election_dir(&self.registry.path, registration.service.as_str());
        let directories = CreateMode::Persistent.with_acls(Acls::anyone_all());
        timed(client.mkdir(&dir, &directories))
            .await?
            .map_err(|e| unavailable(&format!("creating {dir}"), e))?;
        // A candidacy of this session from before (a republish) is left
        // first: one node per candidate.
        self.leave().await?;
        let sequential = CreateMode::EphemeralSequential.with_acls(Acls::anyone_all());
        let prefix = format!("{dir}/{CANDIDATE}");
        let value = registration.address.to_string();
        let sent = Instant::now();
        let (_, sequence) = timed(client.create(&prefix, value.as_bytes(), &sequential))
            .await?
            .map_err(|e| unavailable(&format!("creating {prefix}"), e))?;
        self.acknowledged = Some(sent);
        let node = format!("{prefix}{sequence}");
        self.candidacy = Some(Candidacy {
            dir: dir.clone(),
            node: node.clone(),
        });
        Ok(Box::pin(campaign(client, dir, node)))
    }

    async fn put_leading(
        &mut self,
        registration: &Instance,
        leadership: &Leadership,
    ) -> Result<(), PublishError> {
        let client = self.client().await?;
        let Some(path) = self.written.clone() else {
            return Err(PublishError::Lost("nothing published to mark".to_owned()));
        };
        let value = model::native_value(registration);
        let mut multi = client.new_multi_writer();
        // The candidate node is never written: version 0 while it exists.
        let built = multi
            .add_check_version(&leadership.key, 0)
            .and_then(|()| multi.add_set_data(&path, &value, None));
        if let Err(error) = built {
            return Err(unavailable("building the leader's write", error));
        }
        let sent = Instant::now();
        match timed(multi.commit()).await? {
            Ok(_) => {
                self.acknowledged = Some(sent);
                Ok(())
            }
            Err(error) => {
                let error = Error::from(error);
                match error {
                    Error::NoNode | Error::BadVersion => Err(PublishError::Lost(format!(
                        "{} or {path} is gone: no longer the leader",
                        leadership.key
                    ))),
                    error => Err(self.failed("writing as the leader", error)),
                }
            }
        }
    }

    async fn current_leader(&mut self) -> Result<Option<String>, PublishError> {
        let Some(candidacy) = self.candidacy.clone() else {
            return Ok(None);
        };
        let client = self.client().await?;
        let children = timed(client.list_children(&candidacy.dir))
            .await?
            .map_err(|e| unavailable(&format!("listing {}", candidacy.dir), e))?;
        let Some(first) = in_order(children).into_iter().next() else {
            return Ok(None);
        };
        match timed(client.get_data(&format!("{}/{first}", candidacy.dir))).await? {
            Ok((data, _)) => Ok(String::from_utf8(data).ok()),
            Err(Error::NoNode) => Ok(None),
            Err(error) => Err(unavailable("reading the leader", error)),
        }
    }

    pub(super) async fn leave(&mut self) -> Result<(), PublishError> {
        let Some(candidacy) = self.candidacy.take() else {
            return Ok(());
        };
        let Some(client) = self.client.clone() else {
            return Ok(());
        };
        match timed(client.delete(&candidacy.node, None)).await? {
            Ok(()) | Err(Error::NoNode) => Ok(()),
            Err(error) => Err(self.failed(&format!("deleting {}", candidacy.node), error)),
        }
    }

    /// A request on the session, as proof it lives (the keep-alive of a
    /// candidate: the client's own pings say nothing the loop can see).
    pub(super) async fn prove_alive(&mut self) -> Result<(), PublishError> {
        let Some(candidacy) = self.candidacy.clone() else {
            return Ok(());
        };
        let client = self.client().await?;
        let sent = Instant::now();
        match timed(client.check_stat(&candidacy.node)).await? {
            Ok(Some(_)) => {
                self.acknowledged = Some(sent);
                Ok(())
            }
            Ok(None) => {
                self.candidacy = None;
                Err(PublishError::Lost(format!(
                    "the candidate node {} is gone",
                    candidacy.node
                )))
            }
            Err(error) => Err(self.failed("proving the session alive", error)),
        }
    }

    /// How often a candidate proves its session alive: a third of the
    /// session timeout the server granted.
    pub(super) fn candidate_keep_alive(&self) -> Option<Duration> {
        self.candidacy.as_ref()?;
        Some(self.session_timeout()? / 3)
    }

    fn session_timeout(&self) -> Option<Duration> {
        Some(self.client.as_ref()?.session_timeout())
    }
}

impl Election for ZkPublisher {
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
        self.acknowledged
    }

    fn expiry(&self) -> Duration {
        self.session_timeout().unwrap_or(Duration::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lowest_sequence_leads_whatever_the_listing_order() {
        let children = vec![
            "n_0000000012".to_owned(),
            "other".to_owned(),
            "n_0000000003".to_owned(),
            "n_0000000100".to_owned(),
        ];
        assert_eq!(
            in_order(children),
            ["n_0000000003", "n_0000000012", "n_0000000100"]
        );
        assert_eq!(election_dir("/disco/", "db"), "/disco/elect/db");
    }
}
