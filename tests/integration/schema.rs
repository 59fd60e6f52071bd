//! Grafana's dashboard model, checked offline for the dashboards in
//! `dashboards/`.
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

use serde_json::Value;

use crate::dashboards::panels;

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
