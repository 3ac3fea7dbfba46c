//! The index alone: placing entries, nodes, subtree reads, and answers as
//! records (the wire is tested end to end in tests/integration/skydns.rs).

use super::*;
use crate::dns::snapshot::AnswerRef;
use crate::model::parse_skydns;

fn index(entries: &[(&str, &str)]) -> SkyIndex {
    let zone = Name::from_ascii("disco.internal.").unwrap();
    let mut index = SkyIndex::new(zone, 5, true);
    for (key, json) in entries {
        index.insert(0, Arc::new(entry(key, json)));
    }
    index
}

fn entry(key: &str, json: &str) -> SkyEntry {
    parse_skydns("/skydns", key, json.as_bytes(), None).unwrap()
}

fn no_others(_: &Name, _: RecordType) -> bool {
    false
}

fn name(text: &str) -> Name {
    Name::from_ascii(text).unwrap()
}

/// The answer as "owner type data" lines (answers, then additional).
fn answer(index: &SkyIndex, qname: &str, qtype: RecordType) -> Vec<String> {
    let resolver = Resolver::new(index, &no_others);
    let Some(sections) = resolver.answer(&name(qname), qtype) else {
        return Vec::new();
    };
    sections
        .answers
        .iter()
        .chain(&sections.additionals)
        .map(|r| format!("{} {} {}", r.name, r.record_type(), r.data))
        .collect()
}

fn exists(index: &SkyIndex, qname: &str) -> bool {
    !matches!(
        index.lookup(&name_key(&name(qname)), RecordType::A, &no_others),
        SkyLookup::Absent
    )
}

