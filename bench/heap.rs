//! Heap bytes per instance that each layer of `disco serve` holds, measured
//! in-process with a counting allocator: no store, no sockets, and figures
//! that a busy machine does not change (bytes and allocations, not time).
//!
//! Usage: `cargo run --release --example heap -- [INSTANCES] [TAGS]`
//! (default 100000 instances; TAGS `realistic` or `plain`).
//!
//! The instances are `bench/gen_records.py`'s `realistic` set, ten per
//! service: two named ports, three tags (a version of three, `primary` or
//! `replica`, a zone of three), three metadata pairs. Each value is parsed
//! by the native format's parser, then goes through the registry, the
//! catalog and the snapshot builder as the snapshot writer sends it; the
//! figures are what each step keeps once it is done (the bytes asked for,
//! the blocks they are in) and the time it took; then the resident memory
//! of the whole process with the allocator disco uses (mimalloc, as
//! `src/main.rs` sets it), less what it held before the values were made
//! (they are dropped once parsed, as a listing's are): right after the
//! steps, and once mimalloc has handed the pages freed back to the system.

// The only unsafe code of the crate's targets: a global allocator that
// counts is an `unsafe impl GlobalAlloc`, which only hands each call on,
// and one call of mimalloc's own to return freed pages.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use disco::catalog::Catalog;
use disco::dns::{Snapshot, SnapshotBuilder};
use disco::model::{Instance, parse_native};
use disco::registry::{InstanceChange, Registry};
use mimalloc::MiMalloc;

/// Batches of 25 changes the churn applies: enough at a million instances
/// for every name table to fold its changes in at least twice.
const BATCHES: usize = 2000;

/// mimalloc, as `src/main.rs` sets it, counting the bytes and blocks held.
struct Counting;

