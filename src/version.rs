//! What this binary is, from the build script: the `--version` text and
//! the labels of `errbudget_build_info`, the same facts in both, laid out
//! as Prometheus components print them.

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const REVISION: &str = env!("ERRBUDGET_REVISION");
pub const BRANCH: &str = env!("ERRBUDGET_BRANCH");
pub const BUILD_USER: &str = env!("ERRBUDGET_BUILD_USER");
pub const BUILD_DATE: &str = env!("ERRBUDGET_BUILD_DATE");
pub const RUST_VERSION: &str = env!("ERRBUDGET_RUST_VERSION");
pub const TARGET: &str = env!("ERRBUDGET_TARGET");

/// Label names and values of `errbudget_build_info`.
pub fn labels() -> [(&'static str, &'static str); 7] {
    [
        ("version", VERSION),
        ("revision", REVISION),
        ("branch", BRANCH),
        ("build_user", BUILD_USER),
        ("build_date", BUILD_DATE),
        ("rustversion", RUST_VERSION),
        ("target", TARGET),
    ]
}

/// The `--version` text, e.g.
/// ```text
/// errbudget, version 0.1.0 (branch: main, revision: 4f1c…)
///   build user:       ci@builder
///   build date:       20261202-07:40:00
///   rust version:     1.95.0
///   platform:         x86_64-unknown-linux-gnu
/// ```
pub fn print() -> String {
    format!(
        "errbudget, version {VERSION} (branch: {BRANCH}, revision: {REVISION})\n  \
         build user:       {BUILD_USER}\n  \
         build date:       {BUILD_DATE}\n  \
         rust version:     {RUST_VERSION}\n  \
         platform:         {TARGET}\n"
    )
}

/// A short form for pages: `0.1.0 (4f1c2a9b0d3e)`.
pub fn short() -> String {
    let rev: String = REVISION.chars().take(12).collect();
    format!("{VERSION} ({rev})")
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_text_names_every_label_value() {
        let text = super::print();
        assert!(text.starts_with("errbudget, version "), "{text}");
        for (_, v) in super::labels() {
            assert!(text.contains(v), "{v} missing from {text}");
        }
    }
}
