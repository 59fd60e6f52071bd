//! Headless Chromium driven from the command line: `--dump-dom` gives the
//! DOM after the page rendered, `--screenshot` a PNG. No WebDriver needed
//! for pages without script. Fails (never skips) without `/usr/bin/chromium`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::harness::run_bounded;

pub const CHROMIUM: &str = "/usr/bin/chromium";

pub fn require() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "chromium not found: install it with `apt-get install -y chromium chromium-driver`"
    );
}

/// Where tests leave pictures for people to look at (gitignored).
pub fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/artifacts");
    std::fs::create_dir_all(&dir).expect("create tests/artifacts");
    dir
}

/// Copies a picture into `docs/img/` when `ERRBUDGET_UPDATE_DOCS_IMG=1`:
/// the README's pictures are refreshed on purpose, not by every test run
/// (PNG bytes differ from run to run and would dirty the tree).
pub fn publish(picture: &Path, name: &str) {
    if std::env::var("ERRBUDGET_UPDATE_DOCS_IMG").as_deref() != Ok("1") {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/img");
    std::fs::create_dir_all(&dir).expect("create docs/img");
    std::fs::copy(picture, dir.join(name)).expect("copy picture to docs/img");
}

/// A headless Chromium that reaches nothing but the URL it is given: no
/// sync, no component updates, a throwaway profile.
fn command(profile: &Path, width: u32, height: u32) -> Command {
    require();
    let mut c = Command::new(CHROMIUM);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .arg(format!("--window-size={width},{height}"));
    c
}

/// The DOM of `url` after rendering, as Chromium serialises it.
pub fn dump_dom(url: &str) -> String {
    let profile = tempfile::tempdir().expect("tempdir");
    let (code, out, err) = run_bounded(
        command(profile.path(), 390, 844).arg("--dump-dom").arg(url),
        Duration::from_secs(90),
    );
    assert_eq!(code, Some(0), "chromium --dump-dom {url}:\n{err}");
    assert!(
        !out.trim().is_empty(),
        "chromium dumped no DOM for {url}:\n{err}"
    );
    out
}

/// A PNG of `url` at `width`×`height` CSS pixels, written to `path`.
pub fn screenshot(url: &str, path: &Path, width: u32, height: u32) {
    let profile = tempfile::tempdir().expect("tempdir");
    let _ = std::fs::remove_file(path);
    let (code, _, err) = run_bounded(
        command(profile.path(), width, height)
            .arg(format!("--screenshot={}", path.display()))
            .arg(url),
        Duration::from_secs(90),
    );
    assert_eq!(code, Some(0), "chromium --screenshot {url}:\n{err}");
    let bytes =
        std::fs::read(path).unwrap_or_else(|e| panic!("no screenshot {path:?}: {e}\n{err}"));
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 1_000,
        "{path:?} is not a PNG"
    );
}