#[test]
fn nodes_cover_each_entry_and_its_ancestors_to_the_zone() {
    let mut index = index(&[
        ("/skydns/internal/disco/web/x1", r#"{"host":"10.0.0.1"}"#),
        ("/skydns/internal/disco/web/x2", r#"{"host":"10.0.0.2"}"#),
    ]);
    let count = |n: &str| index_count(&index, n);
    assert_eq!(
        (
            count("x1.web.disco.internal."),
            count("web.disco.internal."),
            count("disco.internal.")
        ),
        (1, 2, 2)
    );
    assert_eq!(count("internal."), 0);
    // Replacing an entry keeps the counts; removing it gives them back.
    index.insert(
        0,
        Arc::new(entry(
            "/skydns/internal/disco/web/x1",
            r#"{"host":"10.0.0.9"}"#,
        )),
    );
    assert_eq!(index_count(&index, "web.disco.internal."), 2);
    index.remove(
        0,
        &entry("/skydns/internal/disco/web/x1", r#"{"host":"10.0.0.9"}"#),
    );
    index.remove(
        0,
        &entry("/skydns/internal/disco/web/x2", r#"{"host":"10.0.0.2"}"#),
    );
    assert!(index.nodes.is_empty() && index.entries.is_empty());
}

fn index_count(index: &SkyIndex, n: &str) -> usize {
    index
        .nodes
        .get(&name_key(&name(n)))
        .map_or(0, |node| node.count)
}

#[test]
fn the_same_key_from_two_sources_is_two_entries() {
    let mut index = index(&[]);
    let key = "/skydns/internal/disco/web/x1";
    index.insert(0, Arc::new(entry(key, r#"{"host":"10.0.0.1"}"#)));
    index.insert(1, Arc::new(entry(key, r#"{"host":"10.0.0.2"}"#)));
    assert_eq!(
        answer(&index, "web.disco.internal.", RecordType::A),
        [
            "web.disco.internal. A 10.0.0.1",
            "web.disco.internal. A 10.0.0.2"
        ]
    );
    index.remove(0, &entry(key, "{\"host\":\"x\"}"));
    assert_eq!(
        answer(&index, "web.disco.internal.", RecordType::A),
        ["web.disco.internal. A 10.0.0.2"]
    );
}

#[test]
fn entries_outside_the_zone_are_ignored() {
    let index = index(&[
        ("/skydns/local/skydns/x1", r#"{"host":"10.0.0.1"}"#),
        ("/skydns/arpa/in-addr/10/0/0/1", r#"{"host":"x.example."}"#),
    ]);
    assert_eq!(index.entries.len(), 1);
    assert!(
        index
            .nodes
            .contains_key(&name_key(&name("1.0.0.10.in-addr.arpa.")))
    );
}

#[test]
fn a_name_reads_its_subtree_else_its_own_key() {
    let index = index(&[
        ("/skydns/internal/disco/web", r#"{"host":"10.0.0.1"}"#),
        ("/skydns/internal/disco/web/x1", r#"{"host":"10.0.0.2"}"#),
        ("/skydns/internal/disco/web1", r#"{"host":"10.0.0.3"}"#),
        ("/skydns/internal/disco/webz/x", r#"{"host":"10.0.0.4"}"#),
    ]);
    // `web/` has a key below it, so CoreDNS's second read (the key `web`)
    // never happens; `web1` and `webz` share the prefix but not the path.
    assert_eq!(
        answer(&index, "web.disco.internal.", RecordType::A),
        ["web.disco.internal. A 10.0.0.2"]
    );
    assert_eq!(
        answer(&index, "web1.disco.internal.", RecordType::A),
        ["web1.disco.internal. A 10.0.0.3"]
    );
    assert!(exists(&index, "x1.web.disco.internal."));
    assert!(!exists(&index, "x2.web.disco.internal."));
    assert!(!exists(&index, "eb.disco.internal."));
}

#[test]
fn a_directory_key_answers_with_the_subtree() {
    let index = index(&[("/skydns/internal/disco/", r#"{"host":"1.1.1.1"}"#)]);
    assert_eq!(
        answer(&index, "disco.internal.", RecordType::A),
        ["disco.internal. A 1.1.1.1"]
    );
}

#[test]
fn wildcards_read_above_the_first_wildcard_and_filter() {
    let index = index(&[
        (
            "/skydns/internal/disco/region1/prod/a",
            r#"{"host":"10.0.0.1"}"#,
        ),
        (
            "/skydns/internal/disco/region2/prod/b",
            r#"{"host":"10.0.0.2"}"#,
        ),
        (
            "/skydns/internal/disco/region2/dev/c",
            r#"{"host":"10.0.0.3"}"#,
        ),
    ]);
    let lookup =
        |qname: &str| match index.lookup(&name_key(&name(qname)), RecordType::A, &no_others) {
            SkyLookup::Answer(_) => "answer",
            SkyLookup::NoData => "nodata",
            SkyLookup::Absent => "absent",
            SkyLookup::Refused => "refused",
        };
    let resolver = Resolver::new(&index, &no_others);
    let records = resolver
        .answer(&name("prod.*.disco.internal."), RecordType::A)
        .unwrap()
        .answers;
    assert_eq!(records.len(), 2);
    assert_eq!(lookup("prod.*.disco.internal."), "answer");
    assert_eq!(lookup("prod.any.disco.internal."), "answer");
    // Something is above the wildcard, nothing matches: NODATA, as CoreDNS.
    assert_eq!(lookup("test.*.disco.internal."), "nodata");
    assert_eq!(lookup("*.nothere.disco.internal."), "absent");
}

#[test]
fn a_wildcard_pattern_is_computed_once_and_a_subtree_answers_sixteen_patterns() {
    let entries: Vec<(String, &str)> = (0..50)
        .map(|i| {
            let key = format!("/skydns/internal/disco/region{}/prod/x{i}", i % 5);
            (key, r#"{"host":"10.0.0.1"}"#)
        })
        .collect();
    let entries: Vec<(&str, &str)> = entries.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let index = index(&entries);
    let ask = |qname: &str, qtype| index.lookup(&name_key(&name(qname)), qtype, &no_others);
    // `*` and `any` are spelt differently, so they are two patterns, each
    // encoded once and borrowed from then on.
    for qname in ["*.disco.internal.", "ANY.disco.internal."] {
        assert!(matches!(ask(qname, RecordType::A), SkyLookup::Answer(_)));
        for _ in 0..3 {
            assert!(matches!(
                ask(qname, RecordType::A),
                SkyLookup::Answer(AnswerRef::Borrowed(_))
            ));
        }
    }
    // Patterns that match nothing take slots too: fourteen more fill them.
    for i in 0..WILDCARD_PATTERNS - 2 {
        let qname = format!("nothing{i}.*.disco.internal.");
        assert!(matches!(ask(&qname, RecordType::A), SkyLookup::NoData));
    }
    // Then a new pattern, or a new type for a known one, is refused...
    assert!(matches!(
        ask("prod.*.disco.internal.", RecordType::A),
        SkyLookup::Refused
    ));
    assert!(matches!(
        ask("*.disco.internal.", RecordType::SRV),
        SkyLookup::Refused
    ));
    // ...while the patterns held, and other subtrees, are answered.
    assert!(matches!(
        ask("*.disco.internal.", RecordType::A),
        SkyLookup::Answer(AnswerRef::Borrowed(_))
    ));
    assert!(matches!(
        ask("*.prod.region1.disco.internal.", RecordType::A),
        SkyLookup::Answer(_)
    ));
    // A change below the name gives it a fresh node with free slots.
    let mut index = index;
    index.insert(
        0,
        Arc::new(entry(
            "/skydns/internal/disco/region9/prod/y",
            r#"{"host":"10.0.0.2"}"#,
        )),
    );
    assert!(matches!(
        index.lookup(
            &name_key(&name("prod.*.disco.internal.")),
            RecordType::A,
            &no_others
        ),
        SkyLookup::Answer(_)
    ));
}

#[test]
fn host_names_become_cnames_chased_inside_the_zone() {
    let index = index(&[
        ("/skydns/internal/disco/a", r#"{"host":"b.disco.internal"}"#),
        ("/skydns/internal/disco/b", r#"{"host":"10.0.0.1"}"#),
        (
            "/skydns/internal/disco/out",
            r#"{"host":"www.example.com"}"#,
        ),
        (
            "/skydns/internal/disco/dangling",
            r#"{"host":"nowhere.disco.internal"}"#,
        ),
        (
            "/skydns/internal/disco/loop1",
            r#"{"host":"loop2.disco.internal"}"#,
        ),
        (
            "/skydns/internal/disco/loop2",
            r#"{"host":"loop1.disco.internal"}"#,
        ),
        (
            "/skydns/internal/disco/self/x",
            r#"{"host":"self.disco.internal"}"#,
        ),
    ]);
    assert_eq!(
        answer(&index, "a.disco.internal.", RecordType::A),
        [
            "a.disco.internal. CNAME b.disco.internal.",
            "b.disco.internal. A 10.0.0.1"
        ]
    );
    assert_eq!(
        answer(&index, "out.disco.internal.", RecordType::A),
        ["out.disco.internal. CNAME www.example.com."]
    );
    assert!(answer(&index, "dangling.disco.internal.", RecordType::A).is_empty());
    assert!(answer(&index, "loop1.disco.internal.", RecordType::A).is_empty());
    assert!(answer(&index, "self.disco.internal.", RecordType::A).is_empty());
    // A CNAME to a name only native services or zone files have stands alone.
    let resolver = Resolver::new(&index, &|n: &Name, _| *n == name("nowhere.disco.internal."));
    assert_eq!(
        resolver
            .answer(&name("dangling.disco.internal."), RecordType::A)
            .unwrap()
            .answers
            .len(),
        1
    );
}

#[test]
fn answers_reading_other_names_are_kept_for_one_version() {
    let mut index = index(&[
        ("/skydns/internal/disco/a", r#"{"host":"b.disco.internal"}"#),
        ("/skydns/internal/disco/b", r#"{"host":"10.0.0.1"}"#),
        ("/skydns/internal/disco/c", r#"{"host":"10.0.0.3"}"#),
    ]);
    let key = name_key(&name("a.disco.internal."));
    let shared = |lookup| match lookup {
        SkyLookup::Answer(AnswerRef::Shared(answer)) => answer,
        other => panic!("not kept for the version: {other:?}"),
    };
    let first = shared(index.lookup(&key, RecordType::A, &no_others));
    let again = shared(index.lookup(&key, RecordType::A, &no_others));
    // Computed once for this version.
    assert!(Arc::ptr_eq(&first, &again));
    // A plain answer is kept by the node.
    let key_c = name_key(&name("c.disco.internal."));
    let first = index.lookup(&key_c, RecordType::A, &no_others);
    let second = index.lookup(&key_c, RecordType::A, &no_others);
    match (first, second) {
        (SkyLookup::Answer(AnswerRef::Borrowed(a)), SkyLookup::Answer(AnswerRef::Borrowed(b))) => {
            assert!(std::ptr::eq(a, b));
        }
        other => panic!("not cached: {other:?}"),
    }
    // b changes: a's answer follows at once.
    index.insert(
        0,
        Arc::new(entry("/skydns/internal/disco/b", r#"{"host":"10.0.0.2"}"#)),
    );
    assert_eq!(
        answer(&index, "a.disco.internal.", RecordType::A)[1],
        "b.disco.internal. A 10.0.0.2"
    );
}

#[test]
fn srv_targets_names_or_own_names_with_addresses() {
    let index = index(&[
        (
            "/skydns/internal/disco/svc/a",
            r#"{"host":"10.0.0.1","port":80,"targetstrip":1}"#,
        ),
        (
            "/skydns/internal/disco/svc/b",
            r#"{"host":"db.example.","port":5432,"priority":20}"#,
        ),
        (
            "/skydns/internal/disco/svc/c",
            r#"{"host":"c.disco.internal","port":81}"#,
        ),
        ("/skydns/internal/disco/c", r#"{"host":"10.0.0.3"}"#),
    ]);
    let mut lines = answer(&index, "svc.disco.internal.", RecordType::SRV);
    lines.sort();
    assert_eq!(
        lines,
        [
            "c.disco.internal. A 10.0.0.3",
            "svc.disco.internal. A 10.0.0.1",
            "svc.disco.internal. SRV 10 50 80 svc.disco.internal.",
            "svc.disco.internal. SRV 10 50 81 c.disco.internal.",
            "svc.disco.internal. SRV 20 100 5432 db.example.",
        ]
    );
}

#[test]
fn txt_ptr_cname_and_ns() {
    let index = index(&[
        ("/skydns/internal/disco/t/a", r#"{"text":"one"}"#),
        (
            "/skydns/internal/disco/t/b",
            r#"{"host":"10.0.0.1","text":"ignored"}"#,
        ),
        ("/skydns/internal/disco/p", r#"{"host":"target.example"}"#),
        (
            "/skydns/internal/disco/dns/ns/ns1",
            r#"{"host":"10.0.0.53"}"#,
        ),
        (
            "/skydns/arpa/in-addr/10/0/0/1",
            r#"{"host":"web.disco.internal"}"#,
        ),
    ]);
    assert_eq!(
        answer(&index, "t.disco.internal.", RecordType::TXT),
        ["t.disco.internal. TXT one"]
    );
    assert_eq!(
        answer(&index, "p.disco.internal.", RecordType::CNAME),
        ["p.disco.internal. CNAME target.example."]
    );
    assert_eq!(
        answer(&index, "1.0.0.10.in-addr.arpa.", RecordType::PTR),
        ["1.0.0.10.in-addr.arpa. PTR web.disco.internal."]
    );
    assert_eq!(
        answer(&index, "disco.internal.", RecordType::NS),
        [
            "disco.internal. NS ns1.ns.dns.disco.internal.",
            "ns1.ns.dns.disco.internal. A 10.0.0.53"
        ]
    );
    assert!(answer(&index, "t.disco.internal.", RecordType::NS).is_empty());
}

#[test]
fn one_rrset_one_ttl() {
    let index = index(&[
        (
            "/skydns/internal/disco/w/a",
            r#"{"host":"10.0.0.1","ttl":60}"#,
        ),
        (
            "/skydns/internal/disco/w/b",
            r#"{"host":"10.0.0.2","ttl":30}"#,
        ),
    ]);
    let resolver = Resolver::new(&index, &no_others);
    let sections = resolver
        .answer(&name("w.disco.internal."), RecordType::A)
        .unwrap();
    assert!(sections.answers.iter().all(|r| r.ttl == 30));
    assert!(sections.shuffle);
}
