//! Where the server binaries under test live. Debian bookworm's packages by
//! default; `scripts/test.sh` points these variables at current builds
//! (Debian sid, unpacked by `scripts/backends.sh`) for its second pass, so the
//! same tests run against both.

use std::path::Path;
use std::sync::OnceLock;

fn from_env(cell: &'static OnceLock<String>, var: &str, default: &str) -> &'static str {
    cell.get_or_init(|| std::env::var(var).unwrap_or_else(|_| default.to_string()))
}

macro_rules! bin {
    ($fn:ident, $var:literal, $default:literal) => {
        #[allow(dead_code)]
        pub fn $fn() -> &'static str {
            static CELL: OnceLock<String> = OnceLock::new();
            from_env(&CELL, $var, $default)
        }
    };
}

bin!(prometheus, "ERRBUDGET_PROMETHEUS", "/usr/bin/prometheus");
bin!(promtool, "ERRBUDGET_PROMTOOL", "/usr/bin/promtool");
bin!(
    alertmanager,
    "ERRBUDGET_ALERTMANAGER",
    "/usr/bin/prometheus-alertmanager"
);
bin!(amtool, "ERRBUDGET_AMTOOL", "/usr/bin/amtool");
bin!(
    victoria_metrics,
    "ERRBUDGET_VICTORIA_METRICS",
    "/usr/bin/victoria-metrics"
);

/// Which build set is under test, for failure messages.
#[allow(dead_code)]
pub fn backends() -> String {
    std::env::var("ERRBUDGET_BACKENDS").unwrap_or_else(|_| "system packages".into())
}

/// Fails (never skips) when a binary is missing, saying how to get it.
#[allow(dead_code)]
pub fn require(bin: &str, package: &str) {
    let hint = if bin.starts_with("/usr/bin/") {
        format!("install it with `apt-get install -y {package}`")
    } else {
        "fetch it with `scripts/backends.sh`".to_string()
    };
    assert!(Path::new(bin).exists(), "{bin} not found: {hint}");
}
