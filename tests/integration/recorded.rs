//! Recording rules as Prometheus evaluates them, without waiting for it:
//! the rules of a file split into tiers by what they read, and each tier
//! backfilled over past data by a Prometheus holding the tiers before it.
//! Shared by the rules tests and the rules cost benchmark.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use saphyr::{LoadableYamlNode, Yaml};
use serde_json::Value;

use crate::harness::{block_dirs, errbudget_bin, promtool, run_bounded, Prometheus};

type Labels = BTreeMap<String, String>;

/// A recording rule of the generated file.
#[derive(Clone, Debug)]
pub struct Recording {
    pub interval: String,
    pub record: String,
    pub expr: String,
    pub labels: BTreeMap<String, String>,
}

/// The recording rules of a rule file, in file order.
pub fn recordings(text: &str) -> Vec<Recording> {
    let docs = Yaml::load_from_str(text).expect("rules YAML");
    let mut out = vec![];
    for g in docs[0]["groups"].as_vec().expect("groups") {
        let interval = g
            .as_mapping_get("interval")
            .and_then(|i| i.as_str())
            .unwrap_or("1m")
            .to_string();
        for r in g["rules"].as_vec().expect("rules") {
            let Some(record) = r.as_mapping_get("record").and_then(|x| x.as_str()) else {
                continue;
            };
            let mut labels = BTreeMap::new();
            if let Some(m) = r.as_mapping_get("labels").and_then(|x| x.as_mapping()) {
                for (k, v) in m {
                    labels.insert(
                        k.as_str().expect("label name").to_string(),
                        v.as_str().expect("label value").to_string(),
                    );
                }
            }
            out.push(Recording {
                interval: interval.clone(),
                record: record.to_string(),
                expr: r["expr"].as_str().expect("expr").to_string(),
                labels,
            });
        }
    }
    out
}

/// Whether `expr` reads the series `name` (not merely a longer name).
fn reads(expr: &str, name: &str) -> bool {
    expr.match_indices(name).any(|(i, _)| {
        let before = expr[..i].chars().next_back();
        let after = expr[i + name.len()..].chars().next();
        let ident =
            |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
        !ident(before) && !ident(after)
    })
}

/// Rules by tier: tier 0 reads raw series only, tier k reads tiers < k.
pub fn tiers(rules: &[Recording]) -> Vec<Vec<Recording>> {
    let names: BTreeSet<&str> = rules.iter().map(|r| r.record.as_str()).collect();
    let mut depth: BTreeMap<&str, usize> = BTreeMap::new();
    for _ in 0..=names.len() {
        for r in rules {
            let d = names
                .iter()
                .filter(|n| **n != r.record && reads(&r.expr, n))
                .map(|n| depth.get(n).copied().unwrap_or(0) + 1)
                .max()
                .unwrap_or(0);
            let e = depth.entry(r.record.as_str()).or_insert(0);
            *e = (*e).max(d);
        }
    }
    let max = depth.values().copied().max().unwrap_or(0);
    let mut out = vec![vec![]; max + 1];
    for r in rules {
        out[depth[r.record.as_str()]].push(r.clone());
    }
    out
}

fn hard_link_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("dir entry");
        let dst = to.join(e.file_name());
        if e.file_type().expect("file type").is_dir() {
            hard_link_tree(&e.path(), &dst);
        } else if std::fs::hard_link(e.path(), &dst).is_err() {
            std::fs::copy(e.path(), &dst).expect("copy block file");
        }
    }
}

/// Values of `expr` at every `step` in `[from, to]`, as Prometheus' rule
/// engine would record them: a range query is one instant evaluation per
/// step, which is also how `promtool tsdb create-blocks-from rules` works.
fn evaluate_range(
    prom: &Prometheus,
    expr: &str,
    from: i64,
    to: i64,
    step: i64,
) -> Vec<(Labels, Vec<(i64, String)>)> {
    let mut out = vec![];
    let mut start = from;
    while start <= to {
        // Below Prometheus' 11,000 points per series.
        let end = (start + 10_000 * step).min(to);
        let body = format!(
            "query={}&start={start}&end={end}&step={step}",
            crate::http::encode(expr)
        );
        let r = crate::http::post(prom.addr, "/api/v1/query_range", &body).expect("query_range");
        assert_eq!(r.status, 200, "{expr}: {}", r.body);
        let v: Value = serde_json::from_str(&r.body).expect("JSON");
        for s in v["data"]["result"].as_array().expect("matrix") {
            let labels = s["metric"]
                .as_object()
                .expect("metric")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect();
            let points = s["values"]
                .as_array()
                .expect("values")
                .iter()
                .map(|p| {
                    (
                        p[0].as_f64().expect("timestamp") as i64,
                        p[1].as_str().expect("value").to_string(),
                    )
                })
                .collect();
            out.push((labels, points));
        }
        start = end + step;
    }
    out
}

