//! The layers run one way (`src/lib.rs`, "# Layout"): no circle of imports
//! among the top-level modules, nor among the parts of `dns` or of
//! `store`. Read from the source, not the compiler: every `crate::…` and
//! `super::…` path in library code (comments and `#[cfg(test)]` modules
//! left out) is an edge from the module it is written in to the module it
//! names. A circle fails the test, naming each edge and where it is taken.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Modules whose direct parts must not import each other in a circle,
/// beside the crate's top level.
const LAYERED: [&str; 2] = ["dns", "store"];

/// Circles found when this test was written, each with what would untie
/// it; the test fails on any other, and on one of these once it is gone
/// (so that the list only shrinks).
const KNOWN: [&str; 2] = [
    // `metrics::limits` counts by `dns::rrl::RrlClass` and
    // `dns::cookie::CookieCheck`, while the query path records into
    // `metrics::Metrics`: the two enums (plain labels) belong on the lower
    // side, beside the counters, or the counters in `dns`.
    "dns -> metrics -> dns",
    // The `Publisher` contract names `Election`, whose futures use
    // `PublishError` and `PublisherFuture`: one contract file, or those
    // two in a leaf both import.
    "store::election -> store::publish -> store::election",
];

/// One import: the module it is written in, the module it names, and where.
struct Edge {
    from: Vec<String>,
    to: Vec<String>,
    at: String,
}

#[test]
fn the_modules_import_each_other_one_way_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut edges = Vec::new();
    for file in rust_files(&src) {
        let module = module_of(&src, &file);
        if module.first().is_none_or(|m| m == "main") || module.last().is_some_and(|m| m == "tests")
        {
            continue;
        }
        let text = library_text(&std::fs::read_to_string(&file).unwrap());
        let here = file.strip_prefix(&src).unwrap().display().to_string();
        for (offset, to) in paths_in(&text, &module) {
            let number = text[..offset].matches('\n').count() + 1;
            edges.push(Edge {
                from: module.clone(),
                to,
                at: format!("src/{here}:{number}"),
            });
        }
    }
    assert!(edges.len() > 100, "only {} imports found", edges.len());
    let mut circles = circles_among(&edges, &[]);
    for parent in LAYERED {
        circles.extend(circles_among(&edges, &[parent.to_owned()]));
    }
    let new: Vec<&String> = (circles.iter())
        .filter(|(name, _)| !KNOWN.contains(&name.as_str()))
        .map(|(_, edges)| edges)
        .collect();
    assert!(
        new.is_empty(),
        "imports that run both ways (put what both sides need on the lower side, \
         as a leaf or a contract):\n\n{}",
        (new.iter().map(|s| s.as_str()))
            .collect::<Vec<_>>()
            .join("\n\n")
    );
    let gone: Vec<&str> = (KNOWN.iter().copied())
        .filter(|known| !circles.iter().any(|(name, _)| name == known))
        .collect();
    assert!(
        gone.is_empty(),
        "untied, so take them out of KNOWN: {gone:?}"
    );
}

