//! The flags in the manual are the flags the binary has.
//!
//! The convention the manual keeps: each command's flags are rows of tables
//! whose header begins `` | `disco COMMAND` flag | env | ``: the first cell
//! names the flag (`--name VALUE`; several flags may share a row), the
//! second its `DISCO_*` variable(s). A command's rows may be spread over
//! several pages (the RRL flags sit with rate limiting); together they must
//! be exactly what `disco COMMAND --help` lists. Beyond the tables, any
//! `--flag` the prose or a `disco …` command line names must be a flag of
//! disco (on a `disco COMMAND` line: of that command), or one of another
//! tool listed in [`FOREIGN`]; any `DISCO_*` named must be a flag's variable
//! or a name the code or the container files really use.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use crate::manual::{self, Page};

/// Flags of other programs the manual names, and whose they are.
const FOREIGN: &[(&str, &str)] = &[
    ("--build", "docker compose up"),
    ("--build-arg", "docker build"),
    ("--cap-add", "docker run"),
    ("--cap-drop", "docker run"),
    ("--client-cert-auth", "etcd"),
    ("--dns", "docker run"),
    ("--dns-search", "docker run"),
    ("--example", "cargo run"),
    ("--filter", "docker image prune"),
    ("--lease", "etcdctl put"),
    ("--max-request-bytes", "etcd"),
    ("--release", "cargo run"),
    ("--remote-debugging-pipe", "chromium"),
    ("--stop-timeout", "docker run"),
    ("--variant", "debootstrap"),
];

/// One flag as `--help` shows it.
#[derive(Debug, Clone)]
pub struct Flag {
    pub long: String,
    pub env: Option<String>,
    /// What `[default: …]` says, if anything.
    pub default: Option<String>,
}

