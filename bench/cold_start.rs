//! What a cold start costs from the store's listing to the registry, without
//! a store: `parse_native` over N realistic values (the ones
//! `gen_records.py N/10 10 DIR Q realistic` writes, as `disco-bench load`
//! stores them), then the registry's first `Registry::reset`.
//!
//! ```text
//! cargo bench --bench cold_start --no-run
//! valgrind --tool=callgrind --collect-atstart=no \
//!     --toggle-collect='*cold_start::parse_listing*' \
//!     --toggle-collect='*cold_start::first_reset*' \
//!     target/release/deps/cold_start-* 100000
//! ```
//!
//! Instructions come from callgrind (the machine is shared, so wall time
//! says little); the bytes from the counting allocator below, which sees
//! what the code asks for, whatever allocator the server ends up with.

// A global allocator is unsafe to implement; this one only counts and
// hands every call to the system allocator.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use disco::model::{Instance, parse_native};
use disco::registry::{InstanceChange, Registry};

/// Bytes and blocks in use.
struct Counting;

static BYTES: AtomicUsize = AtomicUsize::new(0);
static BLOCKS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        BYTES.fetch_add(layout.size(), Relaxed);
        BLOCKS.fetch_add(1, Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        BYTES.fetch_sub(layout.size(), Relaxed);
        BLOCKS.fetch_sub(1, Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// `(bytes, blocks)` in use now.
fn in_use() -> (usize, usize) {
    (BYTES.load(Relaxed), BLOCKS.load(Relaxed))
}

/// One listed key: service, instance id, value.
type Listed = (String, String, Vec<u8>);

/// The values of `gen_records.py` with `realistic`, ten instances a
/// service, as etcd holds them (serde_json's compact form, keys sorted).
fn listing(instances: usize) -> Vec<Listed> {
    let mut listed = Vec::with_capacity(instances);
    for n in 1..=instances {
        let (s, i) = ((n - 1) / 10, (n - 1) % 10);
        let address = format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255);
        let role = if i == 0 { "primary" } else { "replica" };
        let zone = ["a", "b", "c"][(n / 3) % 3];
        let value = format!(
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
            role = role,
            zone = zone,
        );
        listed.push((format!("svc{s}"), format!("svc{s}-{i}"), value.into_bytes()));
    }
    listed
}

#[inline(never)]
fn parse_listing(listed: &[Listed]) -> Vec<Instance> {
    listed
        .iter()
        .map(|(service, id, value)| parse_native(service, id, value).expect("a valid value"))
        .collect()
}

#[inline(never)]
fn first_reset(registry: &mut Registry, instances: Vec<Instance>) -> Vec<InstanceChange> {
    registry.reset(0, instances)
}

fn main() {
    let count: usize = std::env::args()
        .nth(1)
        .map_or(100_000, |n| n.parse().expect("a number of instances"));
    let listed = listing(count);
    let before = in_use();
    let instances = parse_listing(&listed);
    let parsed = in_use();
    drop(listed);
    let mut registry = Registry::new(1);
    let changes = first_reset(&mut registry, instances);
    assert_eq!(changes.len(), count);
    drop(changes);
    let held = in_use();
    let per = |bytes: usize| bytes as f64 / count as f64;
    println!("{count} instances");
    println!(
        "parsed:   {:.1} bytes, {:.2} blocks an instance",
        per(parsed.0 - before.0),
        per(parsed.1 - before.1)
    );
    println!(
        "registry: {:.1} bytes, {:.2} blocks an instance",
        per(held.0),
        per(held.1)
    );
    black_box(registry);
}
