//! The Grafana dashboards in `dashboards/`: their JSON against Grafana's
//! dashboard model, their queries against a real Prometheus that scrapes a
//! running errbudget, and a picture of each panel grid (Grafana itself does
//! not run here).
//!
//! The offline schema check follows the JSON Schema Grafana publishes in
//! github.com/grafana/grafana-foundation-sdk (`jsonschema/`, main at commit
//! f178d5a42a8915fdda9235e97ad93881e3f94fef): `dashboard.jsonschema.json`
//! (the v1 dashboard model of schemaVersion 4x), `prometheus.jsonschema.json`
//! (the query model) and the panel schemas of the types used. It is written
//! out here by hand, so the test needs no network and no copy of the schema:
//! - the dashboard: only the model's properties (`__inputs` and `__requires`
//!   are import-only and set aside), the required `schemaVersion` (an
//!   integer, ≥ 39 for current Grafana), `templating` and `annotations`;
//!   `title`; `uid` of 8–40 characters from `[A-Za-z0-9_-]`; `time.from/to`;
//!   `graphTooltip` 0–2; `tags` strings;
//! - annotations: `name`, `enable` (bool) and `iconColor` required, only
//!   the model's keys;
//! - variables: `name` and `type` (one of the model's variable types)
//!   required, only the model's keys, `hide` 0–3, `refresh` 0–2, `sort`
//!   0–8, `query` a string or an object, datasource refs `{type, uid}`;
//! - panels: only the model's keys, `type` non-empty, an integer `id`
//!   unique in the dashboard, `gridPos` with integers `h > 0`, `0 < w ≤ 24`,
//!   `0 ≤ x < 24`, `y ≥ 0` and `x + w ≤ 24`, no two panels overlapping;
//!   `fieldConfig` with `defaults` (only FieldConfig keys, thresholds
//!   `{mode, steps[{value: number|null, color}]}`, a known colour mode,
//!   mappings of a known type) and `overrides[{matcher{id}, properties[{id}]}]`;
//!   `transformations[{id, options}]`; the options each panel type's schema
//!   requires;
//! - targets (Prometheus query model): only its keys, `expr` (required) and
//!   `refId` strings, refIds unique per panel, `format` and `editorMode`
//!   from their enums, datasource refs `{type, uid}`;
//! - `__inputs`: `{name, type: "datasource", pluginId: "prometheus"}`, and
//!   every datasource ref is `${DS_PROMETHEUS}` (an input on import, the
//!   data source variable of that name when provisioned).
//!
//! One deliberate departure: the generated schema types `matcher.options`
//! and an override property's `value` as objects, but Grafana itself writes
//! strings and numbers there (`{"id": "byName", "options": "bad"}`), so they
//! are accepted as any JSON value.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use crate::chromium;
use crate::fixtures::{DAEMON_SERIES, NOTIFICATIONS_SERIES, SLO_SERIES};
use crate::http;
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

fn keys_allowed(v: &Value, allowed: &[&str], at: &str, errs: &mut Vec<String>) {
    match v.as_object() {
        Some(o) => {
            for k in o.keys() {
                if !allowed.contains(&k.as_str()) {
                    errs.push(format!("{at}: property {k:?} is not in the model"));
                }
            }
        }
        None => errs.push(format!("{at}: not an object")),
    }
}

fn required(v: &Value, keys: &[&str], at: &str, errs: &mut Vec<String>) {
    for k in keys {
        if v.get(*k).is_none() {
            errs.push(format!("{at}: required property {k:?} missing"));
        }
    }
}

fn int_in(v: &Value, key: &str, lo: i64, hi: i64, at: &str, errs: &mut Vec<String>) {
    if let Some(x) = v.get(key) {
        match x.as_i64() {
            Some(n) if (lo..=hi).contains(&n) => {}
            _ => errs.push(format!("{at}.{key}: {x} not an integer in {lo}..={hi}")),
        }
    }
}

fn one_of(v: &Value, key: &str, options: &[&str], at: &str, errs: &mut Vec<String>) {
    if let Some(x) = v.get(key) {
        if !x.as_str().is_some_and(|s| options.contains(&s)) {
            errs.push(format!("{at}.{key}: {x} not one of {options:?}"));
        }
    }
}

fn datasource_ref(v: &Value, at: &str, errs: &mut Vec<String>) {
    keys_allowed(v, &["type", "uid"], at, errs);
    if v["uid"].as_str() != Some("${DS_PROMETHEUS}") && v["type"].as_str() != Some("grafana") {
        errs.push(format!(
            "{at}: datasource uid {} is not ${{DS_PROMETHEUS}}",
            v["uid"]
        ));
    }
}