/// Runs the built binary with `args`, returning what it printed.
fn disco(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_disco"))
        .args(args)
        .env_clear()
        .output()
        .expect("the disco binary runs");
    assert!(
        output.status.success(),
        "disco {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The subcommands `disco --help` lists.
pub fn commands() -> Vec<String> {
    let help = disco(&["--help"]);
    let section = help
        .split_once("Commands:")
        .expect("disco --help lists its commands")
        .1;
    let commands: Vec<String> = section
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect();
    assert!(
        commands.len() >= 3,
        "disco --help lists {commands:?}: serve, registrar and wait at least"
    );
    commands
}

/// The long flags of `disco COMMAND --help` with their variables (`--help`
/// and `--version` left out: every command has them).
pub fn help_flags(command: &str) -> Vec<Flag> {
    let help = disco(&[command, "--help"]);
    let mut flags: Vec<Flag> = Vec::new();
    let mut block = String::new();
    let flush = |block: &mut String, flags: &mut Vec<Flag>| {
        let head = block
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        if let Some(long) = manual::flags(&head).first() {
            let env = block
                .split_once("[env: ")
                .map(|(_, rest)| rest.split(['=', ']']).next().unwrap().to_owned());
            let default = block
                .split_once("[default: ")
                .map(|(_, rest)| rest.split(']').next().unwrap().to_owned());
            if *long != "--help" && *long != "--version" {
                flags.push(Flag {
                    long: (*long).to_owned(),
                    env,
                    default,
                });
            }
        }
        block.clear();
    };
    for line in help.lines() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() {
            // Long help puts blank lines inside one flag's text.
            continue;
        }
        let indented = line.len() > trimmed.len();
        // `--long` or `-s, --long` opens a flag (not `- value: …`, a line of
        // a flag's possible values).
        let opens = trimmed.starts_with("--")
            || (trimmed.starts_with('-')
                && trimmed[1..].starts_with(|c: char| c.is_ascii_alphabetic()));
        if indented && opens {
            flush(&mut block, &mut flags);
        } else if !indented {
            flush(&mut block, &mut flags);
            continue;
        }
        block.push_str(trimmed);
        block.push(' ');
    }
    flush(&mut block, &mut flags);
    assert!(
        !flags.is_empty(),
        "no flags read from disco {command} --help"
    );
    flags
}

/// A row of a `` `disco COMMAND` flag `` table.
#[derive(Clone)]
struct Row {
    /// `page:line`.
    at: String,
    flags: Vec<String>,
    envs: Vec<String>,
    /// The default cell.
    default: String,
}

fn documented(pages: &[Page]) -> BTreeMap<String, Vec<Row>> {
    let mut by_command: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for page in pages {
        for table in page.tables() {
            let Some(command) = table
                .header
                .first()
                .and_then(|h| h.strip_prefix("`disco "))
                .and_then(|h| h.strip_suffix("` flag"))
            else {
                continue;
            };
            assert_eq!(
                table.header.get(1).map(String::as_str),
                Some("env"),
                "{}:{}: a flag table's second column is `env`",
                page.path,
                table.line
            );
            for (line, cells) in &table.rows {
                let flags = manual::flags(&cells[0])
                    .into_iter()
                    .map(str::to_owned)
                    .collect();
                let envs = manual::env_vars(&cells[1])
                    .into_iter()
                    .map(str::to_owned)
                    .collect();
                by_command.entry(command.to_owned()).or_default().push(Row {
                    at: format!("{}:{line}", page.path),
                    flags,
                    envs,
                    default: cells.get(2).cloned().unwrap_or_default(),
                });
            }
        }
    }
    by_command
}

#[test]
fn every_flag_and_variable_of_help_is_documented_and_no_other() {
    let pages = manual::pages();
    let tables = documented(&pages);
    let mut wrong = Vec::new();
    for command in commands() {
        let flags = help_flags(&command);
        let rows = tables.get(&command).cloned().unwrap_or_default();
        if rows.is_empty() {
            wrong.push(format!(
                "disco {command}: no `disco {command}` flag table in docs/"
            ));
        }
        for flag in &flags {
            let Some(row) = rows.iter().find(|r| r.flags.contains(&flag.long)) else {
                wrong.push(format!(
                    "disco {command} {}: not in any `disco {command}` flag table in docs/",
                    flag.long
                ));
                continue;
            };
            if let Some(env) = &flag.env
                && !row.envs.contains(env)
            {
                wrong.push(format!(
                    "{}: disco {command} {} reads {env}, which its row does not name",
                    row.at, flag.long
                ));
            }
            // A default that is one word in --help (`5s`, `1024`) is the
            // row's first code span; defaults in words are left to readers.
            let documented = manual::code_spans(&row.default).first().copied();
            if let Some(default) = &flag.default
                && !default.contains(' ')
                && row.flags.len() == 1
                && documented != Some(default.as_str())
            {
                wrong.push(format!(
                    "{}: disco {command} {} defaults to `{default}` in --help, the row says {:?}",
                    row.at, flag.long, row.default
                ));
            }
        }
        for Row {
            at,
            flags: row_flags,
            envs,
            ..
        } in &rows
        {
            if row_flags.is_empty() {
                wrong.push(format!("{at}: a `disco {command}` flag row names no flag"));
            }
            for documented in row_flags {
                if !flags.iter().any(|f| &f.long == documented) {
                    wrong.push(format!(
                        "{at}: documents disco {command} {documented}, which --help does not have"
                    ));
                }
            }
            for env in envs {
                let owner = flags
                    .iter()
                    .find(|f| f.env.as_deref() == Some(env.as_str()));
                match owner {
                    Some(f) if row_flags.contains(&f.long) => {}
                    Some(f) => wrong.push(format!(
                        "{at}: {env} is the variable of {}, not of this row's flags",
                        f.long
                    )),
                    None => wrong.push(format!(
                        "{at}: {env} is the variable of no disco {command} flag"
                    )),
                }
            }
        }
    }
    for command in tables.keys() {
        if !commands().contains(command) {
            wrong.push(format!(
                "docs have a flag table for `disco {command}`, which does not exist"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "the manual and --help differ:\n{}",
        wrong.join("\n")
    );
}

/// `disco COMMAND` on a command line (`disco serve …`, `cargo run -- serve`,
/// compose's `command: [registrar, …]`): the command and the text after it.
fn invocation<'a>(line: &'a str, commands: &[String]) -> Option<(String, &'a str)> {
    for command in commands {
        for prefix in [
            format!("disco {command}"),
            format!("-- {command}"),
            format!("command: [{command},"),
        ] {
            if let Some(i) = line.find(&prefix) {
                return Some((command.clone(), &line[i + prefix.len()..]));
            }
        }
    }
    None
}

#[test]
fn every_flag_the_manual_names_exists() {
    let commands = commands();
    let by_command: BTreeMap<String, BTreeSet<String>> = commands
        .iter()
        .map(|c| {
            let mut flags: BTreeSet<String> = help_flags(c).into_iter().map(|f| f.long).collect();
            flags.insert("--help".into());
            flags.insert("--version".into());
            (c.clone(), flags)
        })
        .collect();
    let all: BTreeSet<&String> = by_command.values().flatten().collect();
    let known = |flag: &str| {
        match flag.strip_suffix('-') {
            // `--rrl-*`: some flag begins so.
            Some(prefix) => all.iter().any(|f| f.starts_with(&format!("{prefix}-"))),
            None => all.iter().any(|f| *f == flag),
        }
    };
    let mut wrong = Vec::new();
    let mut checked = 0;
    for page in manual::pages() {
        let mut continued: Option<String> = None;
        for line in &page.lines {
            let at = format!("{}:{}", page.path, line.number);
            if line.fenced {
                // A command line, and the lines a trailing `\` continues.
                let found = match continued.take() {
                    Some(command) => Some((command, line.text.as_str())),
                    None => invocation(&line.text, &commands),
                };
                if let Some((command, rest)) = found {
                    for flag in manual::flags(rest.split(" # ").next().unwrap()) {
                        checked += 1;
                        if !by_command[&command].contains(flag) {
                            wrong.push(format!("{at}: disco {command} has no {flag}"));
                        }
                    }
                    if line.text.trim_end().ends_with('\\') {
                        continued = Some(command);
                    }
                }
                continue;
            }
            // The whole line, not only its code spans: a span may be
            // wrapped onto the next line.
            let text = manual::without_link_targets(&line.text);
            for flag in manual::flags(&text) {
                checked += 1;
                if !known(flag) && !FOREIGN.iter().any(|(f, _)| *f == flag) {
                    wrong.push(format!(
                        "{at}: {flag} is no flag of disco (nor listed as another tool's in tests/docs/flags.rs)"
                    ));
                }
            }
        }
    }
    assert!(
        checked > 100,
        "only {checked} flags found: is the parser blind?"
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Every file under `dir` (recursively), as text.
fn sources(dir: &std::path::Path, out: &mut String) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if let Ok(text) = std::fs::read_to_string(&path) {
            out.push_str(&text);
        }
    }
}

#[test]
fn every_variable_the_manual_names_exists() {
    let mut envs: BTreeSet<String> = BTreeSet::new();
    for command in commands() {
        envs.extend(help_flags(&command).into_iter().filter_map(|f| f.env));
    }
    // Variables that are no flag's: credentials the code reads, what it sets
    // for hooks, build, compose and benchmark variables. Each must occur in
    // the code, the container files or the benchmarks.
    let mut code = String::new();
    sources(&manual::root().join("src"), &mut code);
    sources(&manual::root().join("docker"), &mut code);
    sources(&manual::root().join("bench"), &mut code);
    let used: BTreeSet<&str> = manual::env_vars(&code).into_iter().collect();
    let mut wrong = Vec::new();
    for page in manual::pages() {
        for line in &page.lines {
            for name in manual::env_vars(&line.text) {
                let ok = match name.strip_suffix('_') {
                    // `DISCO_RRL_*`: some variable begins so.
                    Some(_) => envs.iter().any(|e| e.starts_with(name)),
                    None => envs.contains(name) || used.contains(name),
                };
                if !ok {
                    wrong.push(format!(
                        "{}:{}: {name} is no flag's variable, and neither src/, docker/ nor bench/ uses it",
                        page.path, line.number
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The manual says the `[serve]` table's keys are the flags' names: the keys
/// the binary accepts (from its message for an unknown one) are exactly the
/// flags of `disco serve --help` but `--config`.
#[test]
fn the_serve_config_file_keys_are_the_flags() {
    let dir = std::env::temp_dir().join(format!("disco-docs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("unknown-key.toml");
    std::fs::write(&file, "[serve]\nno-such-key = 1\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_disco"))
        .args(["serve", "--config"])
        .arg(&file)
        .env_clear()
        .output()
        .expect("the disco binary runs");
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(output.status.code(), Some(64), "an unknown key exits 64");
    let message = String::from_utf8_lossy(&output.stderr);
    let keys: BTreeSet<String> = message
        .split_once("expected one of ")
        .unwrap_or_else(|| panic!("no list of keys in: {message}"))
        .1
        .split(", ")
        .map(|k| format!("--{}", k.trim().trim_matches('`')))
        .collect();
    let flags: BTreeSet<String> = help_flags("serve")
        .into_iter()
        .map(|f| f.long)
        .filter(|f| f != "--config")
        .collect();
    assert_eq!(
        keys, flags,
        "the [serve] keys (left) are not the flags of disco serve (right), as docs/serving.md says"
    );
}
