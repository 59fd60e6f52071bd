//! `errbudget check`: every problem as `file:line:column: message`, exit 1;
//! a valid config exits 0. Expected lines are found by searching the
//! fixture for the offending text, so editing a fixture cannot silently
//! shift them.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::fixtures::{slo, spec};
use crate::harness::{errbudget_bin, run_bounded, Workspace};

fn check(args: &[&Path], with_config: bool) -> (Option<i32>, String) {
    let mut cmd = Command::new(errbudget_bin());
    cmd.arg("check");
    if with_config {
        cmd.arg("--config.file");
    }
    cmd.args(args);
    let (code, out, err) = run_bounded(&mut cmd, Duration::from_secs(60));
    (code, format!("{out}{err}"))
}

/// 1-based line of the first line containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("fixture has no {needle:?}"))
        + 1
}

/// `(file, line, column, message)` of every `file:line:column: message`.
fn diagnostics(out: &str) -> Vec<(String, usize, usize, String)> {
    out.lines()
        .filter_map(|l| {
            let mut parts = l.splitn(4, ':');
            let file = parts.next()?.to_string();
            let line = parts.next()?.trim().parse().ok()?;
            let col = parts.next()?.trim().parse().ok()?;
            let msg = parts.next()?.trim().to_string();
            Some((file, line, col, msg))
        })
        .collect()
}

fn assert_reported(
    diags: &[(String, usize, usize, String)],
    file: &str,
    line: usize,
    what: &str,
    out: &str,
) {
    assert!(
        diags
            .iter()
            .any(|(f, l, c, m)| f.ends_with(file) && *l == line && *c >= 1 && !m.is_empty()),
        "no `{file}:{line}:<col>: ...` diagnostic for {what}; output:\n{out}"
    );
}

fn valid_spec() -> String {
    spec(
        "steady",
        "sre",
        &[slo("availability", "99.9", "steady", false)],
    )
}

#[test]
fn valid_config_exits_0() {
    let ws = Workspace::new();
    let cfg = ws.config("http://127.0.0.1:9", "30s", &[("ok.yaml", &valid_spec())]);
    let (code, out) = check(&[&cfg], true);
    assert_eq!(code, Some(0), "{out}");
}

/// Three independent problems in three SLOs of one file: all reported.
#[test]
fn several_errors_each_with_position() {
    let mut bad_objective = slo("bad-objective", "120", "steady", false);
    bad_objective.period = None;
    let mut bad_promql = slo("bad-promql", "99.9", "steady", false);
    bad_promql.error_query = "sum(rate(http_requests_total{code=\"500\"}[{{.window}}])".into();
    let mut bad_period = slo("bad-period", "99.9", "steady", false);
    bad_period.period = Some("30x");
    let text = spec("steady", "sre", &[bad_objective, bad_promql, bad_period]);
    let ws = Workspace::new();
    let cfg = ws.config("http://127.0.0.1:9", "30s", &[("bad.yaml", &text)]);
    let (code, out) = check(&[&cfg], true);
    assert_eq!(code, Some(1), "{out}");
    let d = diagnostics(&out);
    assert_reported(
        &d,
        "bad.yaml",
        line_of(&text, "objective: 120"),
        "objective 120",
        &out,
    );
    assert_reported(
        &d,
        "bad.yaml",
        line_of(&text, "error_query: 'sum(rate("),
        "unbalanced PromQL",
        &out,
    );
    assert_reported(
        &d,
        "bad.yaml",
        line_of(&text, "period: 30x"),
        "period 30x",
        &out,
    );
}

/// An unknown key (typo) is an error at the key, naming it.
#[test]
fn unknown_key_is_an_error() {
    let text = valid_spec().replace("objective:", "objectve:");
    let ws = Workspace::new();
    let cfg = ws.config("http://127.0.0.1:9", "30s", &[("typo.yaml", &text)]);
    let (code, out) = check(&[&cfg], true);
    assert_eq!(code, Some(1), "{out}");
    let d = diagnostics(&out);
    assert_reported(
        &d,
        "typo.yaml",
        line_of(&text, "objectve:"),
        "unknown key",
        &out,
    );
    assert!(out.contains("objectve"), "message names the key: {out}");
}

/// `check SPEC...`: each file's problems are reported under its own name.
#[test]
fn several_spec_files() {
    let ws = Workspace::new();
    let a = valid_spec().replace("objective: 99.9", "objective: 0");
    let b = valid_spec().replace("objective: 99.9", "objective: 100");
    std::fs::write(ws.path("one.yaml"), &a).expect("write");
    std::fs::write(ws.path("two.yaml"), &b).expect("write");
    let (code, out) = check(&[&ws.path("one.yaml"), &ws.path("two.yaml")], false);
    assert_eq!(code, Some(1), "{out}");
    let d = diagnostics(&out);
    assert_reported(
        &d,
        "one.yaml",
        line_of(&a, "objective: 0"),
        "objective 0",
        &out,
    );
    assert_reported(
        &d,
        "two.yaml",
        line_of(&b, "objective: 100"),
        "objective 100",
        &out,
    );
}

/// The web config named by `web.config_file` is checked too, at its own
/// positions, so a bad one is found before `run` refuses to start.
#[test]
fn web_config_is_checked() {
    let ws = Workspace::new();
    let cfg = ws.config_with(
        "http://127.0.0.1:9",
        "30s",
        "web:\n  config_file: web.yml\n",
        &[("ok.yaml", &valid_spec())],
    );
    // Syntax and values first: a password that is not a bcrypt hash.
    let web = "basic_auth_users:\n  alice: not-a-bcrypt-hash\n";
    std::fs::write(ws.path("web.yml"), web).expect("write web.yml");
    let (code, out) = check(&[&cfg], true);
    assert_eq!(code, Some(1), "{out}");
    let d = diagnostics(&out);
    assert_reported(&d, "web.yml", line_of(web, "alice:"), "bad hash", &out);

    // Then what `run` would load: a certificate that is not there.
    let web = "tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n";
    std::fs::write(ws.path("web.yml"), web).expect("write web.yml");
    let (code, out) = check(&[&cfg], true);
    assert_eq!(code, Some(1), "{out}");
    let d = diagnostics(&out);
    assert_reported(
        &d,
        "web.yml",
        line_of(web, "cert_file:"),
        "missing cert",
        &out,
    );

    // A web config that cannot be read at all is named too.
    std::fs::remove_file(ws.path("web.yml")).expect("remove web.yml");
    let (code, out) = check(&[&cfg], true);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("web.yml") && out.contains("cannot read the web config"),
        "{out}"
    );
}