/// The circles among the direct children of `parent` (the crate's top
/// level when empty), each as its name (`a -> b -> a`) and its edges, one
/// per line with where each is taken.
fn circles_among(edges: &[Edge], parent: &[String]) -> Vec<(String, String)> {
    let depth = parent.len() + 1;
    let part = |path: &[String]| -> Option<String> {
        (path.len() >= depth && path[..parent.len()] == *parent).then(|| path[depth - 1].clone())
    };
    // The first place each edge between two parts is taken.
    let mut graph: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for edge in edges {
        let (Some(from), Some(to)) = (part(&edge.from), part(&edge.to)) else {
            continue;
        };
        if from != to {
            (graph.entry(from).or_default())
                .entry(to)
                .or_insert_with(|| edge.at.clone());
        }
    }
    let mut found: BTreeSet<Vec<String>> = BTreeSet::new();
    for start in graph.keys() {
        let mut path = vec![start.clone()];
        walk(&graph, &mut path, &mut found);
    }
    let prefix = if parent.is_empty() {
        String::new()
    } else {
        format!("{}::", parent.join("::"))
    };
    found
        .into_iter()
        .map(|circle| {
            let name = (circle.iter())
                .map(|m| format!("{prefix}{m}"))
                .collect::<Vec<_>>()
                .join(" -> ");
            let edges = (circle.windows(2))
                .map(|pair| {
                    format!(
                        "  {prefix}{} -> {prefix}{}  ({})",
                        pair[0], pair[1], graph[&pair[0]][&pair[1]]
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            (name, edges)
        })
        .collect()
}

/// Depth-first from the last module of `path`: each circle back to its
/// first module, recorded once (starting at its least module).
fn walk(
    graph: &BTreeMap<String, BTreeMap<String, String>>,
    path: &mut Vec<String>,
    found: &mut BTreeSet<Vec<String>>,
) {
    let Some(next) = graph.get(path.last().unwrap()) else {
        return;
    };
    for to in next.keys() {
        if *to == path[0] {
            if path.iter().all(|m| *m >= path[0]) {
                let mut circle = path.clone();
                circle.push(to.clone());
                found.insert(circle);
            }
        } else if !path.contains(to) && *to > path[0] && path.len() < 12 {
            path.push(to.clone());
            walk(graph, path, found);
            path.pop();
        }
    }
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// `src/dns/server/tcp.rs` is `dns::server::tcp`; `src/dns/mod.rs` is
/// `dns`; `src/lib.rs` is the crate root (empty).
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = (relative.components())
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// The library code of a file, line for line: comments blanked, and
/// everything from a `#[cfg(test)]` inline module on (they end the files
/// here) left out.
fn library_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut all = text.lines().peekable();
    while let Some(line) = all.next() {
        let trimmed = line.trim_start();
        let test_module = trimmed.starts_with("#[cfg(test)]")
            && (all.peek()).is_some_and(|next| {
                next.trim_start().starts_with("mod ") && next.trim_end().ends_with('{')
            });
        if test_module {
            break;
        }
        if !trimmed.starts_with("//") {
            out.push_str(line.split(" // ").next().unwrap_or(line));
        }
        out.push('\n');
    }
    out
}

/// The modules that `crate::…` and `super::…` paths in `text` name, as
/// absolute paths, with where each is written (only their module part
/// matters here: an item's name at the end makes a path one longer, which
/// is still inside its module).
fn paths_in(text: &str, module: &[String]) -> Vec<(usize, Vec<String>)> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < text.len() {
        let rest = &text[at..];
        let starts_word = at == 0 || !is_ident(bytes[at - 1]) && bytes[at - 1] != b'$';
        let base = if !starts_word {
            None
        } else if rest.starts_with("crate::") {
            Some((Vec::new(), "crate::".len()))
        } else if rest.starts_with("super::") {
            let mut base = module.to_vec();
            let mut taken = 0;
            while rest[taken..].starts_with("super::") {
                base.pop();
                taken += "super::".len();
            }
            Some((base, taken))
        } else {
            None
        };
        let Some((base, taken)) = base else {
            at += rest.chars().next().map_or(1, char::len_utf8);
            continue;
        };
        for tail in tails(&text[at + taken..]) {
            let mut path = base.clone();
            path.extend(tail);
            if !path.is_empty() {
                out.push((at, path));
            }
        }
        at += taken;
    }
    out
}

/// The paths after `crate::`: `a::b::C` gives `[a, b, C]`; a group
/// `{a::B, c}` gives each of its members.
fn tails(text: &str) -> Vec<Vec<String>> {
    if let Some(group) = text.strip_prefix('{') {
        let mut depth = 0;
        let mut members = Vec::new();
        let mut start = 0;
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    members.push(&group[start..i]);
                    break;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    members.push(&group[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        return members
            .into_iter()
            .flat_map(|member| tails(member.trim()))
            .collect();
    }
    let mut segments = Vec::new();
    for piece in text.split("::") {
        let ident: String = piece.chars().take_while(|c| is_ident(*c as u8)).collect();
        let whole = ident.len() == piece.len();
        // `self` inside a group names the group's own module.
        if !ident.is_empty() && ident != "self" {
            segments.push(ident);
        }
        if !whole || piece.is_empty() {
            break;
        }
    }
    vec![segments]
}

fn is_ident(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}