const DASHBOARD_KEYS: &[&str] = &[
    "annotations",
    "description",
    "editable",
    "fiscalYearStartMonth",
    "gnetId",
    "graphTooltip",
    "id",
    "links",
    "liveNow",
    "panels",
    "preload",
    "refresh",
    "revision",
    "schemaVersion",
    "snapshot",
    "tags",
    "templating",
    "time",
    "timepicker",
    "timezone",
    "title",
    "uid",
    "version",
    "weekStart",
];
const PANEL_KEYS: &[&str] = &[
    "cacheTimeout",
    "datasource",
    "description",
    "fieldConfig",
    "gridPos",
    "hideTimeOverride",
    "id",
    "interval",
    "libraryPanel",
    "links",
    "maxDataPoints",
    "maxPerRow",
    "options",
    "pluginVersion",
    "queryCachingTTL",
    "repeat",
    "repeatDirection",
    "targets",
    "timeCompare",
    "timeFrom",
    "timeShift",
    "title",
    "transformations",
    "transparent",
    "type",
];
const VARIABLE_KEYS: &[&str] = &[
    "allValue",
    "allowCustomValue",
    "auto",
    "auto_count",
    "auto_min",
    "current",
    "datasource",
    "definition",
    "description",
    "hide",
    "includeAll",
    "label",
    "multi",
    "name",
    "options",
    "query",
    "refresh",
    "regex",
    "skipUrlSync",
    "sort",
    "staticOptions",
    "staticOptionsOrder",
    "type",
];
const VARIABLE_TYPES: &[&str] = &[
    "query",
    "adhoc",
    "groupby",
    "constant",
    "datasource",
    "interval",
    "textbox",
    "custom",
    "system",
    "snapshot",
    "switch",
];
const ANNOTATION_KEYS: &[&str] = &[
    "builtIn",
    "datasource",
    "enable",
    "expr",
    "filter",
    "hide",
    "iconColor",
    "mappings",
    "name",
    "placement",
    "step",
    "tagKeys",
    "target",
    "textFormat",
    "titleFormat",
    "type",
    "useValueForTime",
];
const FIELD_CONFIG_KEYS: &[&str] = &[
    "actions",
    "color",
    "custom",
    "decimals",
    "description",
    "displayName",
    "displayNameFromDS",
    "fieldMinMax",
    "filterable",
    "links",
    "mappings",
    "max",
    "min",
    "noValue",
    "path",
    "thresholds",
    "unit",
    "writeable",
];
const COLOR_MODES: &[&str] = &[
    "thresholds",
    "palette-classic",
    "palette-classic-by-name",
    "continuous-GrYlRd",
    "continuous-RdYlGr",
    "continuous-BlYlRd",
    "continuous-YlRd",
    "continuous-BlPu",
    "continuous-YlBl",
    "continuous-blues",
    "continuous-reds",
    "continuous-greens",
    "continuous-purples",
    "fixed",
    "shades",
];
const TARGET_KEYS: &[&str] = &[
    "adhocFilters",
    "datasource",
    "editorMode",
    "exemplar",
    "expr",
    "format",
    "groupByKeys",
    "hide",
    "instant",
    "interval",
    "intervalFactor",
    "intervalMs",
    "legendFormat",
    "maxDataPoints",
    "queryType",
    "range",
    "refId",
    "resultAssertions",
    "scopes",
    "timeRange",
];

/// Options each panel type's schema requires.
fn required_options(panel_type: &str) -> Option<&'static [&'static str]> {
    Some(match panel_type {
        "timeseries" => &["legend", "tooltip"],
        "stat" => &[
            "graphMode",
            "colorMode",
            "justifyMode",
            "textMode",
            "wideLayout",
            "showPercentChange",
            "reduceOptions",
            "percentChangeColorMode",
            "orientation",
        ],
        "table" => &["frameIndex", "showHeader"],
        "state-timeline" => &["showValue", "rowHeight", "legend", "tooltip"],
        "bargauge" => &[
            "displayMode",
            "valueMode",
            "namePlacement",
            "showUnfilled",
            "sizing",
            "minVizWidth",
            "minVizHeight",
            "legend",
            "reduceOptions",
            "maxVizHeight",
            "orientation",
        ],
        _ => return None,
    })
}

