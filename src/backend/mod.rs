//! The store backends: each watches one kind of store and reports through
//! the [`crate::registry`] contract. A backend's store types stay inside its
//! module; nothing outside `backend::etcd` sees an etcd type.

pub mod etcd;

use std::sync::Arc;

use crate::config::{ConfigError, EtcdSettings, RegistryUrl};
use crate::registry::Backend;

/// The backend for one `--registry` URL.
pub fn for_url(url: &RegistryUrl, etcd: &EtcdSettings) -> Result<Arc<dyn Backend>, ConfigError> {
    if url.is_etcd() {
        return Ok(Arc::new(etcd::EtcdBackend::new(url, etcd)?));
    }
    Err(ConfigError::Invalid {
        flag: "registry",
        value: url.to_string(),
        reason: "this build has no backend for that scheme yet".to_owned(),
    })
}