fn om_labels(labels: &BTreeMap<String, String>) -> String {
    let body: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect();
    format!("{{{}}}", body.join(","))
}

/// Backfills the recording rules tier by tier on top of the raw blocks in
/// `raw`: each tier is evaluated by the Prometheus holding every earlier
/// tier (restarted in between), at the rules' interval over
/// `spans(tier, rule)`,
/// and written as TSDB blocks with `promtool tsdb create-blocks-from
/// openmetrics`. (`create-blocks-from rules` does the same evaluation but
/// writes one block per rule and 2 hours: thousands of blocks for a week of
/// increments.)
pub fn backfill_rules(
    raw: &Path,
    tiers: &[Vec<Recording>],
    spans: impl Fn(usize, &Recording) -> Vec<(i64, i64)>,
    work: &Path,
) -> Prometheus {
    let all = work.join("blocks");
    for b in block_dirs(raw) {
        hard_link_tree(&b, &all.join(b.file_name().expect("block name")));
    }
    let mut prom = Prometheus::start(&all);
    for (i, tier) in tiers.iter().enumerate() {
        let mut families: BTreeMap<String, BTreeMap<String, Vec<(i64, String)>>> = BTreeMap::new();
        for r in tier {
            let step = humantime::parse_duration(&r.interval)
                .expect("group interval")
                .as_secs() as i64;
            for (from, to) in spans(i, r) {
                for (mut labels, points) in evaluate_range(&prom, &r.expr, from, to, step) {
                    labels.remove("__name__");
                    labels.extend(r.labels.clone());
                    let series = families
                        .entry(r.record.clone())
                        .or_default()
                        .entry(om_labels(&labels))
                        .or_default();
                    series.extend(points);
                }
            }
        }
        let mut om = String::new();
        for (name, series) in &families {
            om.push_str(&format!("# TYPE {name} gauge\n"));
            for (labels, points) in series {
                let mut points = points.clone();
                points.sort_by_key(|p| p.0);
                points.dedup_by_key(|p| p.0);
                for (ts, v) in points {
                    om.push_str(&format!("{name}{labels} {v} {ts}\n"));
                }
            }
        }
        om.push_str("# EOF\n");
        let file = work.join(format!("tier{i}.om"));
        std::fs::write(&file, om).expect("write tier");
        let (code, out, err) = run_bounded(
            Command::new(promtool())
                .args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"])
                .arg(&file)
                .arg(&all),
            Duration::from_secs(300),
        );
        assert_eq!(code, Some(0), "backfill of tier {i} failed:\n{out}\n{err}");
        prom.stop();
        prom = Prometheus::start(&all);
    }
    prom
}

/// The `errbudget rules` output for `cfg`.
pub fn generate(cfg: &Path, extra: &[&str]) -> String {
    let (code, out, err) = run_bounded(
        Command::new(errbudget_bin())
            .arg("rules")
            .arg("--config.file")
            .arg(cfg)
            .args(extra),
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(0), "errbudget rules failed:\n{err}");
    out
}

/// Every expression of a rule file, recording and alerting, with the name
/// of its rule (for the cost benchmark).
#[allow(dead_code)]
pub fn expressions(text: &str) -> Vec<(String, String)> {
    let docs = Yaml::load_from_str(text).expect("rules YAML");
    let mut out = vec![];
    for g in docs[0]["groups"].as_vec().expect("groups") {
        for r in g["rules"].as_vec().expect("rules") {
            let name = r
                .as_mapping_get("record")
                .or_else(|| r.as_mapping_get("alert"))
                .and_then(|x| x.as_str())
                .expect("record or alert");
            out.push((
                name.to_string(),
                r["expr"].as_str().expect("expr").to_string(),
            ));
        }
    }
    out
}

/// Whether some expression reads `name` over a range (`name{…}[…]`), so
/// that its recorded history matters, not only its latest value.
#[allow(dead_code)]
pub fn read_over_range(exprs: &[String], name: &str) -> bool {
    exprs.iter().any(|e| {
        e.match_indices(name).any(|(i, _)| {
            let rest = e[i + name.len()..].trim_start();
            let rest = match rest.strip_prefix('{') {
                Some(r) => r.split_once('}').map_or("", |(_, after)| after),
                None => rest,
            };
            rest.trim_start().starts_with('[')
        })
    })
}