fn check_field_config(fc: &Value, at: &str, errs: &mut Vec<String>) {
    keys_allowed(fc, &["defaults", "overrides"], at, errs);
    required(fc, &["defaults", "overrides"], at, errs);
    let d = &fc["defaults"];
    keys_allowed(d, FIELD_CONFIG_KEYS, &format!("{at}.defaults"), errs);
    if let Some(t) = d.get("thresholds") {
        keys_allowed(t, &["mode", "steps"], &format!("{at}.thresholds"), errs);
        one_of(t, "mode", &["absolute", "percentage"], at, errs);
        for s in t["steps"].as_array().into_iter().flatten() {
            if !(s["value"].is_number() || s["value"].is_null()) || !s["color"].is_string() {
                errs.push(format!("{at}.thresholds: bad step {s}"));
            }
        }
    }
    if let Some(c) = d.get("color") {
        one_of(c, "mode", COLOR_MODES, &format!("{at}.color"), errs);
    }
    for m in d["mappings"].as_array().into_iter().flatten() {
        one_of(m, "type", &["value", "range", "regex", "special"], at, errs);
        required(m, &["type", "options"], &format!("{at}.mappings"), errs);
    }
    match fc["overrides"].as_array() {
        Some(list) => {
            for (k, o) in list.iter().enumerate() {
                let at = format!("{at}.overrides[{k}]");
                keys_allowed(o, &["matcher", "properties", "__systemRef"], &at, errs);
                if !o["matcher"]["id"].is_string() {
                    errs.push(format!("{at}: matcher without id"));
                }
                for p in o["properties"].as_array().into_iter().flatten() {
                    keys_allowed(p, &["id", "value"], &at, errs);
                    if !p["id"].is_string() {
                        errs.push(format!("{at}: property without id"));
                    }
                }
            }
        }
        None => errs.push(format!("{at}: overrides not an array")),
    }
}

