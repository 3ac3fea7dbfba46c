//! Validated service names and instance ids: the parts of a DNS name that
//! come from a registration.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use super::shared::shared_service_name;

/// Why a service name or instance id is not usable as DNS labels.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// Empty name or empty label (`a..b`).
    #[error("empty label in {0:?}")]
    EmptyLabel(String),
    /// A label longer than 63 bytes.
    #[error("label longer than 63 bytes in {0:?}")]
    LabelTooLong(String),
    /// A character outside letters, digits, `-` and `_`.
    #[error("invalid character {1:?} in {0:?} (use letters, digits, '-' and '_')")]
    InvalidCharacter(String, char),
    /// A leading underscore, reserved for `_service._proto` names.
    #[error("{0:?} starts with '_', which is reserved for SRV names")]
    LeadingUnderscore(String),
    /// A leading hyphen, which host names may not have (RFC 952, RFC 1123
    /// §2.1) and DNS libraries refuse.
    #[error("{0:?} starts with '-', which a DNS label may not")]
    LeadingHyphen(String),
    /// The whole name is too long to fit in a DNS name with the zone.
    #[error("name {0:?} is longer than 200 bytes")]
    TooLong(String),
    /// An instance id must be a single label.
    #[error("instance id {0:?} contains '.'")]
    Dotted(String),
}

fn check_label(whole: &str, label: &str) -> Result<(), NameError> {
    if label.is_empty() {
        return Err(NameError::EmptyLabel(whole.to_owned()));
    }
    if label.len() > 63 {
        return Err(NameError::LabelTooLong(whole.to_owned()));
    }
    if label.starts_with('_') {
        return Err(NameError::LeadingUnderscore(whole.to_owned()));
    }
    if label.starts_with('-') {
        return Err(NameError::LeadingHyphen(whole.to_owned()));
    }
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    // Bytes, not chars: a million instances' labels are checked at a cold
    // start. A byte outside the set belongs to a character outside it, which
    // only a refusal needs to find.
    if !label.bytes().all(allowed) {
        let bad = label
            .chars()
            .find(|c| !(c.is_ascii() && allowed(*c as u8)))
            .expect("a byte outside the set is part of a character outside it");
        return Err(NameError::InvalidCharacter(whole.to_owned(), bad));
    }
    Ok(())
}

/// `name` lowercased, borrowed when it already is.
fn lowercased(name: &str) -> Cow<'_, str> {
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    }
}

/// Checks `label` as a single label under a service name (an instance id,
/// a tag, a port name) and gives it lowercased, without building an
/// [`InstanceId`] when the caller only wants the text.
pub(super) fn checked_label(label: &str) -> Result<Cow<'_, str>, NameError> {
    // The usual label in one pass: 1 to 63 letters, digits, `-` and `_`,
    // not starting with either of those two. Anything else takes the checks
    // below in turn, which say what is wrong.
    let bytes = label.as_bytes();
    let mut capitals = false;
    let plain = bytes.len() <= 63
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.iter().all(|&b| {
            capitals |= b.is_ascii_uppercase();
            b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
        });
    if plain {
        return Ok(if capitals {
            Cow::Owned(label.to_ascii_lowercase())
        } else {
            Cow::Borrowed(label)
        });
    }
    if label.contains('.') {
        return Err(NameError::Dotted(label.to_owned()));
    }
    check_label(label, label)?;
    Ok(lowercased(label))
}

/// A service name: one or more DNS labels (`web`, `api.billing`), lowercased.
///
/// Every instance holds one, so it is the process's shared copy of the
/// name (a service's instances hold one block between them, and parsing
/// one more allocates nothing), one pointer wide (which keeps an
/// `Arc<Instance>` in mimalloc's 112-byte size class).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceName(Arc<Box<str>>);

impl ServiceName {
    /// Validates and lowercases a service name.
    pub fn new(name: &str) -> Result<Self, NameError> {
        if name.len() > 200 {
            return Err(NameError::TooLong(name.to_owned()));
        }
        for label in name.split('.') {
            check_label(name, label)?;
        }
        Ok(ServiceName(shared_service_name(&lowercased(name))))
    }

    /// The name as dotted labels, without a trailing dot.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the name is one label (only those get the RFC 2782
    /// `_service._proto` form, which has room for one label).
    pub fn is_single_label(&self) -> bool {
        !self.0.contains('.')
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An instance id: one DNS label, lowercased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceId(Arc<str>);

impl InstanceId {
    /// Validates and lowercases an instance id.
    pub fn new(id: &str) -> Result<Self, NameError> {
        Ok(InstanceId(checked_label(id)?.into()))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// Lookups by a label read off the wire, without building an id.
impl std::borrow::Borrow<str> for InstanceId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_are_lowercased_and_may_have_several_labels() {
        assert_eq!(
            ServiceName::new("Api.Billing").unwrap().as_str(),
            "api.billing"
        );
        assert!(!ServiceName::new("api.billing").unwrap().is_single_label());
        assert!(ServiceName::new("web").unwrap().is_single_label());
    }

    #[test]
    fn a_service_name_is_one_copy_however_often_it_is_read() {
        let (one, two) = (
            ServiceName::new("Web").unwrap(),
            ServiceName::new("web").unwrap(),
        );
        assert!(Arc::ptr_eq(&one.0, &two.0));
    }

    #[test]
    fn bad_names_are_refused_with_the_reason() {
        assert!(matches!(
            ServiceName::new(""),
            Err(NameError::EmptyLabel(_))
        ));
        assert!(matches!(
            ServiceName::new("a..b"),
            Err(NameError::EmptyLabel(_))
        ));
        assert!(matches!(
            ServiceName::new("_web"),
            Err(NameError::LeadingUnderscore(_))
        ));
        assert!(matches!(
            ServiceName::new("we b"),
            Err(NameError::InvalidCharacter(_, ' '))
        ));
        assert!(matches!(
            InstanceId::new("Wé-1"),
            Err(NameError::InvalidCharacter(_, 'é'))
        ));
        assert!(matches!(
            ServiceName::new(&"a".repeat(64)),
            Err(NameError::LabelTooLong(_))
        ));
        // Found by fuzzing: hickory refuses such a label, and building the
        // instance's name panicked (fuzz/seeds/registration/
        // native-id-with-leading-hyphen).
        assert!(matches!(
            InstanceId::new("-web"),
            Err(NameError::LeadingHyphen(_))
        ));
        assert!(matches!(
            ServiceName::new("api.-billing"),
            Err(NameError::LeadingHyphen(_))
        ));
        assert!(matches!(
            InstanceId::new("web.1"),
            Err(NameError::Dotted(_))
        ));
        assert_eq!(InstanceId::new("Web-1").unwrap().as_str(), "web-1");
    }
}
