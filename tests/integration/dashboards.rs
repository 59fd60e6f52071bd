//! The Grafana dashboards in `dashboards/`: their JSON against Grafana's
//! dashboard model, their queries against a real Prometheus that scrapes a
//! running errbudget, and a picture of each panel grid (Grafana itself does
//! not run here).
//!
//! The offline schema check is in `schema.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use crate::chromium;
use crate::http;
use crate::interface::{documented_series, is_sample_of};
use crate::schema::schema_errors;
use crate::scraped;

pub const FILES: [&str; 2] = ["errbudget-overview.json", "errbudget-slo.json"];

pub fn load(file: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("dashboards")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file} is not JSON: {e}"))
}

pub fn panels(d: &Value) -> Vec<&Value> {
    d["panels"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

/// Metric names of every vector selector in `expr`.
fn metric_names(expr: &str) -> Result<BTreeSet<String>, String> {
    use promql_parser::parser::Expr;
    fn walk(e: &Expr, out: &mut BTreeSet<String>) {
        match e {
            Expr::Aggregate(a) => {
                walk(&a.expr, out);
                if let Some(p) = &a.param {
                    walk(p, out);
                }
            }
            Expr::Unary(u) => walk(&u.expr, out),
            Expr::Binary(b) => {
                walk(&b.lhs, out);
                walk(&b.rhs, out);
            }
            Expr::Paren(p) => walk(&p.expr, out),
            Expr::Subquery(s) => walk(&s.expr, out),
            Expr::VectorSelector(v) => selector(v, out),
            Expr::MatrixSelector(m) => selector(&m.vs, out),
            Expr::Call(c) => c.args.args.iter().for_each(|a| walk(a, out)),
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
        }
    }
    fn selector(v: &promql_parser::parser::VectorSelector, out: &mut BTreeSet<String>) {
        match &v.name {
            Some(n) => {
                out.insert(n.clone());
            }
            // A selector without a name (`{__name__=~".+"}`) reads any
            // series: record it so the check fails.
            None => {
                out.insert(format!("{{unnamed selector {v}}}"));
            }
        }
    }
    let e = promql_parser::parser::parse(expr)?;
    let mut out = BTreeSet::new();
    walk(&e, &mut out);
    Ok(out)
}

/// Concrete values for the variables a panel query may use, as Grafana
/// would substitute them for the given time range.
pub fn expand(expr: &str, vars: &BTreeMap<&str, String>) -> String {
    let mut names: Vec<&&str> = vars.keys().collect();
    // Longest first, so `$__range` never eats the start of `$__rate_interval`.
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    let mut out = expr.to_string();
    for n in names {
        out = out.replace(&format!("${{{n}}}"), &vars[*n]);
        out = out.replace(&format!("${n}"), &vars[*n]);
    }
    out
}

fn static_vars() -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("service", "burning".to_string()),
        ("slo", "availability".to_string()),
        ("team", ".*".to_string()),
        ("__range", "1h".to_string()),
        ("__rate_interval", "1m".to_string()),
        ("__interval", "15s".to_string()),
        ("__from", "1700000000000".to_string()),
        ("__to", "1700003600000".to_string()),
    ])
}

#[test]
fn dashboards_parse_with_stable_uids_and_unique_panel_ids() {
    for (file, uid) in FILES.iter().zip(["errbudget-overview", "errbudget-slo"]) {
        let d = load(file);
        assert_eq!(
            d["uid"], uid,
            "{file}: uid changed; links and bookmarks use it"
        );
        let ids: Vec<i64> = panels(&d).iter().filter_map(|p| p["id"].as_i64()).collect();
        let unique: BTreeSet<_> = ids.iter().collect();
        assert_eq!(
            ids.len(),
            panels(&d).len(),
            "{file}: a panel without an integer id"
        );
        assert_eq!(
            unique.len(),
            ids.len(),
            "{file}: duplicate panel ids {ids:?}"
        );
        assert!(ids.len() >= 8, "{file}: only {} panels", ids.len());
    }
}

