//! The cost bounds of a lookup: whatever name a client makes up, it is
//! answered from a subset built with the data (borrowed, never encoded per
//! question), or negatively.

use std::sync::Arc;

use hickory_proto::rr::{Name, RecordType};

use super::{AnswerRef, Lookup, Snapshot, SnapshotBuilder};
use crate::dns::name::name_key;
use crate::model::parse_native;

/// `web` with web-1 (v2, primary), web-2 (v2), web-3 (primary, canary).
fn snapshot() -> Snapshot {
    let mut builder = SnapshotBuilder::new("disco.internal.", Vec::new(), 5, &[]);
    let instances = [
        (
            "web-1",
            r#"{"address":"10.0.0.1","port":80,"tags":["v2","primary"]}"#,
        ),
        ("web-2", r#"{"address":"10.0.0.2","port":80,"tags":["v2"]}"#),
        (
            "web-3",
            r#"{"address":"10.0.0.3","port":80,"tags":["primary","canary"]}"#,
        ),
    ];
    builder.apply(instances.map(|(id, json)| {
        let instance = parse_native("web", id, json.as_bytes()).unwrap();
        (None, Some(Arc::new(instance)))
    }));
    builder.snapshot()
}

/// "cached" for an answer a node keeps, "kept for this version" for one
/// kept for one version of the snapshot, else the kind of negative answer.
fn kind(snapshot: &Snapshot, name: &str, qtype: RecordType) -> &'static str {
    let key = name_key(&Name::from_ascii(name).unwrap());
    match snapshot.lookup(&key, qtype) {
        Lookup::Answer(AnswerRef::Borrowed(_)) => "cached",
        Lookup::Answer(AnswerRef::Shared(_)) => "kept for this version",
        Lookup::NoData(_) => "NODATA",
        Lookup::NxDomain(_) => "NXDOMAIN",
        Lookup::NotAuthoritative | Lookup::Refused => "REFUSED",
    }
}

fn addresses(snapshot: &Snapshot, name: &str) -> String {
    let key = name_key(&Name::from_ascii(name).unwrap());
    match snapshot.lookup(&key, RecordType::A) {
        Lookup::Answer(answer) => {
            let mut found: Vec<String> = (answer.sections().answers.iter())
                .map(|r| r.data.to_string())
                .collect();
            found.sort();
            found.join(" ")
        }
        _ => String::new(),
    }
}

#[test]
fn two_tags_in_either_order_are_answered_from_a_subset_the_service_keeps() {
    let snapshot = snapshot();
    for name in [
        "v2.primary.web.disco.internal.",
        "primary.v2.web.disco.internal.",
        "PRIMARY.V2.web.disco.internal.",
    ] {
        for qtype in [RecordType::A, RecordType::SRV, RecordType::ANY] {
            assert_eq!(kind(&snapshot, name, qtype), "cached", "{name} {qtype}");
        }
        assert_eq!(kind(&snapshot, name, RecordType::TXT), "NODATA");
        assert_eq!(addresses(&snapshot, name), "10.0.0.1");
    }
    assert_eq!(
        addresses(&snapshot, "canary.primary.web.disco.internal."),
        "10.0.0.3"
    );
    // Both tags exist, no instance carries both.
    assert_eq!(
        kind(&snapshot, "canary.v2.web.disco.internal.", RecordType::A),
        "NXDOMAIN"
    );
}

#[test]
fn a_name_carries_at_most_two_tags_each_once() {
    let snapshot = snapshot();
    assert_eq!(
        addresses(&snapshot, "v2.web.disco.internal."),
        "10.0.0.1 10.0.0.2"
    );
    let sixty = format!("{}web.disco.internal.", "v2.".repeat(60));
    for name in [
        "v2.v2.web.disco.internal.",
        sixty.as_str(),
        "v2.primary.v2.web.disco.internal.",
        "canary.v2.primary.web.disco.internal.",
    ] {
        for qtype in [RecordType::A, RecordType::SRV] {
            assert_eq!(kind(&snapshot, name, qtype), "NXDOMAIN", "{name}");
        }
    }
}

#[test]
fn names_of_any_depth_are_answered_as_before() {
    let snapshot = snapshot();
    // The deepest names that fit in 255 bytes, under the zone, under a
    // service, and outside every zone.
    let deep = |suffix: &str| {
        let labels = (255 - suffix.len() - 1) / 2;
        format!("{}{suffix}", "a.".repeat(labels))
    };
    let under_zone = deep("disco.internal.");
    let under_service = deep("web.disco.internal.");
    let outside = deep("example.com.");
    assert_eq!(kind(&snapshot, &under_zone, RecordType::A), "NXDOMAIN");
    assert_eq!(kind(&snapshot, &under_service, RecordType::A), "NXDOMAIN");
    assert_eq!(kind(&snapshot, &outside, RecordType::A), "REFUSED");
    assert_eq!(
        kind(&snapshot, "web-1.web.disco.internal.", RecordType::A),
        "cached"
    );
    assert_eq!(
        kind(&snapshot, "x.web-1.web.disco.internal.", RecordType::A),
        "NXDOMAIN"
    );
}