static BYTES: AtomicUsize = AtomicUsize::new(0);
static BLOCKS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        BYTES.fetch_add(layout.size(), Relaxed);
        BLOCKS.fetch_add(1, Relaxed);
        // SAFETY: the caller's contract, handed on unchanged.
        unsafe { MiMalloc.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        BYTES.fetch_sub(layout.size(), Relaxed);
        BLOCKS.fetch_sub(1, Relaxed);
        // SAFETY: the caller's contract, handed on unchanged.
        unsafe { MiMalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        BYTES.fetch_add(new_size, Relaxed);
        BYTES.fetch_sub(layout.size(), Relaxed);
        // SAFETY: the caller's contract, handed on unchanged.
        unsafe { MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The bytes and blocks held now.
struct Region(usize, usize);

impl Region {
    fn new() -> Self {
        Region(BYTES.load(Relaxed), BLOCKS.load(Relaxed))
    }
}

/// What gen_records.py's `realistic` set gives instance number `n` (from 1)
/// of service `s`, the `i`th in it, as etcd holds it after `disco-bench
/// load` (serde_json's compact form, keys sorted).
fn realistic_value(n: usize, s: usize, i: usize) -> String {
    let address = format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255);
    format!(
        concat!(
            r#"{{"address":"{address}","#,
            r#""meta":{{"commit":"{commit:07x}","team":"team{team}","version":"1.{minor}.{patch}"}},"#,
            r#""port":8080,"ports":{{"http":8080,"metrics":9100}},"#,
            r#""tags":["v{version}","{role}","az-{zone}"]}}"#
        ),
        address = address,
        commit = (n as u64 * 2_654_435_761) % (1 << 28),
        team = s % 50,
        minor = n % 7,
        patch = n % 13,
        version = n % 3 + 1,
        role = if i == 0 { "primary" } else { "replica" },
        zone = ["a", "b", "c"][(n / 3) % 3],
    )
}

fn plain_value(n: usize) -> String {
    let address = format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255);
    format!(r#"{{"address":"{address}","port":8080,"meta":{{"version":"1.0"}}}}"#)
}

/// Bytes and blocks held more than at `region`.
fn held(region: &Region) -> (isize, isize) {
    let now = Region::new();
    (
        now.0 as isize - region.0 as isize,
        now.1 as isize - region.1 as isize,
    )
}

struct Report {
    instances: usize,
    total: (isize, isize),
}

impl Report {
    fn step(&mut self, what: &str, region: Region, started: Instant) {
        let (bytes, blocks) = held(&region);
        self.total.0 += bytes;
        self.total.1 += blocks;
        let n = self.instances as f64;
        println!(
            "{what:<44} {:>10.1} MiB {:>8.0} B/instance {:>7.2} blocks/instance {:>8.0} ms",
            bytes as f64 / (1 << 20) as f64,
            bytes as f64 / n,
            blocks as f64 / n,
            started.elapsed().as_secs_f64() * 1000.0
        );
    }
}

/// The process's resident memory, in bytes.
fn resident() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .unwrap_or("");
    let kib = line.split_whitespace().nth(1).and_then(|n| n.parse().ok());
    kib.unwrap_or(0u64) * 1024
}

// The steps, each a function of its own so that callgrind can count one:
// `valgrind --tool=callgrind --collect-atstart=no
// --toggle-collect='*heap::parse_listing*' target/release/examples/heap`.

#[inline(never)]
fn parse_listing(values: &[(String, String, String)]) -> Vec<Instance> {
    let parse = |(service, id, value): &(String, String, String)| {
        parse_native(service, id, value.as_bytes()).expect("valid")
    };
    values.iter().map(parse).collect()
}

#[inline(never)]
fn first_reset(registry: &mut Registry, instances: Vec<Instance>) -> Vec<InstanceChange> {
    registry.reset(0, instances)
}

#[inline(never)]
fn catalog_apply(catalog: &Catalog, changes: &[InstanceChange]) {
    catalog.apply(changes, &[]);
}

#[inline(never)]
fn first_snapshot(builder: &mut SnapshotBuilder, changes: Vec<InstanceChange>) -> Snapshot {
    builder.apply(changes.into_iter().map(|c| (c.old, c.new)));
    builder.snapshot()
}

type Change = (Option<Arc<Instance>>, Option<Arc<Instance>>);

/// Applies each batch and takes its snapshot; returns the last snapshot and
/// each batch's time. The slowest batches are those that fold the name
/// tables' changes in (`dns::snapshot::name_index`): a registration waits
/// behind them.
#[inline(never)]
fn churn(
    builder: &mut SnapshotBuilder,
    mut current: Snapshot,
    batches: Vec<Vec<Change>>,
) -> (Snapshot, Vec<Duration>) {
    let mut times = Vec::with_capacity(batches.len());
    for batch in batches {
        let started = Instant::now();
        builder.apply(batch);
        current = builder.snapshot();
        times.push(started.elapsed());
    }
    (current, times)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let instances: usize = args
        .next()
        .map_or(100_000, |n| n.parse().expect("INSTANCES"));
    let realistic = args.next().is_none_or(|tags| tags == "realistic");
    let per_service = 10;
    let resident_before = resident();
    let values: Vec<(String, String, String)> = (0..instances)
        .map(|k| {
            let (s, i) = (k / per_service, k % per_service);
            let value = if realistic {
                realistic_value(k + 1, s, i)
            } else {
                plain_value(k + 1)
            };
            (format!("svc{s}"), format!("svc{s}-{i}"), value)
        })
        .collect();
    let mut report = Report {
        instances,
        total: (0, 0),
    };
    println!("{instances} instances, {per_service} per service, realistic: {realistic}");

    let (region, started) = (Region::new(), Instant::now());
    let parsed = parse_listing(&values);
    report.step("parsed instances (model)", region, started);
    drop(values);

    let (region, started) = (Region::new(), Instant::now());
    let mut registry = Registry::new(1);
    let changes = first_reset(&mut registry, parsed);
    report.step("registry (after the listing's reset)", region, started);

    let (region, started) = (Region::new(), Instant::now());
    let catalog = Catalog::new(vec!["etcd".into()], "disco.internal", 1000);
    catalog_apply(&catalog, &changes);
    report.step("catalog (JSON API and page)", region, started);

    let (region, started) = (Region::new(), Instant::now());
    let mut builder = SnapshotBuilder::new("disco.internal.", Vec::new(), 5, &[]);
    let snapshot = first_snapshot(&mut builder, changes);
    report.step("snapshot (builder's copy shared)", region, started);

    let (bytes, blocks) = report.total;
    println!(
        "{:<44} {:>10.1} MiB {:>8.0} B/instance {:>7.2} blocks/instance",
        "in all",
        bytes as f64 / (1 << 20) as f64,
        bytes as f64 / instances as f64,
        blocks as f64 / instances as f64
    );
    let show = |what: &str, resident: u64| {
        println!(
            "{what:<44} {:>10.1} MiB {:>8.0} B/instance",
            resident as f64 / (1 << 20) as f64,
            resident as f64 / instances as f64
        );
    };
    show("resident, right after", resident() - resident_before);
    // The values made above are gone, but mimalloc hands their pages back
    // to the system only after its purge delay (a second) and on a later
    // call, so the figure above depends on how long the steps took. A
    // server gets there by itself a second after a listing; asking for it
    // now gives what the layers hold with the allocator's slack, whatever
    // the timing.
    unsafe extern "C" {
        /// mimalloc's own: returns freed pages to the system.
        fn mi_collect(force: bool);
    }
    // SAFETY: takes no pointer; mimalloc is the allocator in use.
    unsafe { mi_collect(true) };
    show(
        "resident, freed pages returned (mi_collect)",
        resident() - resident_before,
    );
    assert_eq!(snapshot.instances(), instances);

    // Churn as the snapshot writer meets it at 5,000 changes a second:
    // BATCHES batches of 25 instances moved to a new address, each batch
    // built into a snapshot, the previous one dropped.
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let instance = |k: usize, value: &str| {
        let (s, i) = (k / per_service, k % per_service);
        let (service, id) = (format!("svc{s}"), format!("svc{s}-{i}"));
        Arc::new(parse_native(&service, &id, value.as_bytes()).expect("valid"))
    };
    let batches: Vec<Vec<_>> = (0..BATCHES)
        .map(|_| {
            (0..25)
                .map(|_| {
                    // xorshift: any instance, spread over services and shards.
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let k = (rng % instances as u64) as usize;
                    let value = realistic_value(k + 1, k / per_service, k % per_service);
                    let moved = value.replace("\"10.", "\"11.");
                    (Some(instance(k, &value)), Some(instance(k, &moved)))
                })
                .collect()
        })
        .collect();
    let started = Instant::now();
    let (current, mut times) = churn(&mut builder, snapshot, batches);
    println!(
        "{:<44} {:>10.1} µs per change, 25 to a snapshot",
        "churn: instances moved",
        started.elapsed().as_secs_f64() * 1e6 / (BATCHES * 25) as f64
    );
    times.sort_unstable();
    let ms = |at: usize| times[at].as_secs_f64() * 1e3;
    println!(
        "{:<44} {:>10.2} ms median, {:.2} ms p99, {:.2} ms the slowest",
        "churn: a batch's update and snapshot",
        ms(times.len() / 2),
        ms(times.len() * 99 / 100),
        ms(times.len() - 1)
    );
    drop((current, builder, catalog, registry));
}