#[test]
fn dashboards_follow_grafanas_published_schema() {
    for file in FILES {
        let errs = schema_errors(&load(file));
        assert!(errs.is_empty(), "{file}:\n{}", errs.join("\n"));
    }
    // The check itself catches what it claims to.
    let mut bad = load(FILES[0]);
    bad["panels"][1]["gridPos"] = serde_json::json!({"h": 4, "w": 4, "x": 4, "y": 0});
    bad["panels"][5]["gridPos"] = serde_json::json!({"h": 4, "w": 20, "x": 5, "y": 40});
    bad["panels"][2]["id"] = bad["panels"][3]["id"].clone();
    bad["uid"] = "x".into();
    bad["panels"][0]["targets"][0]["exprr"] = "typo".into();
    bad["templating"]["list"][1]["type"] = "dropdown".into();
    let errs = schema_errors(&bad).join("\n");
    for expect in [
        "out of the 24-column grid",
        "overlaps panel",
        "not unique",
        "uid \"x\"",
        "property \"exprr\" is not in the model",
        "\"dropdown\" not one of",
    ] {
        assert!(errs.contains(expect), "{expect:?} not reported:\n{errs}");
    }
}

#[test]
fn queries_use_only_contract_series() {
    let vars = static_vars();
    let documented = documented_series();
    for file in FILES {
        let d = load(file);
        let mut exprs: Vec<String> = vec![];
        for p in panels(&d) {
            for t in p["targets"].as_array().into_iter().flatten() {
                exprs.push(t["expr"].as_str().unwrap_or_default().to_string());
            }
        }
        for v in d["templating"]["list"].as_array().into_iter().flatten() {
            // label_values(SELECTOR, label): the selector is PromQL.
            if let Some(q) = v["query"]
                .as_str()
                .and_then(|q| q.strip_prefix("label_values("))
            {
                let selector = q.rsplit_once(',').map_or(q, |(s, _)| s);
                exprs.push(selector.to_string());
            }
        }
        for a in d["annotations"]["list"].as_array().into_iter().flatten() {
            if let Some(expr) = a["expr"].as_str() {
                exprs.push(expr.to_string());
            }
        }
        for expr in exprs {
            let expanded = expand(&expr, &vars);
            assert!(
                !expanded.contains('$'),
                "{file}: unexpanded variable in {expanded}"
            );
            let names =
                metric_names(&expanded).unwrap_or_else(|e| panic!("{file}: {expanded}: {e}"));
            assert!(!names.is_empty(), "{file}: {expanded} reads no series");
            for n in names {
                assert!(
                    documented.iter().any(|(d, kind)| is_sample_of(&n, d, kind)),
                    "{file}: {expanded} reads {n}, which docs/interface.md does not document"
                );
            }
        }
    }
}

#[test]
fn provisioning_files_load_the_dashboards_from_a_prometheus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards/provisioning");
    let read =
        |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    let providers = read("dashboards.yaml");
    for needle in ["apiVersion: 1", "providers:", "type: file", "path: "] {
        assert!(
            providers.contains(needle),
            "dashboards.yaml lacks {needle:?}"
        );
    }
    let sources = read("datasources.yaml");
    for needle in [
        "apiVersion: 1",
        "datasources:",
        "type: prometheus",
        "isDefault: true",
    ] {
        assert!(
            sources.contains(needle),
            "datasources.yaml lacks {needle:?}"
        );
    }
}

