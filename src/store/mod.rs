//! The store backends: each watches one kind of store and reports through
//! the [`crate::registry`] contract, and writes what `disco registrar`
//! publishes through the [`publish`] contract. A backend's store types stay
//! inside its module; nothing outside `store::etcd` sees an etcd type,
//! nothing outside `store::zookeeper` a ZooKeeper one. What they share
//! (the publisher contract, retry delays, bounded logging of skipped
//! entries) sits here; nothing here imports the registrar.

pub mod election;
pub mod etcd;
pub mod publish;
pub(crate) mod skips;
pub mod zookeeper;

use std::sync::Arc;
use std::time::Duration;

use crate::config::{ConfigError, EtcdSettings, RegistryUrl, ZkSettings};
use crate::registry::Backend;

use publish::{Format, Publisher, Target};

/// The backend for one `--registry` URL, its watch proved current every
/// `proof_interval` (zero: never).
pub fn for_url(
    url: &RegistryUrl,
    etcd: &EtcdSettings,
    zk: &ZkSettings,
    proof_interval: Duration,
) -> Result<Arc<dyn Backend>, ConfigError> {
    if url.is_etcd() {
        return Ok(Arc::new(
            etcd::EtcdBackend::new(url, etcd)?.with_proof_interval(proof_interval),
        ));
    }
    if url.is_zookeeper() {
        return Ok(Arc::new(
            zookeeper::ZkBackend::new(url, zk)?.with_proof_interval(proof_interval),
        ));
    }
    Err(ConfigError::Invalid {
        flag: "registry",
        value: url.to_string(),
        reason: "this build has no backend for that scheme yet".to_owned(),
    })
}

/// The publisher `disco registrar` writes one service through, for its
/// target's registry and format.
pub fn publisher_for(
    target: &Target,
    etcd: &EtcdSettings,
    zk: &ZkSettings,
) -> Result<Box<dyn Publisher>, ConfigError> {
    match (target.registry.is_etcd(), target.format) {
        (true, Format::Nerve) => Err(ConfigError::Invalid {
            flag: "format",
            value: "nerve".to_owned(),
            reason: "Nerve's format lives in ZooKeeper; use a zk:// registry".to_owned(),
        }),
        (true, _) => Ok(Box::new(etcd::publish::EtcdPublisher::new(target, etcd))),
        (false, Format::SkyDns) => Err(ConfigError::Invalid {
            flag: "format",
            value: "skydns".to_owned(),
            reason: "SkyDNS entries live in etcd; use an etcd:// registry".to_owned(),
        }),
        (false, _) => Ok(Box::new(zookeeper::publish::ZkPublisher::new(target, zk))),
    }
}

/// The publisher of a registration that campaigns (`--elect`,
/// `disco.elect`): as [`publisher_for`], but in etcd on a lease of its
/// own. etcd names a candidate's key after its lease, so two candidates of
/// one service on a shared lease would be one key, and both would lead;
/// and a candidate's key must go with its registration, not wait for the
/// last registration on a shared lease. (A ZooKeeper publisher has a
/// session of its own already.)
pub fn elected_publisher_for(
    target: &Target,
    etcd: &EtcdSettings,
    zk: &ZkSettings,
) -> Result<Box<dyn Publisher>, ConfigError> {
    if target.registry.is_etcd() && target.format != Format::Nerve {
        return Ok(Box::new(etcd::publish::EtcdPublisher::with_own_lease(
            target, etcd,
        )));
    }
    publisher_for(target, etcd, zk)
}