/// Every way `d` departs from Grafana's dashboard model (see the module
/// comment); empty when it conforms.
pub fn schema_errors(d: &Value) -> Vec<String> {
    let mut errs = vec![];
    let mut model = d.clone();
    let inputs = model
        .as_object_mut()
        .and_then(|o| {
            o.remove("__requires");
            o.remove("__inputs")
        })
        .unwrap_or(Value::Null);
    let e = &mut errs;
    keys_allowed(&model, DASHBOARD_KEYS, "dashboard", e);
    required(
        &model,
        &[
            "schemaVersion",
            "templating",
            "annotations",
            "title",
            "uid",
            "panels",
        ],
        "dashboard",
        e,
    );
    if model["schemaVersion"].as_i64().is_none_or(|v| v < 39) {
        e.push(format!(
            "schemaVersion {} is not an integer ≥ 39",
            model["schemaVersion"]
        ));
    }
    if model["title"].as_str().is_none_or(|t| t.is_empty()) {
        e.push("title missing or empty".into());
    }
    let uid = model["uid"].as_str().unwrap_or("");
    if !(8..=40).contains(&uid.len())
        || !uid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        e.push(format!(
            "uid {uid:?} is not 8–40 characters of [A-Za-z0-9_-]"
        ));
    }
    if let Some(t) = model.get("time") {
        keys_allowed(t, &["from", "to"], "time", e);
        if !t["from"].is_string() || !t["to"].is_string() {
            e.push("time.from/to must be strings".into());
        }
    }
    int_in(&model, "graphTooltip", 0, 2, "dashboard", e);
    if !model["tags"]
        .as_array()
        .is_some_and(|t| t.iter().all(Value::is_string))
    {
        e.push("tags must be an array of strings".into());
    }

    keys_allowed(&model["annotations"], &["list"], "annotations", e);
    for (k, a) in model["annotations"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("annotations.list[{k}]");
        keys_allowed(a, ANNOTATION_KEYS, &at, e);
        required(a, &["name", "enable", "iconColor"], &at, e);
        if !a["enable"].is_boolean() {
            e.push(format!("{at}.enable not a boolean"));
        }
    }

    keys_allowed(&model["templating"], &["list"], "templating", e);
    let mut names = BTreeSet::new();
    for (k, v) in model["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("templating.list[{k}]");
        keys_allowed(v, VARIABLE_KEYS, &at, e);
        required(v, &["name", "type"], &at, e);
        one_of(v, "type", VARIABLE_TYPES, &at, e);
        int_in(v, "hide", 0, 3, &at, e);
        int_in(v, "refresh", 0, 2, &at, e);
        int_in(v, "sort", 0, 8, &at, e);
        if let Some(q) = v.get("query") {
            if !(q.is_string() || q.is_object()) {
                e.push(format!("{at}.query neither a string nor an object"));
            }
        }
        if let Some(ds) = v.get("datasource") {
            datasource_ref(ds, &format!("{at}.datasource"), e);
        }
        if !names.insert(v["name"].as_str().unwrap_or("").to_string()) {
            e.push(format!("{at}: variable name {} used twice", v["name"]));
        }
    }

    let mut ids = BTreeSet::new();
    let mut cells: BTreeMap<(i64, i64), i64> = BTreeMap::new();
    for p in panels(&model) {
        let id = p["id"].as_i64();
        let at = format!("panel {}", p["id"]);
        keys_allowed(p, PANEL_KEYS, &at, e);
        required(
            p,
            &["id", "type", "title", "gridPos", "targets", "datasource"],
            &at,
            e,
        );
        match id {
            Some(id) if ids.insert(id) => {}
            _ => e.push(format!("{at}: id missing, not an integer or not unique")),
        }
        if p["type"].as_str().is_none_or(|t| t.is_empty()) {
            e.push(format!("{at}: type missing"));
        }
        let g = &p["gridPos"];
        keys_allowed(
            g,
            &["h", "w", "x", "y", "static"],
            &format!("{at}.gridPos"),
            e,
        );
        let (h, w, x, y) = (
            g["h"].as_i64(),
            g["w"].as_i64(),
            g["x"].as_i64(),
            g["y"].as_i64(),
        );
        match (h, w, x, y) {
            (Some(h), Some(w), Some(x), Some(y))
                if h > 0 && w > 0 && w <= 24 && (0..24).contains(&x) && y >= 0 && x + w <= 24 =>
            {
                for cx in x..x + w {
                    for cy in y..y + h {
                        if let Some(other) = cells.insert((cx, cy), id.unwrap_or(-1)) {
                            e.push(format!(
                                "{at} overlaps panel {other} at column {cx}, row {cy}"
                            ));
                        }
                    }
                }
            }
            _ => e.push(format!("{at}: gridPos {g} out of the 24-column grid")),
        }
        datasource_ref(&p["datasource"], &format!("{at}.datasource"), e);
        check_field_config(&p["fieldConfig"], &format!("{at}.fieldConfig"), e);
        for t in p["transformations"].as_array().into_iter().flatten() {
            required(t, &["id", "options"], &format!("{at}.transformations"), e);
        }
        match required_options(p["type"].as_str().unwrap_or("")) {
            Some(keys) => required(&p["options"], keys, &format!("{at}.options"), e),
            None => e.push(format!(
                "{at}: panel type {} not checked by this test",
                p["type"]
            )),
        }
        let targets = p["targets"].as_array().cloned().unwrap_or_default();
        if targets.is_empty() {
            e.push(format!("{at}: no targets"));
        }
        let mut refs = BTreeSet::new();
        for t in &targets {
            let tat = format!("{at} target {}", t["refId"]);
            keys_allowed(t, TARGET_KEYS, &tat, e);
            if t["expr"].as_str().is_none_or(|x| x.is_empty()) {
                e.push(format!("{tat}: expr missing"));
            }
            if !t["refId"].is_string() || !refs.insert(t["refId"].to_string()) {
                e.push(format!("{tat}: refId missing or not unique"));
            }
            one_of(t, "format", &["time_series", "table", "heatmap"], &tat, e);
            one_of(t, "editorMode", &["builder", "code"], &tat, e);
            datasource_ref(&t["datasource"], &format!("{tat}.datasource"), e);
        }
    }

    // Import: one Prometheus input; provisioning: a data source variable
    // of the same name, so `${DS_PROMETHEUS}` resolves either way.
    let inputs = inputs.as_array().cloned().unwrap_or_default();
    if inputs.len() != 1
        || inputs[0]["name"] != "DS_PROMETHEUS"
        || inputs[0]["type"] != "datasource"
        || inputs[0]["pluginId"] != "prometheus"
    {
        e.push(format!("__inputs must be one {{name: DS_PROMETHEUS, type: datasource, pluginId: prometheus}}: {inputs:?}"));
    }
    let ds_var = model["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|v| {
            v["name"] == "DS_PROMETHEUS" && v["type"] == "datasource" && v["query"] == "prometheus"
        });
    if !ds_var {
        e.push("no datasource variable DS_PROMETHEUS of type prometheus".into());
    }
    errs
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
                    (SLO_SERIES.contains(&n.as_str())
                        || DAEMON_SERIES.contains(&n.as_str())
                        || n == NOTIFICATIONS_SERIES),
                    "{file}: {expanded} reads {n}, which CONTRACT.md does not define"
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
                if r.status != 200 || v["status"] != "success" {
                    failures.push(format!("{what}: error {} {}", r.status, r.body));
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
