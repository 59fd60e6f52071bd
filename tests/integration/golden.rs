//! Golden files for what errbudget generates: the rules of
//! `tests/golden/slos.yaml` (both formats), `/metrics` of a fixed world
//! (plain text, no `Accept` header), `eval --output json` of a fixed world
//! at a fixed instant, and every PromQL expression of the dashboards.
//! `ERRBUDGET_UPDATE_GOLDEN=1` rewrites them, so a change shows as a
//! reviewable diff. The rules are also linted and their alerting rules
//! unit-tested with promtool.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use saphyr::{LoadableYamlNode, Yaml};

use crate::harness::{self, promtool, run_bounded, Daemon, Prometheus};
use crate::recorded::generate;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Compares `actual` with the golden file `name`, or rewrites it when
/// `ERRBUDGET_UPDATE_GOLDEN=1`.
fn check_golden(name: &str, actual: &str) {
    let path = golden_dir().join(name);
    if std::env::var("ERRBUDGET_UPDATE_GOLDEN").as_deref() == Ok("1") {
        std::fs::write(&path, actual).expect("write golden file");
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    if want != actual {
        let diff: Vec<String> = want
            .lines()
            .zip(actual.lines())
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .take(10)
            .map(|(i, (a, b))| format!("line {}:\n- {a}\n+ {b}", i + 1))
            .collect();
        panic!(
            "{} differs from the output ({} vs {} lines); regenerate with \
             ERRBUDGET_UPDATE_GOLDEN=1 and review the diff:\n{}",
            path.display(),
            want.lines().count(),
            actual.lines().count(),
            diff.join("\n")
        );
    }
}

fn promtool_run(args: &[&str], stdin: Option<&str>) -> (Option<i32>, String) {
    harness::require(promtool());
    match stdin {
        None => {
            let (code, out, err) = run_bounded(
                Command::new(promtool())
                    .args(args)
                    .current_dir(env!("CARGO_MANIFEST_DIR")),
                Duration::from_secs(120),
            );
            (code, format!("{out}{err}"))
        }
        Some(body) => harness::promtool_with_stdin(args, body),
    }
}

#[test]
fn generated_rules_match_golden_files_and_pass_promtool_lint() {
    let cfg = golden_dir().join("errbudget.yaml");
    let plain = generate(&cfg, &[]);
    check_golden("rules.yaml", &plain);
    let cr = generate(
        &cfg,
        &[
            "--format",
            "prometheusrule",
            "--prometheusrule.label",
            "release=kube-prometheus-stack",
        ],
    );
    check_golden("prometheusrule.yaml", &cr);

    // The resource carries exactly the groups of the rule file.
    let a = Yaml::load_from_str(&plain).expect("rules YAML");
    let b = Yaml::load_from_str(&cr).expect("PrometheusRule YAML");
    assert_eq!(
        b[0]["apiVersion"].as_str(),
        Some("monitoring.coreos.com/v1")
    );
    assert_eq!(b[0]["kind"].as_str(), Some("PrometheusRule"));
    assert_eq!(a[0]["groups"], b[0]["spec"]["groups"]);

    let (code, out) = promtool_run(
        &[
            "check",
            "rules",
            "--lint=all",
            "--lint-fatal",
            "tests/golden/rules.yaml",
        ],
        None,
    );
    assert_eq!(code, Some(0), "promtool check rules:\n{out}");
}

#[test]
fn alerting_rules_pass_their_promtool_unit_tests() {
    let (code, out) = promtool_run(&["test", "rules", "tests/rules/alerts.test.yaml"], None);
    assert_eq!(
        code,
        Some(0),
        "promtool test rules ({}):\n{out}",
        crate::bins::backends()
    );
    assert!(out.contains("SUCCESS"), "{out}");
}

/// SLIs whose answers never change: constant rates through `or vector()`,
/// so every figure of the world is the same at any instant.
const FIXED_WORLD: &str = r#"version: "prometheus/v1"
service: "golden"
labels:
  team: "sre"
slos:
  - name: "constant-events"
    objective: 99.9
    description: "10 requests a second, 0.05 of them failing"
    sli:
      events:
        error_query: 'sum(rate(golden_absent_total[{{.window}}])) or vector(0.05)'
        total_query: 'sum(rate(golden_absent_total[{{.window}}])) or vector(10)'
  - name: "constant-ratio"
    objective: 99
    description: "a steady 2% error ratio"
    sli:
      raw:
        error_ratio_query: 'avg(avg_over_time(golden_absent_ratio[{{.window}}])) or vector(0.02)'
  - name: "not-a-number"
    objective: 99.5
    description: "a query answering NaN: an error of this SLO"
    sli:
      events:
        error_query: 'sum(rate(golden_absent_total[{{.window}}])) or vector(0)'
        total_query: 'sum(rate(golden_absent_total[{{.window}}])) or vector(0) / vector(0)'
"#;

/// Series whose values depend on the clock or on how many cycles ran.
fn volatile(name: &str) -> bool {
    (name.starts_with("errbudget_")
        && name != "errbudget_build_info"
        && name != "errbudget_backend_info"
        && name != "errbudget_config_last_reload_successful")
        || name == "slo_last_evaluation_timestamp_seconds"
        || name.starts_with("process_")
}

/// The exposition with volatile values replaced by `<volatile>` and the
/// others rounded to 12 significant digits.
fn normalise(body: &str) -> String {
    let mut out = String::new();
    for line in body.lines() {
        if line.starts_with('#') || line.is_empty() {
            out.push_str(line);
        } else {
            let name = line
                .split(['{', ' '])
                .next()
                .unwrap_or_default()
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            match line.rsplit_once(' ') {
                // Which backend was detected depends on the build under
                // test; the build's revision and date on the commit built.
                Some((_, value))
                    if name == "errbudget_backend_info" || name == "errbudget_build_info" =>
                {
                    out.push_str(&format!("{name}{{<the build under test>}} {value}"));
                }
                Some((series, _)) if volatile(name) => {
                    out.push_str(series);
                    out.push_str(" <volatile>");
                }
                // Sums of pro-rata bucket shares differ in the last bits
                // from one instant to the next: 12 significant digits.
                Some((series, value)) if value.parse::<f64>().is_ok_and(f64::is_finite) => {
                    let v: f64 = value.parse().unwrap_or_default();
                    let rounded: f64 = format!("{v:.11e}").parse().unwrap_or(v);
                    out.push_str(&format!("{series} {rounded}"));
                }
                _ => out.push_str(line),
            }
        }
        out.push('\n');
    }
    out
}

#[test]
fn metrics_of_a_fixed_world_match_the_golden_file() {
    let prom = Prometheus::start_with(None, "global:\n  scrape_interval: 1m\nscrape_configs: []\n");
    let ws = harness::Workspace::new();
    let cfg = ws.config(&prom.url(), "1s", &[("golden.yaml", FIXED_WORLD)]);
    let d = Daemon::start(&cfg);
    let ready = harness::poll(Duration::from_secs(60), || {
        (d.get("/-/ready").status == 200).then_some(())
    });
    assert!(ready.is_some(), "not ready\n{}", d.guard.log_tail());
    let m = d.get("/metrics");
    assert_eq!(m.status, 200);
    let (code, out) = promtool_run(&["check", "metrics"], Some(&m.body));
    assert!(
        code == Some(0) && out.trim().is_empty(),
        "promtool check metrics: {code:?}\n{out}"
    );
    check_golden("metrics.txt", &normalise(&m.body));
}

/// The instant `eval` is asked about (2026-10-01T00:00:00Z).
const EVAL_AT: i64 = crate::events::T0;

/// Counters for the 30 days before `EVAL_AT` and a day more, one sample a
/// minute at 30 s past it, so that the golden file holds on both backend
/// passes: no sample sits on a window's edge, so Prometheus 2.x (closed
/// ranges) and 3.x (left-open) read the same samples, and no window reaches
/// back past the first sample, where the two extrapolate differently in
/// the last digits. 600 requests a minute, 3 of them failing, 60 in the
/// last 40 minutes: the short windows burn, the period does not.
fn generated_world() -> String {
    let minutes = 31 * 24 * 60;
    let start = EVAL_AT - minutes * 60 + 30;
    let mut ok = String::new();
    let mut bad = String::new();
    let (mut good_n, mut bad_n) = (0u64, 0u64);
    for i in 0..minutes {
        let t = start + i * 60;
        let failing = if EVAL_AT - t < 40 * 60 { 60 } else { 3 };
        good_n += 600 - failing;
        bad_n += failing;
        ok.push_str(&format!(
            "golden_requests_total{{service=\"generated\",code=\"200\"}} {good_n} {t}\n"
        ));
        bad.push_str(&format!(
            "golden_requests_total{{service=\"generated\",code=\"500\"}} {bad_n} {t}\n"
        ));
    }
    format!("# TYPE golden_requests counter\n{ok}{bad}# EOF\n")
}

/// An SLO over the generated counters, next to the constant ones of
/// `FIXED_WORLD`.
const GENERATED_SLO: &str = r#"version: "prometheus/v1"
service: "generated"
labels:
  team: "sre"
slos:
  - name: "availability"
    objective: 99.5
    description: "requests not failing"
    sli:
      events:
        error_query: 'sum(rate(golden_requests_total{service="generated",code="500"}[{{.window}}]))'
        total_query: 'sum(rate(golden_requests_total{service="generated"}[{{.window}}]))'
"#;

#[test]
fn eval_of_a_fixed_world_matches_the_golden_file() {
    let (_work, blocks) = harness::backfill(&[generated_world()], true);
    let prom = Prometheus::start(&blocks);
    let ws = harness::Workspace::new();
    let cfg = ws.config(
        &prom.url(),
        "1m",
        &[
            ("golden.yaml", FIXED_WORLD),
            ("generated.yaml", GENERATED_SLO),
        ],
    );
    let (code, out, err) = harness::eval(&cfg, EVAL_AT);
    // The NaN SLO of FIXED_WORLD fails on purpose, and one failed SLO
    // makes eval exit 1; its figures are in the document all the same.
    assert_eq!(
        code,
        Some(1),
        "eval exit code\nstdout:\n{out}\nstderr:\n{err}"
    );
    let mut doc: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("eval JSON: {e}\n{out}\n{err}"));
    // Masked, as the only field no world can pin: an error quotes the query
    // as spelt for the detected backend (`[5m:15s]` on Prometheus 2.x,
    // `[5m1ms:15s]` on 3.x), and both backend passes share this file.
    for slo in doc["slos"].as_array_mut().into_iter().flatten() {
        if let Some(e) = slo["error"].as_str() {
            let masked = match e
                .strip_prefix("query \"")
                .and_then(|r| r.split_once("\" returned"))
            {
                Some((_, rest)) => format!("query <as spelt for the backend> returned{rest}"),
                None => e.to_string(),
            };
            slo["error"] = masked.into();
        }
    }
    let text = serde_json::to_string_pretty(&rounded(doc)).expect("JSON");
    check_golden("eval.json", &format!("{text}\n"));

    // `backtest` over the incident's last two hours, on the same world:
    // the episodes the policy would have paged with, and the budget after.
    let (code, out, err) = run_bounded(
        Command::new(harness::errbudget_bin())
            .arg("backtest")
            .arg("--config.file")
            .arg(&cfg)
            .args(["--from", &(EVAL_AT - 2 * 3600).to_string()])
            .args(["--to", &EVAL_AT.to_string()])
            .args(["--step", "5m", "--output", "json"]),
        Duration::from_secs(120),
    );
    // The NaN SLO fails at every step, as in eval, so the replay says so.
    assert_eq!(
        code,
        Some(1),
        "backtest exit code\nstdout:\n{out}\nstderr:\n{err}"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("backtest JSON: {e}\n{out}\n{err}"));
    let text = serde_json::to_string_pretty(&rounded(doc)).expect("JSON");
    check_golden("backtest.json", &format!("{text}\n"));
}

