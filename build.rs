//! Build facts for `--version` and `errbudget_build_info`, as Prometheus
//! components report them: revision and branch from git, who built it
//! and when, and the compiler. A build outside a git checkout (a source
//! tarball) reports `unknown`; `SOURCE_DATE_EPOCH` fixes the date for
//! reproducible builds.
//!
//! The build date is taken when this script runs, which cargo does again
//! only when the checked-out commit changes, so incremental builds stay
//! incremental.

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn main() {
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-env-changed=ERRBUDGET_BUILD_USER");
    watch_git();
    let revision = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let branch = git(&["rev-parse", "--abbrev-ref", "HEAD"]).unwrap_or_else(|| "unknown".into());
    set("ERRBUDGET_REVISION", &revision);
    set("ERRBUDGET_BRANCH", &branch);
    set("ERRBUDGET_BUILD_USER", &build_user());
    set("ERRBUDGET_BUILD_DATE", &build_date());
    set("ERRBUDGET_RUST_VERSION", &rust_version());
    set(
        "ERRBUDGET_TARGET",
        &std::env::var("TARGET").unwrap_or_else(|_| "unknown".into()),
    );
}

fn set(key: &str, value: &str) {
    // One line per value: a newline would end the directive.
    let value = value.replace(['\n', '\r'], " ");
    println!("cargo:rustc-env={key}={value}");
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

/// Re-run when HEAD moves: HEAD itself (branch switch) and the ref it
/// points at (new commit). Worktrees keep HEAD in their own git dir and
/// refs in the common one.
fn watch_git() {
    let Some(git_dir) = git(&["rev-parse", "--git-dir"]) else {
        return;
    };
    println!("cargo:rerun-if-changed={git_dir}/HEAD");
    let common = git(&["rev-parse", "--git-common-dir"]).unwrap_or_else(|| git_dir.clone());
    if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
        println!("cargo:rerun-if-changed={common}/{r}");
    }
    println!("cargo:rerun-if-changed={common}/packed-refs");
}

fn build_user() -> String {
    if let Ok(u) = std::env::var("ERRBUDGET_BUILD_USER") {
        return u;
    }
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .or_else(|| {
            let out = Command::new("id").arg("-un").output().ok()?;
            Some(String::from_utf8(out.stdout).ok()?.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    format!("{user}@{host}")
}

/// `20261202-07:40:00`, the layout Prometheus prints.
fn build_date() -> String {
    let t = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(|s| UNIX_EPOCH + Duration::from_secs(s))
        .unwrap_or_else(SystemTime::now);
    // 2026-12-02T07:40:00Z
    let rfc = humantime::format_rfc3339_seconds(t).to_string();
    let (date, time) = rfc.split_once('T').unwrap_or((&rfc, ""));
    format!("{}-{}", date.replace('-', ""), time.trim_end_matches('Z'))
}

fn rust_version() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        // "rustc 1.95.0 (59807616e 2026-04-14)" → "1.95.0"
        .and_then(|s| s.split_whitespace().nth(1).map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}