/// `label_values(SELECTOR, LABEL)` answered as Grafana does, through the
/// label values API.
fn label_values(w: &scraped::World, query: &str) -> Vec<String> {
    let inner = query
        .strip_prefix("label_values(")
        .and_then(|q| q.strip_suffix(')'))
        .unwrap_or_else(|| panic!("not a label_values query: {query}"));
    let (selector, label) = inner
        .rsplit_once(',')
        .expect("label_values(selector, label)");
    let path = format!(
        "/api/v1/label/{}/values?match[]={}",
        label.trim(),
        http::encode(selector.trim())
    );
    let r = http::get(w.prom.addr, &path).expect("label values");
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    let v: Value = serde_json::from_str(&r.body).expect("JSON");
    v["data"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Panels of series only a calendar SLO has. The SLOs of the scraped
/// world are rolling: there these panels must be empty (Grafana shows
/// their `noValue`); the compliance test runs them on a calendar month.
pub const CALENDAR_ONLY: &[&str] = &["Period resets"];

#[test]
fn every_panel_query_returns_data_from_prometheus_scraping_errbudget() {
    let w = scraped::start();
    let now = scraped::unix_now();
    let mut vars = static_vars();
    vars.insert("__from", ((now - 3_600) * 1_000).to_string());
    vars.insert("__to", (now * 1_000).to_string());

    let mut failures = vec![];
    let mut ran = 0;
    for file in FILES {
        let d = load(file);
        // Variables first: each must offer the values the panels are run
        // with.
        for v in d["templating"]["list"].as_array().into_iter().flatten() {
            let Some(q) = v["query"]
                .as_str()
                .filter(|q| q.starts_with("label_values("))
            else {
                continue;
            };
            let values = label_values(&w, &expand(q, &vars));
            let want = match v["name"].as_str() {
                Some("service") => vec!["burning", "healthy"],
                Some("team") => vec!["payments"],
                Some("slo") => vec!["availability"],
                other => panic!("{file}: unexpected variable {other:?}"),
            };
            for x in want {
                if !values.iter().any(|v| v == x) {
                    failures.push(format!("{file}: variable {q} lacks {x:?}: {values:?}"));
                }
            }
        }
        for p in panels(&d) {
            for t in p["targets"].as_array().into_iter().flatten() {
                let expr = expand(t["expr"].as_str().unwrap_or_default(), &vars);
                let instant = t["instant"].as_bool() == Some(true);
                let (path, body) = if instant {
                    (
                        "/api/v1/query",
                        format!("query={}&time={now}", http::encode(&expr)),
                    )
                } else {
                    (
                        "/api/v1/query_range",
                        format!(
                            "query={}&start={}&end={now}&step=5",
                            http::encode(&expr),
                            now - 120
                        ),
                    )
                };
                ran += 1;
                let what = format!(
                    "{file} panel {} {:?} {}: {expr}",
                    p["id"], p["title"], t["refId"]
                );
                let r = match http::post(w.prom.addr, path, &body) {
                    Ok(r) => r,
                    Err(e) => {
                        failures.push(format!("{what}: {e}"));
                        continue;
                    }
                };
                let v: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
                let result = v["data"]["result"].as_array().cloned().unwrap_or_default();
                let points = result.iter().any(|s| {
                    s.get("value").is_some()
                        || s["values"].as_array().is_some_and(|a| !a.is_empty())
                });
                let calendar_only = p["title"]
                    .as_str()
                    .is_some_and(|t| CALENDAR_ONLY.contains(&t));
                if r.status != 200 || v["status"] != "success" {
                    failures.push(format!("{what}: error {} {}", r.status, r.body));
                } else if calendar_only {
                    if points {
                        failures.push(format!("{what}: data for a rolling SLO: {}", r.body));
                    }
                    if p["fieldConfig"]["defaults"]["noValue"].as_str().is_none() {
                        failures.push(format!("{what}: no noValue to show for a rolling SLO"));
                    }
                } else if result.is_empty() || !points {
                    failures.push(format!("{what}: no data"));
                }
            }
        }
    }
    assert!(ran >= 30, "only {ran} queries ran");
    assert!(
        failures.is_empty(),
        "{} of {ran} queries failed:\n{}\n{}",
        failures.len(),
        failures.join("\n"),
        w.daemon.guard.log_tail()
    );
}

/// An HTML picture of a dashboard's panel grid: each panel where its
/// gridPos puts it, with its title, type and first query.
fn grid_html(d: &Value) -> String {
    const COL: i64 = 50;
    const ROW: i64 = 30;
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let mut cells = String::new();
    let mut bottom = 0;
    for p in panels(d) {
        let g = &p["gridPos"];
        let (x, y, w, h) = (
            g["x"].as_i64().unwrap_or(0),
            g["y"].as_i64().unwrap_or(0),
            g["w"].as_i64().unwrap_or(1),
            g["h"].as_i64().unwrap_or(1),
        );
        bottom = bottom.max(y + h);
        let kind = p["type"].as_str().unwrap_or("");
        let colour = match kind {
            "stat" => "#e3f2fd",
            "table" => "#f3e5f5",
            "timeseries" => "#e8f5e9",
            "state-timeline" => "#fff3e0",
            _ => "#fce4ec",
        };
        let queries: Vec<String> = p["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| esc(t["expr"].as_str().unwrap_or("")))
            .collect();
        cells.push_str(&format!(
            "<div class=p style=\"left:{}px;top:{}px;width:{}px;height:{}px;background:{colour}\">\
<b>{}</b><i>{kind} · {} quer{}</i><code>{}</code></div>",
            x * COL,
            y * ROW,
            w * COL - 6,
            h * ROW - 6,
            esc(p["title"].as_str().unwrap_or("")),
            queries.len(),
            if queries.len() == 1 { "y" } else { "ies" },
            queries.first().cloned().unwrap_or_default()
        ));
    }
    let vars: Vec<String> = d["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| esc(v["label"].as_str().or(v["name"].as_str()).unwrap_or("")))
        .collect();
    format!(
        "<!doctype html><meta charset=utf-8><style>body{{margin:8px;font:13px sans-serif}}\
.g{{position:relative;width:{}px;height:{}px}}.p{{position:absolute;box-sizing:border-box;border:1px solid #9e9e9e;\
border-radius:3px;padding:6px;overflow:hidden}}.p b{{display:block}}.p i{{display:block;color:#555;font-size:11px}}\
.p code{{display:block;font-size:10px;color:#333;margin-top:4px;word-break:break-all}}</style>\
<h3 style=\"margin:4px 0\">{} <small style=\"color:#666\">(uid {}; variables: {})</small></h3><div class=g>{cells}</div>",
        24 * COL,
        bottom * ROW,
        esc(d["title"].as_str().unwrap_or("")),
        esc(d["uid"].as_str().unwrap_or("")),
        vars.join(", ")
    )
}

#[test]
fn panel_grid_pictures() {
    chromium::require();
    let dir = chromium::artifacts();
    for (file, name) in FILES.iter().zip(["dashboard-overview", "dashboard-slo"]) {
        let d = load(file);
        let html = dir.join(format!("{name}.html"));
        std::fs::write(&html, grid_html(&d)).expect("write grid html");
        let rows = panels(&d)
            .iter()
            .map(|p| {
                p["gridPos"]["y"].as_i64().unwrap_or(0) + p["gridPos"]["h"].as_i64().unwrap_or(0)
            })
            .max()
            .unwrap_or(0);
        let png = dir.join(format!("{name}.png"));
        chromium::screenshot(
            &format!("file://{}", html.display()),
            &png,
            1220,
            (rows * 30 + 60) as u32,
        );
        chromium::publish(&png, &format!("{name}.png"));
    }
}

/// Burn-rate thresholds come from each SLO's `slo_alert_burn_rate_threshold`
/// (28-day and custom policies have other factors than 14.4 and 6), and
/// every burn-rate figure carries a unit.
#[test]
fn burn_rates_have_a_unit_and_thresholds_from_the_policy_series() {
    for file in FILES {
        let d = load(file);
        let text = serde_json::to_string(&d).expect("serialise");
        for fixed in ["\"value\":14.4", "\"value\":6}", "\"value\":6.0"] {
            assert!(
                !text.contains(fixed),
                "{file}: a fixed policy factor {fixed}"
            );
        }
        for p in panels(&d) {
            let exprs: Vec<&str> = p["targets"]
                .as_array()
                .map(|t| t.iter().filter_map(|t| t["expr"].as_str()).collect())
                .unwrap_or_default();
            let title = p["title"].as_str().unwrap_or_default();
            if p["type"] == "timeseries" && exprs.iter().any(|e| e.contains("slo_burn_rate")) {
                assert!(
                    exprs
                        .iter()
                        .any(|e| e.contains("slo_alert_burn_rate_threshold")),
                    "{file}: {title} draws burn rates without the policy's thresholds"
                );
                assert!(
                    p["fieldConfig"]["defaults"]["unit"].is_string(),
                    "{file}: {title} has no unit"
                );
            }
        }
    }
    let overview = serde_json::to_string(&load(FILES[0])).expect("serialise");
    assert!(
        overview.contains("slo_period_coverage_ratio"),
        "overview lacks coverage"
    );
    let slo = serde_json::to_string(&load(FILES[1])).expect("serialise");
    assert!(
        slo.contains("slo_period_coverage_ratio"),
        "detail lacks coverage"
    );
}