/// `convert` of the golden specs: errbudget's own format with every
/// derived value written out. No backend is involved. The spec is named
/// relative to the checkout, as the output quotes its path: the golden
/// file must not depend on where the repository sits.
#[test]
fn convert_of_the_golden_specs_matches_the_golden_file() {
    let (code, out, err) = run_bounded(
        Command::new(harness::errbudget_bin())
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .arg("convert")
            .arg("tests/golden/slos.yaml"),
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(0), "convert failed:\n{err}");
    check_golden("convert.yaml", &out);
}

/// Every non-integer number rounded to 12 significant digits, as in
/// `normalise`: the backends' summation order differs in the last bits.
fn rounded(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            let f = n.as_f64().unwrap_or_default();
            let r: f64 = format!("{f:.11e}").parse().unwrap_or(f);
            serde_json::Number::from_f64(r).map_or(Value::Number(n), Value::Number)
        }
        Value::Array(a) => Value::Array(a.into_iter().map(rounded).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, rounded(v))).collect()),
        other => other,
    }
}

/// Every PromQL expression of the dashboards as `file<TAB>where<TAB>expr`
/// lines, sorted: `where` is the panel's title (of its row too, for a
/// panel inside a collapsed row), `variable NAME` for a query variable
/// (its `label_values(…)` as Grafana stores it) or `annotation NAME`.
/// Every file under `dashboards/` is read, not a list of them, so a new
/// dashboard shows up here too.
fn dashboard_queries() -> String {
    let pattern = format!("{}/dashboards/*.json", env!("CARGO_MANIFEST_DIR"));
    let mut lines = vec![];
    for path in glob::glob(&pattern).expect("dashboards glob").flatten() {
        let file = path
            .file_name()
            .and_then(|f| f.to_str())
            .expect("a UTF-8 file name")
            .to_string();
        let d = crate::dashboards::load(&file);
        let mut line = |at: String, expr: &str| {
            // One line per query, and the tab stays a separator: a
            // multi-line expression keeps its breaks as `\n`, a tab as `\t`.
            let expr = expr.replace('\n', "\\n").replace('\t', "\\t");
            lines.push(format!("{file}\t{at}\t{expr}"));
        };
        let mut panels: Vec<(String, &serde_json::Value)> = vec![];
        for p in d["panels"].as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or_default().to_string();
            for inner in p["panels"].as_array().into_iter().flatten() {
                let t = inner["title"].as_str().unwrap_or_default();
                panels.push((format!("{title} / {t}"), inner));
            }
            panels.push((title, p));
        }
        for (title, p) in panels {
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = t["expr"].as_str() {
                    line(title.clone(), expr);
                }
            }
        }
        for v in d["templating"]["list"].as_array().into_iter().flatten() {
            if v["type"] != "query" {
                continue;
            }
            let query = v["query"].as_str().or_else(|| v["query"]["query"].as_str());
            if let Some(q) = query {
                line(
                    format!("variable {}", v["name"].as_str().unwrap_or_default()),
                    q,
                );
            }
        }
        for a in d["annotations"]["list"].as_array().into_iter().flatten() {
            if let Some(expr) = a["expr"].as_str() {
                line(
                    format!("annotation {}", a["name"].as_str().unwrap_or_default()),
                    expr,
                );
            }
        }
    }
    assert!(!lines.is_empty(), "no queries found under {pattern}");
    lines.sort();
    lines.iter().map(|l| format!("{l}\n")).collect()
}

#[test]
fn dashboard_queries_match_the_golden_file() {
    check_golden("dashboard_queries.txt", &dashboard_queries());
}
