//! The manual as the tests read it: `README.md` and every `docs/*.md`, split
//! into prose, inline code, fenced code, headings and tables. No Markdown
//! crate: the pages use a small, regular subset, and these few rules are the
//! ones GitHub renders them by.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One Markdown page of the manual.
pub struct Page {
    /// Path relative to the repository root, e.g. `docs/etcd.md`.
    pub path: String,
    /// Its lines, each with whether it lies inside a fenced code block.
    pub lines: Vec<Line>,
}

/// A line of a page.
pub struct Line {
    /// 1-based line number.
    pub number: usize,
    pub text: String,
    /// Inside a fenced code block (the fences themselves excluded).
    pub fenced: bool,
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `README.md` and `docs/*.md`, sorted by path.
pub fn pages() -> Vec<Page> {
    let mut paths = vec!["README.md".to_owned()];
    let mut docs: Vec<String> = std::fs::read_dir(root().join("docs"))
        .expect("docs/ exists")
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    docs.sort();
    paths.extend(docs);
    paths.into_iter().map(|path| read(&path)).collect()
}

/// Reads one page.
pub fn read(path: &str) -> Page {
    let text = std::fs::read_to_string(root().join(path))
        .unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let mut fenced = false;
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let fence = line.trim_start().starts_with("```");
        if fence {
            fenced = !fenced;
        }
        lines.push(Line {
            number: i + 1,
            text: line.to_owned(),
            fenced: fenced || fence,
        });
    }
    Page {
        path: path.to_owned(),
        lines,
    }
}

impl Page {
    /// The lines outside fenced code.
    pub fn prose(&self) -> impl Iterator<Item = &Line> {
        self.lines.iter().filter(|l| !l.fenced)
    }

    /// Headings outside fenced code: (level, text).
    pub fn headings(&self) -> Vec<(usize, String)> {
        self.prose()
            .filter_map(|l| {
                let level = l.text.chars().take_while(|&c| c == '#').count();
                let rest = &l.text[level..];
                (level > 0 && level <= 6 && rest.starts_with(' '))
                    .then(|| (level, rest.trim().to_owned()))
            })
            .collect()
    }

    /// The anchors GitHub gives this page's headings.
    pub fn anchors(&self) -> Vec<String> {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        self.headings()
            .into_iter()
            .map(|(_, text)| {
                let base = anchor(&text);
                let n = seen.entry(base.clone()).or_insert(0);
                let anchor = if *n == 0 { base } else { format!("{base}-{n}") };
                *n += 1;
                anchor
            })
            .collect()
    }

    /// The tables outside fenced code: each a header row and body rows,
    /// split into trimmed cells (`\|` kept inside its cell).
    pub fn tables(&self) -> Vec<Table> {
        let mut tables = Vec::new();
        let mut current: Option<Table> = None;
        for line in self.prose() {
            let text = line.text.trim();
            if text.starts_with('|') {
                let cells = cells(text);
                match current.as_mut() {
                    None => {
                        current = Some(Table {
                            line: line.number,
                            header: cells,
                            rows: Vec::new(),
                        })
                    }
                    Some(table) => {
                        if !cells.iter().all(|c| c.chars().all(|ch| "-: ".contains(ch))) {
                            table.rows.push((line.number, cells));
                        }
                    }
                }
            } else if let Some(table) = current.take() {
                tables.push(table);
            }
        }
        tables.extend(current);
        tables
    }
}

/// A Markdown table.
pub struct Table {
    /// Line of the header row.
    pub line: usize,
    pub header: Vec<String>,
    /// (line number, cells).
    pub rows: Vec<(usize, Vec<String>)>,
}

/// Splits a table row into its cells.
fn cells(row: &str) -> Vec<String> {
    let inner = row.trim().trim_start_matches('|').trim_end_matches('|');
    let mut cells = vec![String::new()];
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cells.last_mut().unwrap().push('|');
                chars.next();
            }
            '|' => cells.push(String::new()),
            c => cells.last_mut().unwrap().push(c),
        }
    }
    cells.into_iter().map(|c| c.trim().to_owned()).collect()
}

/// GitHub's anchor for a heading: lowercased, every character but letters,
/// digits, spaces, `-` and `_` dropped, spaces made `-`.
pub fn anchor(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The inline code spans of a prose line.
pub fn code_spans(line: &str) -> Vec<&str> {
    let mut spans = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        let ticks = rest[start..].chars().take_while(|&c| c == '`').count();
        let after = &rest[start + ticks..];
        let fence = &rest[start..start + ticks];
        match after.find(fence) {
            Some(end) => {
                spans.push(after[..end].trim());
                rest = &after[end + ticks..];
            }
            None => break,
        }
    }
    spans
}

/// `line` with its inline code spans removed, so that `[a](b)` written as
/// code is not taken for a link.
pub fn without_code(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        out.push_str(&rest[..start]);
        let ticks = rest[start..].chars().take_while(|&c| c == '`').count();
        let after = &rest[start + ticks..];
        match after.find(&rest[start..start + ticks]) {
            Some(end) => rest = &after[end + ticks..],
            None => {
                rest = after;
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `line` without the targets of its links (`[text](target)` keeps
/// `[text]`): an anchor such as `#--address-auto` is no flag.
pub fn without_link_targets(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find("](") {
        out.push_str(&rest[..=i]);
        match rest[i + 2..].find(')') {
            Some(end) => rest = &rest[i + 2 + end + 1..],
            None => {
                rest = &rest[i + 1..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Every token in `text` that starts with `prefix` at a word boundary and
/// goes on with the characters `allowed` accepts (at least one).
pub fn tokens<'a>(text: &'a str, prefix: &str, allowed: impl Fn(char) -> bool) -> Vec<&'a str> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find(prefix) {
        let start = from + i;
        // A token starts at a word boundary (`--` in `a--b` is not a flag).
        let boundary = text[..start]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '-'));
        let end = start
            + prefix.len()
            + text[start + prefix.len()..]
                .chars()
                .take_while(|&c| allowed(c))
                .map(char::len_utf8)
                .sum::<usize>();
        if boundary && end > start + prefix.len() {
            found.push(&text[start..end]);
        }
        from = end.max(start + prefix.len());
    }
    found
}

/// Long flags (`--name`) in `text` (one ending in `-`, as in `--rrl-*`, is
/// a prefix).
pub fn flags(text: &str) -> Vec<&str> {
    tokens(text, "--", |c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
    })
    .into_iter()
    // A flag's name starts with a letter (`|---|` is a table's rule).
    .filter(|f| f[2..].starts_with(|c: char| c.is_ascii_lowercase()))
    .collect()
}

/// `DISCO_*` environment variables in `text` (a name ending in `_`, as in
/// `DISCO_RRL_*`, is a prefix).
pub fn env_vars(text: &str) -> Vec<&str> {
    tokens(text, "DISCO_", |c| {
        c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'
    })
}

/// Whether `path` (relative to the repository root) exists.
pub fn exists(path: &Path) -> bool {
    root().join(path).exists()
}
