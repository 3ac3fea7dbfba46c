//! Every fuzz target, run over every file of its checked-in seeds
//! (`fuzz/seeds/<target>/`): the inputs that cover the shapes it explores,
//! and every input a fuzzer ever crashed it with. So `cargo test` compiles
//! each target's body and replays each crash found; `scripts/fuzz` runs the
//! same bodies under libFuzzer, starting from these seeds.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use disco::fuzzing::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files of a directory, sorted; empty when it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries.map(|entry| entry.unwrap().path()).collect();
    files.sort();
    files
}

#[test]
fn every_target_runs_every_seed_without_panicking() {
    let mut failures = Vec::new();
    let mut ran = 0;
    for (name, target) in TARGETS {
        let seeds = files(&fuzz_dir().join("seeds").join(name));
        assert!(!seeds.is_empty(), "fuzz/seeds/{name}/ has no seeds");
        for seed in seeds {
            let data = std::fs::read(&seed).unwrap();
            ran += 1;
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| target(&data))) {
                let message = (panic.downcast_ref::<String>().map(String::as_str))
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("(no message)");
                failures.push(format!("{}: {message}", seed.display()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {ran} seeds fail (reproduce one with `cargo fuzz run -s none <target> <file>` \
         in fuzz/):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A target is a library function, a binary in `fuzz/` that calls it, and a
/// seed directory: none goes without the others.
#[test]
fn every_target_has_its_binary_and_seeds_and_nothing_else_does() {
    let names: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
    let stems = |dir: &Path| -> Vec<String> {
        let mut stems: Vec<String> = (files(dir).iter())
            .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        stems.sort();
        stems
    };
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(
        stems(&fuzz_dir().join("fuzz_targets")),
        sorted,
        "fuzz/fuzz_targets/"
    );
    assert_eq!(stems(&fuzz_dir().join("seeds")), sorted, "fuzz/seeds/");
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    for name in names {
        let source = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        let source = std::fs::read_to_string(&source).unwrap();
        assert!(
            source.contains(&format!("disco::fuzzing::{name}::run(data)")),
            "fuzz/fuzz_targets/{name}.rs calls disco::fuzzing::{name}::run"
        );
        assert!(
            manifest.contains(&format!(
                "name = \"{name}\"\npath = \"fuzz_targets/{name}.rs\""
            )),
            "fuzz/Cargo.toml has a [[bin]] {name}"
        );
    }
}
