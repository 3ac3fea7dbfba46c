//! The registrar's page: with `--elect`, each service's role, and why the
//! last change happened (maintenance, won the election, checks failing)
//! with its time; a failing check's last error. Read as HTML and as the
//! DOM headless Chromium renders; screenshots at desktop and phone widths
//! go to `target/tmp/ui-screenshots/`.

use std::net::SocketAddr;
use std::time::Duration;

use crate::chromium::{dump_dom, screenshot};
use crate::cluster::Etcd;
use crate::harness::{Registrar, TestService};
use crate::support::{CONVERGE, eventually, http};

/// The address of the registrar's endpoints, from its log.
async fn endpoints(registrar: &Registrar) -> SocketAddr {
    let found = || {
        (registrar.log().lines())
            .find_map(|l| l.split("endpoints on ").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|a| a.parse().ok())
    };
    eventually("the registrar's endpoints are up", CONVERGE, || {
        std::future::ready(found().is_some())
    })
    .await;
    found().unwrap()
}

/// The row of `service` on the page at `addr`.
async fn row(addr: SocketAddr, service: &str) -> String {
    let (status, page) = http::get(addr, "/ui/").await;
    assert_eq!(status, 200, "{page}");
    let marker = format!(r#"<tr data-service="{service}">"#);
    let Some(rest) = page.split(&marker).nth(1) else {
        panic!("no {service} row: {page}");
    };
    rest.split("</tr>").next().unwrap().to_owned()
}

/// Waits until the row of `service` at `addr` holds every one of `parts`.
async fn until_row(addr: SocketAddr, service: &str, parts: &[&str]) -> String {
    let deadline = tokio::time::Instant::now() + CONVERGE;
    loop {
        let row = row(addr, service).await;
        if parts.iter().all(|p| row.contains(p)) {
            return row;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{parts:?} not all in the {service} row within {CONVERGE:?}: {row}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn elected(registry: &str, instance: &str, service: &TestService, extra: &[&str]) -> Registrar {
    let (port, url) = (service.port(), service.url());
    let mut args = vec![
        "--registry",
        registry,
        "--service",
        "db",
        "--instance",
        instance,
        "--port",
        &port,
        "--address",
        "127.0.0.1",
        "--check",
        &url,
        // A timeout a loaded machine meets: a check that timed out would
        // make the service flap and the page say so.
        "--interval",
        "1s",
        "--timeout",
        "800ms",
        "--rise",
        "1",
        "--fall",
        "2",
        // Long enough that a loaded machine's slow keep-alive does not end
        // the lease mid-test; nothing here waits for it to expire.
        "--ttl",
        "10s",
        "--elect",
        "--http-listen",
        "127.0.0.1:0",
    ];
    args.extend(extra);
    Registrar::start(&args)
}

#[tokio::test]
async fn the_page_shows_the_role_and_why_the_last_change_happened() {
    let etcd = Etcd::start();
    let registry = etcd.url("etcd", "/disco");
    let dir = tempfile::tempdir().unwrap();
    let maintenance = dir.path().join("maintenance");
    let maintenance_arg = maintenance.display().to_string();
    let (one, two) = (TestService::start().await, TestService::start().await);

    let first = elected(
        &registry,
        "db-1",
        &one,
        &["--maintenance-file", &maintenance_arg],
    );
    let first_http = endpoints(&first).await;
    let row_one = until_row(
        first_http,
        "db/db-1",
        &[">primary<", "won the election", "ago</time>"],
    )
    .await;
    assert!(
        row_one.contains(r#"<td data-label="Role" class="role">"#),
        "{row_one}"
    );
    let second = elected(&registry, "db-2", &two, &[]);
    let second_http = endpoints(&second).await;
    until_row(
        second_http,
        "db/db-2",
        &[
            "replica",
            "published (replica)",
            "every check passed 1× in a row",
        ],
    )
    .await;

    // Maintenance withdraws the leader and says so; the other wins.
    std::fs::write(&maintenance, "").unwrap();
    until_row(
        first_http,
        "db/db-1",
        &["withdrawn", "maintenance file appeared", ">none<"],
    )
    .await;
    until_row(second_http, "db/db-2", &[">primary<", "won the election"]).await;

    // The withdrawn one's checks start failing: the check's last error is
    // on the page, and after the maintenance file goes, the reason it
    // stays out is the checks'.
    one.set_healthy(false);
    until_row(
        first_http,
        "db/db-1",
        &[r#"<td data-label="Healthy"><span class="bad">no</span>"#],
    )
    .await;
    std::fs::remove_file(&maintenance).unwrap();
    // Unhealthy, unpublished, out of maintenance.
    let out = [
        r#"<td data-label="Healthy"><span class="bad">no</span></td>"#,
        r#"<td data-label="Published"><span class="bad">no</span></td>"#,
        r#"<td data-label="Maintenance"><span class="ok">no</span></td>"#,
    ];
    until_row(first_http, "db/db-1", &out).await;
    eventually("the check's error on the page", CONVERGE, || async {
        let (_, page) = http::get(first_http, "/ui/").await;
        page.contains(r#"<span class="bad">failed</span> <span class="why">"#)
            && page.contains("GET http://")
    })
    .await;
    let (_, page) = http::get(first_http, "/ui/").await;
    assert!(
        !page.contains("maintenance file removed"),
        "never published, so no change to explain: {page}"
    );
    one.set_healthy(true);
    until_row(
        first_http,
        "db/db-1",
        &[
            "published (replica)",
            "every check passed 1× in a row",
            "replica",
        ],
    )
    .await;

    // The primary's checks fail: withdrawn, with the checks' reason.
    two.set_healthy(false);
    let row_two = until_row(
        second_http,
        "db/db-2",
        // The check's error: 503, or a timeout on a loaded machine.
        &["withdrawn", "check failed 2× (GET http://", ">none<"],
    )
    .await;
    eprintln!("{row_two}");
    until_row(first_http, "db/db-1", &[">primary<", "won the election"]).await;

    // What a browser renders: the role and the reason in their cells (the
    // role is whatever it is by now: a loaded machine may have fenced it).
    let dom = dump_dom(&format!("http://{first_http}/ui/"), &[]).await;
    let row = dom
        .split(r#"<tr data-service="db/db-1">"#)
        .nth(1)
        .unwrap_or_else(|| panic!("no row in the DOM: {dom}"));
    let role = (row.split(r#"<td data-label="Role" class="role">"#).nth(1)).unwrap();
    assert!(
        ["primary", "replica", "none"].iter().any(|r| role
            .starts_with(&format!("<span class=\"ok\">{r}</span>"))
            || role.starts_with(&format!("{r}</td>"))),
        "{row}"
    );
    let change = (row
        .split(r#"<td data-label="Last change" class="change"><strong>"#)
        .nth(1))
    .unwrap_or_else(|| panic!("no last change: {row}"));
    assert!(change.contains(r#"</strong>: <span class="why">"#), "{row}");
    assert!(change.contains("s ago</time>"), "{row}");

    for (name, addr, width, height, dark) in [
        (
            "registrar-primary-desktop.png",
            first_http,
            1280,
            720,
            false,
        ),
        ("registrar-primary-phone.png", first_http, 390, 844, false),
        (
            "registrar-withdrawn-desktop-dark.png",
            second_http,
            1280,
            720,
            true,
        ),
        (
            "registrar-withdrawn-phone.png",
            second_http,
            390,
            844,
            false,
        ),
    ] {
        let path = screenshot(&format!("http://{addr}/ui/"), name, width, height, dark).await;
        eprintln!("screenshot {}", path.display());
    }
    drop((first, second));
}
