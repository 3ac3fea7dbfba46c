//! Every link inside the manual resolves, every page keeps the shape all
//! pages share, and the README's map names every page.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use crate::manual::{self, Page};

/// The second-level headings of every page in `docs/`, in this order and no
/// others (CoreDNS's plugin pages are the model).
const SECTIONS: [&str; 4] = ["What it is", "Syntax", "Examples", "When things fail"];

/// `[text](target)` links in a prose line, inline code left out.
fn links(line: &str) -> Vec<String> {
    let text = manual::without_code(line);
    let mut found = Vec::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("](") {
        let after = &rest[i + 2..];
        let Some(end) = after.find(')') else { break };
        found.push(after[..end].trim().to_owned());
        rest = &after[end..];
    }
    found
}

/// `a/b/../c` → `a/c`, without touching the file system.
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[test]
fn every_internal_link_resolves() {
    let pages = manual::pages();
    let anchors: BTreeMap<String, Vec<String>> = pages
        .iter()
        .map(|p| (p.path.clone(), p.anchors()))
        .collect();
    let mut broken = Vec::new();
    let mut count = 0;
    for page in &pages {
        let dir = Path::new(&page.path).parent().unwrap_or(Path::new(""));
        for line in page.prose() {
            for target in links(&line.text) {
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                count += 1;
                let (file, anchor) = match target.split_once('#') {
                    Some((file, anchor)) => (file, Some(anchor)),
                    None => (target.as_str(), None),
                };
                let resolved = if file.is_empty() {
                    PathBuf::from(&page.path)
                } else {
                    normalise(&dir.join(file))
                };
                let where_ = format!("{}:{}: ({target})", page.path, line.number);
                if !manual::exists(&resolved) {
                    broken.push(format!("{where_}: no file {}", resolved.display()));
                    continue;
                }
                if let Some(anchor) = anchor {
                    let key = resolved.to_string_lossy().into_owned();
                    // A Markdown file outside the manual (bench/README.md):
                    // its headings too.
                    let outside = (!anchors.contains_key(&key) && key.ends_with(".md"))
                        .then(|| manual::read(&key).anchors());
                    match outside.as_ref().or(anchors.get(&key)) {
                        Some(list) if list.iter().any(|a| a == anchor) => {}
                        Some(list) => broken.push(format!(
                            "{where_}: no heading #{anchor} in {key} (it has: {})",
                            list.join(", ")
                        )),
                        None => broken.push(format!(
                            "{where_}: #{anchor} points into {key}, which has no headings"
                        )),
                    }
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(
        count > 50,
        "only {count} internal links found: is the parser blind?"
    );
}

#[test]
fn every_page_has_the_same_four_sections() {
    let mut wrong = Vec::new();
    for page in manual::pages()
        .iter()
        .filter(|p| p.path.starts_with("docs/"))
    {
        let headings = page.headings();
        let titles: Vec<&(usize, String)> = headings.iter().filter(|(l, _)| *l == 1).collect();
        if titles.len() != 1 || page.lines.first().map(|l| l.text.starts_with("# ")) != Some(true) {
            wrong.push(format!("{}: must open with its one `# Title`", page.path));
        }
        let sections: Vec<&str> = headings
            .iter()
            .filter(|(l, _)| *l == 2)
            .map(|(_, t)| t.as_str())
            .collect();
        if sections != SECTIONS {
            wrong.push(format!(
                "{}: its ## sections are {sections:?}, every page has {SECTIONS:?}",
                page.path
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_readme_maps_every_page() {
    let readme: Page = manual::read("README.md");
    let linked: Vec<String> = readme
        .prose()
        .flat_map(|l| links(&l.text))
        .map(|t| t.split('#').next().unwrap().to_owned())
        .collect();
    let missing: Vec<String> = manual::pages()
        .into_iter()
        .map(|p| p.path)
        .filter(|p| p.starts_with("docs/") && !linked.contains(p))
        .collect();
    assert!(
        missing.is_empty(),
        "README.md's map of the docs does not link {missing:?}"
    );
    let lines = readme.lines.len();
    assert!(
        lines <= 250,
        "README.md has {lines} lines; it is the front door (at most 250), the manual is docs/"
    );
}

#[test]
fn anchors_follow_github() {
    assert_eq!(manual::anchor("`disco serve`"), "disco-serve");
    assert_eq!(
        manual::anchor("SkyDNS / CoreDNS format"),
        "skydns--coredns-format"
    );
    assert_eq!(
        manual::anchor("Registering containers (`--docker`)"),
        "registering-containers---docker"
    );
    assert_eq!(
        manual::anchor("The guarantee, and its limits"),
        "the-guarantee-and-its-limits"
    );
}

/// The repository's top-level folders a page may name a path in.
const TOP: [&str; 11] = [
    "src/", "tests/", "docker/", "bench/", "scripts/", "zones/", "fuzz/", "tools/", "docs/",
    ".ci/", ".config/",
];

/// Paths the manual names that runs create (ignored by git), not the
/// repository.
const GENERATED: [&str; 2] = ["fuzz/artifacts/", "fuzz/corpus/"];

/// Every repository path a page names (`tests/etcd/liveness.rs`,
/// `docker/compose.yaml`, in prose or in code) exists: files move, and the
/// manual must move with them.
#[test]
fn every_path_the_manual_names_exists() {
    let mut missing = Vec::new();
    let mut count = 0;
    for page in manual::pages() {
        for line in &page.lines {
            // `../bench/README.md` and `./scripts/test` name the same files.
            let text = line.text.replace("../", " ").replace("./", " ");
            for top in TOP {
                for (i, _) in text.match_indices(top) {
                    let boundary = text[..i]
                        .chars()
                        .next_back()
                        .is_none_or(|c| " `([\"'=,:".contains(c));
                    if !boundary {
                        continue;
                    }
                    let path: String = text[i..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || "._/-".contains(*c))
                        .collect();
                    let path = path.trim_end_matches(['.', ',', ':']);
                    if GENERATED.iter().any(|g| path.starts_with(g)) {
                        continue;
                    }
                    count += 1;
                    if !manual::exists(std::path::Path::new(path)) {
                        missing.push(format!("{}:{}: {path}", page.path, line.number));
                    }
                }
            }
        }
    }
    assert!(count > 50, "only {count} paths found: is the scan blind?");
    assert!(
        missing.is_empty(),
        "the manual names paths that do not exist:\n{}",
        missing.join("\n")
    );
}

/// Every benchmark script in `bench/` has its row on the benchmarks page
/// (`bench/lib.sh` and `bench/registration_lib.sh` are their libraries).
#[test]
fn every_benchmark_script_is_on_the_benchmarks_page() {
    let page = std::fs::read_to_string(manual::root().join("docs/benchmarks.md")).unwrap();
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(manual::root().join("bench")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".sh")
            && !name.ends_with("lib.sh")
            && !page.contains(&format!("`bench/{name}"))
        {
            missing.push(name);
        }
    }
    assert!(
        missing.is_empty(),
        "docs/benchmarks.md has no row for bench/{missing:?}"
    );
}
