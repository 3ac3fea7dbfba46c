//! Headless Chromium (Debian's `chromium`) for the page tests, shared by
//! the test binaries that include this file with `#[path]`: the rendered
//! DOM (`--dump-dom`) and screenshots into the test's output directory
//! (`target/tmp/ui-screenshots/`), to be looked at.

#![allow(dead_code)]

use std::path::PathBuf;

/// Chromium with a profile of its own, headless.
pub fn chromium(profile: &tempfile::TempDir) -> tokio::process::Command {
    let mut command = tokio::process::Command::new("chromium");
    command
        .arg("--headless")
        .arg("--no-sandbox")
        .arg("--disable-gpu")
        .arg("--no-first-run")
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .kill_on_drop(true);
    command
}

/// The DOM Chromium renders for `url`, after its scripts ran.
pub async fn dump_dom(url: &str, extra: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let output = chromium(&profile)
        .args(extra)
        .arg("--dump-dom")
        .arg(url)
        .output()
        .await
        .expect("chromium runs (Debian package chromium)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A `width`×`height` screenshot of `url` (dark when `dark`) written to
/// `target/tmp/ui-screenshots/{name}`; its path.
pub async fn screenshot(url: &str, name: &str, width: u32, height: u32, dark: bool) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let profile = tempfile::tempdir().unwrap();
    let output = chromium(&profile)
        .arg(format!("--screenshot={}", path.display()))
        .arg(format!("--window-size={width},{height}"))
        .arg("--hide-scrollbars")
        .args(dark.then_some("--force-dark-mode"))
        .arg(url)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        std::fs::metadata(&path).unwrap().len() > 1000,
        "{path:?} is empty"
    );
    path
}
