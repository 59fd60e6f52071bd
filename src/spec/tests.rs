//! Spec loading against the fixtures in `tests/fixtures/specs` (one
//! invalid file per rule, exact message asserted) and the shipped examples
//! in `config/`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
// Reading files is the edge's job; these tests read the fixtures through it.
use crate::app::load::{load_specs, settings_and_specs as load};
use crate::model::{Severity, Sli};
use crate::promql::grouping_labels;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/specs")
}

/// Parses a fixture under its bare file name, so messages stay short.
fn parse_fixture(name: &str) -> Result<Vec<Slo>, Vec<Diagnostic>> {
    let text =
        std::fs::read_to_string(fixture_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    parse_specs(name, &text)
}

fn messages(name: &str) -> Vec<String> {
    match parse_fixture(name) {
        Ok(slos) => panic!("{name} loaded {} SLOs, expected errors", slos.len()),
        Err(d) => d.iter().map(ToString::to_string).collect(),
    }
}

fn days(d: u64) -> Duration {
    Duration::from_secs(d * 86_400)
}

#[test]
fn every_invalid_fixture_gives_its_exact_message() {
    let cases: &[(&str, &[&str])] = &[
        ("invalid-yaml-syntax.yaml", &[
            "invalid-yaml-syntax.yaml:6:55: invalid YAML: while parsing a flow mapping, did not find expected ',' or '}'",
        ]),
        ("invalid-unknown-field.yaml", &[
            "invalid-unknown-field.yaml:4:5: slos[0]: missing required field \"objective\"",
            "invalid-unknown-field.yaml:5:5: slos[0]: unknown field \"objectve\", did you mean \"objective\"?",
        ]),
        ("invalid-missing-field.yaml", &[
            "invalid-missing-field.yaml:4:5: slos[0]: missing required field \"objective\"",
        ]),
        ("invalid-objective.yaml", &[
            "invalid-objective.yaml:5:16: slos[0].objective: objective 100 is outside (0, 100): give a percentage such as 99.9",
        ]),
        ("invalid-duration.yaml", &[
            "invalid-duration.yaml:6:13: slos[0].period: invalid duration \"thirty days\": expected number at 0 (expected e.g. 5m, 1h30m, 30d)",
        ]),
        ("invalid-promql.yaml", &[
            "invalid-promql.yaml:8:22: slos[0].sli.events.error_query: invalid PromQL: unclosed left parenthesis",
        ]),
        ("invalid-events-no-window.yaml", &[
            "invalid-events-no-window.yaml:8:22: slos[0].sli.events.error_query: query has no {{.window}}: an events query must be a rate over the window, e.g. sum(rate(requests_total[{{.window}}]))",
        ]),
        ("invalid-duplicate-slo.yaml", &[
            "invalid-duplicate-slo.yaml:10:5: duplicate SLO \"availability\" in service \"checkout\", first defined at invalid-duplicate-slo.yaml:4:5",
        ]),
        ("invalid-label-name.yaml", &[
            "invalid-label-name.yaml:4:3: labels: invalid label name \"team-name\": must match [a-zA-Z_][a-zA-Z0-9_]* and not start with __",
        ]),
        ("invalid-reserved-label.yaml", &[
            "invalid-reserved-label.yaml:7:7: slos[0].labels: label name \"severity\" is reserved: errbudget sets it on every slo_* series",
        ]),
        ("invalid-grouping-reserved.yaml", &[
            "invalid-grouping-reserved.yaml:8:22: slos[0].sli.events.error_query: grouping label \"slo\" collides with a label errbudget sets; rename it with label_replace",
            "invalid-grouping-reserved.yaml:9:22: slos[0].sli.events.total_query: grouping label \"slo\" collides with a label errbudget sets; rename it with label_replace",
        ]),
        ("invalid-grouping-mismatch.yaml", &[
            "invalid-grouping-mismatch.yaml:8:22: slos[0].sli.events.error_query: keeps labels (route) but total_query keeps (): both must group by the same labels",
        ]),
        ("invalid-grouping-spec-label.yaml", &[
            "invalid-grouping-spec-label.yaml:10:28: slos[0].sli.raw.error_ratio_query: grouping label \"route\" collides with the spec label of the same name",
        ]),
        ("invalid-page-factor.yaml", &[
            "invalid-page-factor.yaml:12:11: slos[0].alerting.windows[0]: a page needs a factor > 1, got 1: at 1 the budget lasts exactly the period, which is ticket territory",
        ]),
        ("invalid-short-window.yaml", &[
            "invalid-short-window.yaml:12:11: slos[0].alerting.windows[0]: short window 1h must be shorter than long window 1h",
        ]),
        ("invalid-window-longer-than-period.yaml", &[
            "invalid-window-longer-than-period.yaml:13:11: slos[0].alerting.windows[0]: long window 14d is longer than the period 7d",
        ]),
        ("invalid-never-fires.yaml", &[
            "invalid-never-fires.yaml:12:11: slos[0].alerting.windows[0]: factor 144 × error budget 0.01 > 1: the error ratio cannot exceed 1, so this alert could never fire",
        ]),
        ("invalid-factor-and-budget.yaml", &[
            "invalid-factor-and-budget.yaml:12:11: slos[0].alerting.windows[0]: give exactly one of factor or budget_percent, not both",
            "invalid-factor-and-budget.yaml:13:11: slos[0].alerting.windows[1]: give exactly one of factor or budget_percent",
        ]),
        ("invalid-plugin.yaml", &[
            "invalid-plugin.yaml:7:7: slos[0].sli.plugin: sli.plugin is not supported: errbudget evaluates PromQL itself; rewrite it as sli.events or sli.raw",
        ]),
        ("invalid-latency-threshold.yaml", &[
            "invalid-latency-threshold.yaml:10:20: slos[0].sli.latency.threshold: threshold 0 must be > 0 (seconds, a histogram bucket boundary)",
        ]),
        ("invalid-release-freeze.yaml", &[
            "invalid-release-freeze.yaml:11:29: slos[0].policy.release_freeze_below: release_freeze_below 10 is outside [0, 1]: it is a remaining-budget ratio such as 0.1",
        ]),
        ("invalid-openslo-timeslices.yaml", &[
            "invalid-openslo-timeslices.yaml:26:20: spec.budgetingMethod: budgetingMethod Timeslices is not supported: errbudget counts occurrences (bad/total events); use Occurrences",
        ]),
        ("invalid-calendar-period.yaml", &[
            "invalid-calendar-period.yaml:6:13: slos[0].period: \"1M\" is a calendar month, which has no fixed length: for a calendar period write `period: {calendar: month, time_zone: Europe/Berlin}` (week, month or quarter); or give a rolling period in days, e.g. 30d",
        ]),
        ("invalid-exclusions.yaml", &[
            "invalid-exclusions.yaml:7:17: slos[0].period.calendar: \"fortnight\" is not a calendar period: give week, month or quarter",
            "invalid-exclusions.yaml:8:18: slos[0].period.time_zone: \"Europe/Berlinn\" is not an IANA time zone name (such as Europe/Berlin, America/New_York or UTC)",
            "invalid-exclusions.yaml:11:16: slos[0].exclusions[0]: a maintenance window starts and ends on a 5-minute boundary (errbudget keeps events in 5-minute buckets, and only whole buckets are removed exactly)",
            "invalid-exclusions.yaml:13:16: slos[0].exclusions[1].rrule: an occurrence starts at 2020-01-05T02:07:00Z, not on a 5-minute boundary (errbudget keeps events in 5-minute buckets); give BYMINUTE in multiples of 5 and no BYSECOND",
            "invalid-exclusions.yaml:15:9: slos[0].exclusions[2]: a recurring window needs a duration, e.g. duration: 2h",
            "invalid-exclusions.yaml:16:9: slos[0].exclusions[3]: give either start and end (a one-off window) or rrule and duration (a recurring one)",
            "invalid-exclusions.yaml:18:16: slos[0].exclusions[4].start: \"yesterday\" is not an RFC 3339 time such as 2026-11-14T22:00:00Z: premature end of input",
        ]),
        ("invalid-pyrra-target.yaml", &[
            "invalid-pyrra-target.yaml:6:11: spec.target: expected a percent such as \"99.9\", found \"ninety\"",
            "invalid-pyrra-target.yaml:11:17: spec.indicator.ratio.errors.metric: expected a metric selector such as http_requests_total{job=\"api\"}, as Pyrra requires",
        ]),
        ("invalid-pyrra-severities.yaml", &[
            "invalid-pyrra-severities.yaml:10:7: spec.alerting.severities: fastBurn \"sev1\" and mediumBurn \"sev2\" differ: errbudget labels all pages alike and all tickets alike; give them the same severity",
        ]),
        ("invalid-pyrra-window.yaml", &[
            "invalid-pyrra-window.yaml:7:11: spec.window: window 1d is too short for Pyrra's burn-rate windows: the short window of the first pair (window / 8064, rounded to the minute) is 0s; use a window of at least 3d",
        ]),
        ("invalid-openslo-calendar-unit.yaml", &[
            "invalid-openslo-calendar-unit.yaml:24:17: spec.timeWindow[0].duration: \"1Q\" is a calendar quarter, which has no fixed length: for a calendar period set isRolling: false (with calendar.timeZone), or give days or weeks, e.g. 30d or 4w",
        ]),
        ("invalid-openslo-unused-alerts.yaml", &[
            "invalid-openslo-unused-alerts.yaml:1:3: [0]: AlertPolicy \"orphan-policy\" is not used: no SLO references it (spec.alertPolicies: [{alertPolicyRef: NAME}]); errbudget alerts only through an SLO's policies, so reference it or remove it",
            "invalid-openslo-unused-alerts.yaml:10:3: [1]: AlertCondition \"lonely-condition\" is not used: no AlertPolicy of an SLO references it (spec.conditions: [{conditionRef: NAME}]); errbudget alerts only through an SLO's policies, so reference it or remove it",
        ]),
        ("invalid-openslo-policy.yaml", &[
            "invalid-openslo-policy.yaml:7:19: [0].spec.indicatorRef: no kind: SLI named \"missing-sli\" in the files read: add its file to the files checked, or inline it",
            "invalid-openslo-policy.yaml:21:5: AlertPolicy \"breach\".spec.alertWhenNoData: true is not supported: errbudget shows missing data as status no_data and alerts ErrorBudgetEvaluationFailing when queries fail; remove it",
            "invalid-openslo-policy.yaml:28:21: AlertPolicy \"breach\".spec.conditions[0].spec.severity: \"sev1\" is not supported: errbudget alerts as page or ticket; route on them in Alertmanager",
            "invalid-openslo-policy.yaml:31:17: AlertPolicy \"breach\".spec.conditions[0].spec.condition.op: \"lte\" is not supported: errbudget alerts when the burn rate exceeds the threshold (op: gt)",
        ]),
        ("invalid-openslo-threshold.yaml", &[
            "invalid-openslo-threshold.yaml:11:7: spec.indicator.spec.thresholdMetric: this thresholdMetric is not supported (the query is not a plain selector): errbudget reads a thresholdMetric only as a latency SLI, a histogram's NAME_bucket selector with the objective's op: lte and value: a bucket boundary in seconds; other thresholds are compared sample by sample, which needs Timeslices budgeting",
        ]),
        ("invalid-openslo-v1alpha-unit.yaml", &[
            "invalid-openslo-v1alpha-unit.yaml:21:13: spec.timeWindows[0].unit: \"Month\" is a calendar unit, which has no fixed length: for a calendar period set isRolling: false, or give the period in days (unit: Day), e.g. count: 30",
        ]),
        ("invalid-windows-conflict.yaml", &[
            "invalid-windows-conflict.yaml:12:1: AlertWindows for period 30d already given at invalid-windows-conflict.yaml:1:1 with other windows: give one catalogue per period",
        ]),
        ("invalid-rule-file.yaml", &[
            "invalid-rule-file.yaml:1:1: top level: a Prometheus rule file (groups:) holds generated rules, not an SLO spec: give the file it was generated from",
        ]),
        ("invalid-pyrra-indicators.yaml", &[
            "invalid-pyrra-indicators.yaml:9:5: spec.indicator: give exactly one of ratio, latency, latencyNative or bool_gauge, found ratio and bool_gauge",
            "invalid-pyrra-indicators.yaml:24:16: spec.indicator.latencyNative.latency: expected a duration such as 200ms, found \"fast\"",
            "invalid-pyrra-indicators.yaml:36:15: spec.indicator.bool_gauge.metric: expected a metric selector such as probe_success{job=\"web\"}, as Pyrra requires",
            "invalid-pyrra-indicators.yaml:39:7: kind: unsupported kind \"ServiceLevelObjectiveList\": expected ServiceLevelObjective",
        ]),
        ("invalid-openslo-objects.yaml", &[
            "invalid-openslo-objects.yaml:7:19: [0].spec.indicatorRef: SLI \"shared\" is defined twice (invalid-openslo-objects.yaml [1] and invalid-openslo-objects.yaml [2]): give each a unique metadata.name",
            "invalid-openslo-objects.yaml:19:11: [0].spec.alertPolicies[0].spec.alertWhenBreaching: false is not supported: errbudget alerts when the burn rate breaches; set it to true or remove the policy",
            "invalid-openslo-objects.yaml:19:11: [0].spec.alertPolicies[0].spec.conditions: give exactly one condition (OpenSLO allows one per policy), found 2",
            "invalid-openslo-objects.yaml:52:11: [3].spec.indicator.spec.ratioMetric.total: raw cannot be combined with good, bad or total",
            "invalid-openslo-objects.yaml:66:13: AlertCondition \"threshold-kind\".spec.condition.kind: condition kind \"threshold\" is not supported: errbudget alerts on burn rates (kind: burnrate)",
            "invalid-openslo-objects.yaml:71:9: [5].kind: unknown OpenSLO kind \"Composite\": expected SLO, SLI, AlertPolicy, AlertCondition, AlertNotificationTarget, Service or DataSource",
        ]),
        ("invalid-openslo-v1alpha.yaml", &[
            "invalid-openslo-v1alpha.yaml:11:19: spec.objectives[0].ratioMetrics.good.source: \"datadog\" is not supported: expected prometheus",
            "invalid-openslo-v1alpha.yaml:16:22: spec.objectives[0].ratioMetrics.total.queryType: \"logql\" is not supported: expected promql",
            "invalid-openslo-v1alpha.yaml:21:13: spec.timeWindows[0].unit: \"Week\" is not supported: give the period in days (unit: Day), as Sloth does",
            "invalid-openslo-v1alpha.yaml:24:7: kind: unsupported openslo/v1alpha kind \"Service\": expected SLO",
        ]),
        ("invalid-foreign-kinds.yaml", &[
            "invalid-foreign-kinds.yaml:1:13: apiVersion: a PrometheusRule holds generated rules, not an SLO spec: give the file it was generated from",
            "invalid-foreign-kinds.yaml:8:13: apiVersion: slo-generator specs (sre.google.com/v2) are not supported: their windows come from a separate error_budget_policies config; rewrite it as a Sloth prometheus/v1 spec (filter_good / filter_valid become sli.events)",
            "invalid-foreign-kinds.yaml:14:7: kind: unsupported kind \"PrometheusServiceLevelList\": expected PrometheusServiceLevel or AlertWindows",
            "invalid-foreign-kinds.yaml:19:14: spec.sloPeriod: \"1M\" is a calendar month: a catalogue applies to rolling periods of its length; give days, e.g. 30d",
            "invalid-foreign-kinds.yaml:25:11: spec.ticket.slow: missing required field \"longWindow\"",
        ]),
    ];
    let mut covered: Vec<&str> = cases.iter().map(|(n, _)| *n).collect();
    covered.push("invalid-empty.yaml");
    covered.push("invalid-many.yaml");
    for (name, want) in cases {
        assert_eq!(messages(name), *want, "{name}");
    }
    // Every invalid fixture on disk is asserted somewhere.
    for entry in std::fs::read_dir(fixture_dir()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.starts_with("invalid-") {
            assert!(covered.contains(&name.as_str()), "{name} has no test case");
        }
    }
}

#[test]
fn all_problems_of_a_file_are_reported_at_once() {
    assert_eq!(
        messages("invalid-many.yaml"),
        [
            "invalid-many.yaml:4:3: labels: label name \"slo\" is reserved: errbudget sets it on every slo_* series",
            "invalid-many.yaml:7:16: slos[0].objective: objective 120 is outside (0, 100): give a percentage such as 99.9",
            "invalid-many.yaml:8:13: slos[0].period: invalid duration \"1fortnight\": unknown time unit \"fortnight\", supported units: ns, us/µs, ms, sec, min, hours, days, weeks, months, years (and few variations) (expected e.g. 5m, 1h30m, 30d)",
            "invalid-many.yaml:11:9: slos[0].sli.events: missing required field \"total_query\"",
            "invalid-many.yaml:12:9: slos[0].sli.events: unknown field \"totl_query\", did you mean \"total_query\"?",
            "invalid-many.yaml:18:20: slos[1].sli.latency.threshold: threshold -1 must be > 0 (seconds, a histogram bucket boundary)",
            "invalid-many.yaml:21:22: slos[1].alerting.windows[0].severity: expected page or ticket, found \"warn\"",
        ]
    );
}

#[test]
fn sloth_events_spec_loads_unchanged() {
    let slos = parse_fixture("valid-sloth-events.yaml").unwrap();
    assert_eq!(slos.len(), 1);
    let s = &slos[0];
    assert_eq!(
        (s.service.as_str(), s.name.as_str()),
        ("checkout", "requests-availability")
    );
    assert_eq!(s.objective.percent(), 99.9);
    assert_eq!(s.period, days(30));
    // `tier: 1` is a string label, as Sloth reads it.
    assert_eq!(s.labels.get("tier").map(String::as_str), Some("1"));
    assert_eq!(s.labels.get("team").map(String::as_str), Some("payments"));
    assert!(
        matches!(&s.sli, Sli::Events { total_query, .. } if total_query.contains("{{ .window }}"))
    );
    assert_eq!(s.alerting.name, "CheckoutErrorBudgetBurn");
    assert_eq!(
        s.alerting.page_labels.get("severity").map(String::as_str),
        Some("critical")
    );
    assert_eq!(
        s.alerting.ticket_labels.get("channel").map(String::as_str),
        Some("#payments-alerts")
    );
    assert!(s.alerting.page_enabled && s.alerting.ticket_enabled);
    assert_eq!(s.alerting.windows, crate::model::default_policy(days(30)));
    assert_eq!(s.release_freeze_below, 0.0);
    assert_eq!(s.origin.to_string(), "valid-sloth-events.yaml:9:5");
}

#[test]
fn slo_labels_win_over_service_labels_and_alerts_can_be_disabled() {
    let slos = parse_fixture("valid-sloth-latency-events.yaml").unwrap();
    let names: Vec<&str> = slos.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["availability", "latency"]);
    assert_eq!(
        slos[1].labels.get("category").map(String::as_str),
        Some("latency")
    );
    assert_eq!(
        slos[1].labels.get("cluster").map(String::as_str),
        Some("eu-1")
    );
    assert!(!slos[1].alerting.page_enabled);
    assert!(slos[1].alerting.ticket_enabled);
    assert_eq!(slos[1].alerting.name, "ErrorBudgetBurn");
}

#[test]
fn raw_sli_loads() {
    let slos = parse_fixture("valid-sloth-raw.yaml").unwrap();
    assert!(
        matches!(&slos[0].sli, Sli::Raw { error_ratio_query } if error_ratio_query.starts_with("1 - ("))
    );
    assert_eq!(slos[0].objective.budget_ratio(), 0.03);
}

#[test]
fn sloth_cr_reads_camel_case_and_extensions() {
    let slos = parse_fixture("valid-sloth-cr.yaml").unwrap();
    let s = &slos[0];
    assert_eq!(s.period, days(28));
    assert!(!s.alerting.ticket_enabled);
    assert_eq!(s.release_freeze_below, 0.2);
    let w = &s.alerting.windows;
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].severity, Severity::Page);
    assert!((w[0].factor - 13.44).abs() < 1e-9, "{}", w[0].factor);
    assert_eq!(w[0].min_bad_events, Some(5.0));
}

#[test]
fn openslo_list_with_counter_queries_and_indicator_ref() {
    let slos = parse_fixture("valid-openslo.yaml").unwrap();
    assert_eq!(slos.len(), 2);
    let a = &slos[0];
    assert_eq!(
        (a.service.as_str(), a.name.as_str()),
        ("storefront", "storefront-availability")
    );
    assert_eq!(a.objective.percent(), 99.5);
    assert_eq!(a.period, days(28));
    assert_eq!(a.labels.get("team").map(String::as_str), Some("web,growth"));
    assert_eq!(
        a.sli,
        Sli::Events {
            error_query: "(sum(rate(storefront_requests_total[{{.window}}]))) - (sum(rate(storefront_requests_total{code!~\"5..\"}[{{.window}}])))".into(),
            total_query: "sum(rate(storefront_requests_total[{{.window}}]))".into(),
        }
    );
    let b = &slos[1];
    assert_eq!(b.objective.percent(), 99.0);
    assert_eq!(b.period, days(7));
    assert!(matches!(&b.sli, Sli::Events { error_query, .. } if error_query.contains("code=~")));
}

#[test]
fn multi_document_files_hold_several_services() {
    let slos = parse_fixture("valid-multidoc.yaml").unwrap();
    let ids: Vec<(&str, &str)> = slos
        .iter()
        .map(|s| (s.service.as_str(), s.name.as_str()))
        .collect();
    assert_eq!(ids, [("auth", "logins"), ("billing", "logins")]);
}

#[test]
fn duplicate_names_are_found_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.yaml");
    let b = dir.path().join("b.yaml");
    let text = std::fs::read_to_string(fixture_dir().join("valid-sloth-raw.yaml")).unwrap();
    std::fs::write(&a, &text).unwrap();
    std::fs::write(&b, &text).unwrap();
    let errs = load_specs(&[a.clone(), b.clone()]).unwrap_err();
    assert_eq!(errs.len(), 1);
    assert_eq!(
        errs[0].to_string(),
        format!(
            "{}:7:5: duplicate SLO \"client-satisfaction\" in service \"office-wifi\", first defined at {}:7:5",
            b.display(),
            a.display()
        )
    );
    let missing = dir.path().join("missing.yaml");
    let errs = load_specs(&[missing]).unwrap_err();
    assert!(
        errs[0].to_string().contains("missing.yaml: cannot read: "),
        "{}",
        errs[0]
    );
}

#[test]
fn shipped_examples_load() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (settings, slos) = load(&root.join("config/errbudget.example.yaml")).unwrap();
    assert_eq!(settings.prometheus.client.url, "http://localhost:9090");
    let mut ids: Vec<(&str, &str)> = slos
        .iter()
        .map(|s| (s.service.as_str(), s.name.as_str()))
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            ("checkout", "requests-availability"),
            ("checkout", "requests-latency"),
            ("public-api", "route-availability"),
        ]
    );
    let latency = slos.iter().find(|s| s.name == "requests-latency").unwrap();
    assert_eq!(latency.period, days(28));
    assert!(matches!(latency.sli, Sli::Latency { threshold, .. } if threshold == 0.3));
    assert_eq!(latency.alerting.windows.len(), 3);
    let routes = slos
        .iter()
        .find(|s| s.name == "route-availability")
        .unwrap();
    let Sli::Events { error_query, .. } = &routes.sli else {
        panic!("events SLI expected");
    };
    assert_eq!(grouping_labels(error_query), ["route"]);
}

#[test]
fn a_glob_matching_nothing_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("errbudget.yaml");
    std::fs::write(
        &cfg,
        "prometheus:\n  url: http://prom:9090\nslo_files:\n  - slos/*.yaml\n",
    )
    .unwrap();
    let errs = load(&cfg).unwrap_err();
    let want = format!(
        "{}:4:5: slo_files: \"slos/*.yaml\" matches no file (looked for {})",
        cfg.display(),
        dir.path().join("slos/*.yaml").display()
    );
    assert_eq!(
        errs.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [want]
    );
}

#[test]
fn empty_or_foreign_documents() {
    assert_eq!(parse_specs("e.yaml", "").unwrap(), []);
    assert_eq!(
        parse_specs("e.yaml", "# only a comment\n---\n").unwrap(),
        []
    );
    let errs = parse_specs(
        "p.yaml",
        "apiVersion: example.com/v1\nkind: ServiceLevelObjective\n",
    )
    .unwrap_err();
    assert_eq!(
        errs[0].to_string(),
        "p.yaml:1:13: apiVersion: unsupported apiVersion \"example.com/v1\": expected sloth.slok.dev/v1, pyrra.dev/v1alpha1, openslo/v1 or openslo/v1alpha"
    );
    let errs = parse_specs("x.yaml", "- 1\n- [a]\n").unwrap_err();
    assert_eq!(errs.len(), 2);
}

#[test]
fn odd_input_never_panics() {
    let inputs = [
        "version: prometheus/v1\nslos: 3\n",
        "version: \"prometheus/v1\"\nservice: s\nslos:\n  - name: [x]\n    objective: {a: 1}\n    sli: 7\n",
        "version: \"prometheus/v1\"\nservice: s\nslos:\n  - name: a\n    objective: .nan\n    sli: {latency: {metric: '', threshold: 1e400}}\n",
        "a: &x [*x]\n",
        "? [a, b]\n: c\n",
        "!!binary abc",
        "version: \"prometheus/v1\"\nservice: s\nslos:\n  - name: a\n    objective: 99\n    sli: {events: {error_query: '{{', total_query: '}}{{.window'}}\n",
        "apiVersion: openslo/v1\nkind: SLO\nspec: {objectives: [], timeWindow: []}\n",
        "\u{feff}\t\0",
    ];
    for text in inputs {
        let _ = parse_specs("odd.yaml", text);
    }
}

/// Fuzzing the spec and settings parsers: any text gives SLOs or
/// diagnostics, never a panic, and every diagnostic points inside the file.
mod fuzz {
    use super::*;
    use crate::fuzzing::{corpus, mutated};
    use proptest::prelude::*;

    fn check(bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        // YAML breaks lines at \n, \r\n and a lone \r.
        let lines = text
            .replace("\r\n", "\n")
            .replace('\r', "\n")
            .split('\n')
            .count();
        if let Err(diags) = parse_specs("f.yaml", &text) {
            assert!(!diags.is_empty(), "an error without a diagnostic");
            for d in diags {
                assert!(d.line <= lines, "{d} is past the end ({lines} lines)");
                assert!(!d.message.is_empty());
            }
        }
        if let Err(diags) = crate::config::parse_settings("/etc/errbudget.yaml", &text) {
            assert!(!diags.is_empty(), "an error without a diagnostic");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1_500, ..ProptestConfig::default() })]

        #[test]
        fn mutated_specs_never_panic(bytes in mutated(corpus("specs"), 10)) {
            check(&bytes);
        }

        #[test]
        fn random_text_never_panics(text in "\\PC{0,300}") {
            check(text.as_bytes());
        }
    }
}

#[test]
fn an_unexpected_end_of_file_points_at_the_last_line() {
    let d = parse_specs("f.yaml", "%!").unwrap_err();
    assert_eq!((d[0].line, d[0].column), (1, 3), "{}", d[0]);
    let d = parse_specs("f.yaml", "slos:\n  - name: [a,\n").unwrap_err();
    assert_eq!(d[0].line, 2, "{}", d[0]);
}

fn window(sev: Severity, long: u64, short: u64, factor: f64) -> crate::model::AlertWindow {
    crate::model::AlertWindow {
        severity: sev,
        long: crate::model::Window::from_secs(long).unwrap(),
        short: crate::model::Window::from_secs(short).unwrap(),
        factor,
        min_bad_events: None,
    }
}

fn label_map(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Pyrra's four indicators and its window table (slo/rules.go `Windows`:
/// period/672 and /8064 ×14, /112 and /1344 ×7, /28 and /336 ×2, /7 and
/// /112 ×1, rounded to the minute; critical pages, warning tickets).
#[test]
fn pyrra_objectives_map_to_the_model() {
    let slos = parse_fixture("valid-pyrra.yaml").unwrap();
    let ids: Vec<(&str, &str)> = slos
        .iter()
        .map(|s| (s.service.as_str(), s.name.as_str()))
        .collect();
    assert_eq!(
        ids,
        [
            ("storefront", "api-errors"),
            ("storefront", "api-latency"),
            ("connect-latency", "connect-latency"),
            ("edge", "probes"),
        ]
    );
    let (p, t) = (Severity::Page, Severity::Ticket);
    let d = 86_400;
    let ratio = &slos[0];
    assert_eq!(ratio.objective.percent(), 99.5);
    assert_eq!(ratio.period, days(28));
    assert_eq!(
        ratio.sli,
        Sli::Events {
            error_query:
                r#"sum by (route) (rate(http_requests_total{code=~"5..",job="api"}[{{.window}}]))"#
                    .into(),
            total_query: r#"sum by (route) (rate(http_requests_total{job="api"}[{{.window}}]))"#
                .into(),
        }
    );
    // Only `pyrra.dev/` labels and annotations are propagated, prefix cut.
    assert_eq!(ratio.labels, label_map(&[("team", "web")]));
    assert_eq!(
        ratio.alerting.annotations,
        label_map(&[("runbook", "https://runbooks.example/api")])
    );
    assert_eq!(ratio.alerting.name, "ApiErrorBudgetBurn");
    assert_eq!(ratio.alerting.labels, label_map(&[("job", "api")]));
    assert_eq!(
        ratio.alerting.page_labels,
        label_map(&[("severity", "critical")])
    );
    assert_eq!(
        ratio.alerting.ticket_labels,
        label_map(&[("severity", "warning")])
    );
    assert_eq!(
        ratio.alerting.windows,
        [
            window(p, 3_600, 300, 14.0),
            window(p, 6 * 3_600, 1_800, 7.0),
            window(t, d, 7_200, 2.0),
            window(t, 4 * d, 6 * 3_600, 1.0),
        ]
    );
    // A bucket and count of one histogram: errbudget's latency SLI. At 90 %
    // the ×14 pair needs an error ratio above 1.4 and is left out.
    let latency = &slos[1];
    assert_eq!(
        latency.sli,
        Sli::Latency {
            metric: "http_request_duration_seconds".into(),
            selector: r#"{job="api"}"#.into(),
            threshold: 0.25,
        }
    );
    assert_eq!(latency.alerting.windows.len(), 3);
    assert_eq!(latency.alerting.windows[0].factor, 7.0);
    // Native histograms; 7d windows: 15m/1m, 1h30m/8m (7.5m rounds up),
    // 6h/30m, 1d/1h30m. `burnrates: false` switches alerts off.
    let native = &slos[2];
    assert_eq!(
        native.sli,
        Sli::Events {
            error_query: r#"histogram_count(sum by (method) (rate(connect_duration_seconds{job="connect"}[{{.window}}]))) * (1 - histogram_fraction(0, 0.2, sum by (method) (rate(connect_duration_seconds{job="connect"}[{{.window}}]))))"#.into(),
            total_query: r#"histogram_count(sum by (method) (rate(connect_duration_seconds{job="connect"}[{{.window}}])))"#.into(),
        }
    );
    assert_eq!(
        native.alerting.windows,
        [
            window(p, 900, 60, 14.0),
            window(p, 5_400, 480, 7.0),
            window(t, 6 * 3_600, 1_800, 2.0),
            window(t, d, 5_400, 1.0),
        ]
    );
    assert!(!native.alerting.page_enabled && !native.alerting.ticket_enabled);
    let probes = &slos[3];
    assert_eq!(
        probes.sli,
        Sli::Raw {
            error_ratio_query: r#"1 - (sum by (instance) (sum_over_time(probe_success{job="blackbox"}[{{.window}}])) / sum by (instance) (count_over_time(probe_success{job="blackbox"}[{{.window}}])))"#.into(),
        }
    );
    assert_eq!(
        probes.alerting.page_labels,
        label_map(&[("severity", "sev1")])
    );
}

/// An SLO, its SLI and its alert policy in three files of one directory:
/// references resolve across files, conditions become window pairs.
#[test]
fn openslo_objects_resolve_across_files() {
    let slos = load_specs(&[fixture_dir().join("openslo-refs")]).unwrap();
    assert_eq!(slos.len(), 1);
    let s = &slos[0];
    assert_eq!(
        (s.service.as_str(), s.name.as_str()),
        ("checkout", "checkout-availability")
    );
    assert_eq!(s.objective.percent(), 99.9);
    assert_eq!(
        s.sli,
        Sli::Events {
            error_query: r#"(sum(rate(http_requests_total{job="checkout"}[{{.window}}]))) - (sum(rate(http_requests_total{code!~"5..",job="checkout"}[{{.window}}])))"#.into(),
            total_query: r#"sum(rate(http_requests_total{job="checkout"}[{{.window}}]))"#.into(),
        }
    );
    // lookbackWindow 1h, alertAfter 5m; 3d without alertAfter: 3d/12 = 6h.
    assert_eq!(
        s.alerting.windows,
        [
            window(Severity::Page, 3_600, 300, 14.0),
            window(Severity::Ticket, 3 * 86_400, 6 * 3_600, 1.0)
        ]
    );
    assert_eq!(
        s.alerting.page_labels,
        label_map(&[("notification_target", "pager")])
    );
    assert_eq!(
        s.alerting.ticket_labels,
        label_map(&[("notification_target", "tickets")])
    );
    assert!(s.origin.file.ends_with("slo.yaml"), "{}", s.origin);
}

/// A query in another file than its SLO is reported in that file.
#[test]
fn problems_in_a_referenced_sli_point_at_its_file() {
    let slo = std::fs::read_to_string(fixture_dir().join("openslo-refs/slo.yaml")).unwrap();
    let alerts = std::fs::read_to_string(fixture_dir().join("openslo-refs/alerts.yaml")).unwrap();
    let sli = "apiVersion: openslo/v1\nkind: SLI\nmetadata:\n  name: checkout-good-requests\nspec:\n  ratioMetric:\n    bad:\n      metricSource:\n        spec:\n          query: sum(rate(errors[{{.window}}])\n    total:\n      metricSource:\n        spec:\n          query: sum(rate(requests[{{.window}}]))\n";
    let errs = parse_sources(&[
        ("slo.yaml", &slo),
        ("sli.yaml", sli),
        ("alerts.yaml", &alerts),
    ])
    .unwrap_err();
    let msgs: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(
        msgs,
        ["sli.yaml:10:18: SLI \"checkout-good-requests\".spec.ratioMetric.bad.metricSource.spec.query: invalid PromQL: unclosed left parenthesis"]
    );
}

#[test]
fn openslo_raw_ratio_and_threshold_latency() {
    let slos = parse_fixture("valid-openslo-indicators.yaml").unwrap();
    assert_eq!(
        slos[0].sli,
        Sli::Raw {
            error_ratio_query: "1 - (avg_over_time(wifi_client_satisfaction_ratio[{{.window}}]))"
                .into()
        }
    );
    assert_eq!(slos[0].period, days(28));
    assert_eq!(
        slos[1].sli,
        Sli::Latency {
            metric: "search_request_duration_seconds".into(),
            selector: r#"{job="search"}"#.into(),
            threshold: 0.5,
        }
    );
}

/// Sloth's reading of `openslo/v1alpha`: one SLO per objective named
/// NAME-INDEX, days as the period, no alerts.
#[test]
fn openslo_v1alpha_reads_as_sloth_does() {
    let slos = parse_fixture("valid-openslo-v1alpha.yaml").unwrap();
    let names: Vec<&str> = slos.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["api-requests-0", "api-requests-1"]);
    assert_eq!(slos[1].objective.percent(), 99.0);
    assert_eq!(slos[0].period, days(28));
    assert_eq!(slos[0].description, "Requests without errors");
    assert!(!slos[0].alerting.page_enabled && !slos[0].alerting.ticket_enabled);
    assert_eq!(
        slos[0].sli,
        Sli::Events {
            error_query: r#"(sum(rate(http_requests_total{job="api"}[{{.window}}]))) - (sum(rate(http_requests_total{job="api",code!~"5.."}[{{.window}}])))"#.into(),
            total_query: r#"sum(rate(http_requests_total{job="api"}[{{.window}}]))"#.into(),
        }
    );
}

/// A directory is read recursively (`.yml` and `.yaml` only); the 7d
/// catalogue applies to the 7d SLO, the 30d one keeps the default policy.
#[test]
fn alert_window_catalogues_are_chosen_by_period() {
    let slos = load_specs(&[fixture_dir().join("catalogue")]).unwrap();
    let weekly = slos.iter().find(|s| s.name == "weekly").unwrap();
    // Sloth's examples/windows/7d.yaml: 8 % in 1h, 12.5 % in 6h, 20 % in
    // 1d, 42 % in 3d of a 168 h period.
    let f: Vec<f64> = weekly.alerting.windows.iter().map(|w| w.factor).collect();
    let want = [13.44, 3.5, 1.4, 0.98];
    assert_eq!(f.len(), 4);
    for (g, w) in f.iter().zip(want) {
        assert!((g - w).abs() < 1e-9, "{f:?}");
    }
    let monthly = slos.iter().find(|s| s.name == "monthly").unwrap();
    assert_eq!(
        monthly.alerting.windows,
        crate::model::default_policy(days(30))
    );
}

#[test]
fn a_glob_may_name_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("errbudget.yaml");
    std::fs::write(
        &cfg,
        format!(
            "prometheus:\n  url: http://prom:9090\nslo_files:\n  - {}\n",
            fixture_dir().join("openslo-refs").display()
        ),
    )
    .unwrap();
    let (_, slos) = load(&cfg).unwrap();
    assert_eq!(slos.len(), 1);
}

/// A file with no document at all is a mistake; one holding only OpenSLO
/// objects or a catalogue defines something (see the directory tests).
#[test]
fn a_file_that_defines_nothing_is_reported() {
    let path = fixture_dir().join("invalid-empty.yaml");
    let errs = load_specs(std::slice::from_ref(&path)).unwrap_err();
    assert_eq!(
        errs.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [format!(
            "{}: defines nothing: expected Sloth prometheus/v1, a Sloth PrometheusServiceLevel or AlertWindows, a Pyrra ServiceLevelObjective or OpenSLO objects",
            path.display()
        )]
    );
}

#[test]
fn calendar_periods_and_maintenance_windows_load_from_sloth_and_openslo() {
    use crate::calendar::Unit;
    use crate::exclusion::When;
    let slos = parse_fixture("valid-calendar-month.yaml").unwrap();
    let [slo] = slos.as_slice() else {
        panic!("one SLO expected, got {}", slos.len());
    };
    let cal = slo.calendar.expect("a calendar period");
    assert_eq!((cal.unit, cal.tz), (Unit::Month, chrono_tz::Europe::Berlin));
    // Factors are scaled to the nominal 30 days: 2% of it in 1h is 14.4.
    assert_eq!(slo.period.as_secs(), 30 * 86_400);
    assert!((slo.alerting.windows[0].factor - 14.4).abs() < 1e-9);
    // The service's window first, then the SLO's own.
    assert_eq!(slo.exclusions.len(), 2);
    assert_eq!(slo.exclusions[0].reason, "weekly OS patching");
    assert!(matches!(
        slo.exclusions[0].when,
        When::Recurring {
            duration: 7_200,
            ..
        }
    ));
    assert_eq!(
        slo.exclusions[1].when,
        When::Once {
            start: 1_794_693_600, // 2026-11-14T22:00:00Z
            end: 1_794_708_000    // 2026-11-15T02:00:00Z
        }
    );

    let slos = parse_fixture("valid-openslo-calendar.yaml").unwrap();
    let cal = slos[0].calendar.expect("a calendar period");
    assert_eq!(
        (cal.unit, cal.tz),
        (Unit::Month, chrono_tz::America::New_York)
    );
}

#[test]
fn policy_override_reads_users_and_a_duration_and_converts_back() {
    let spec = |policy: &str, key: &str| {
        format!(
            "version: \"prometheus/v1\"\nservice: checkout\nslos:\n  - name: avail\n    objective: 99.9\n    sli:\n      events:\n        error_query: sum(rate(e[{{{{.window}}}}]))\n        total_query: sum(rate(t[{{{{.window}}}}]))\n    policy:\n      release_freeze_below: 0.1\n      {key}:\n{policy}"
        )
    };
    let slos = parse_specs(
        "s.yaml",
        &spec(
            "        allowed_users: [alice, bob]\n        max_duration: 24h\n",
            "override",
        ),
    )
    .unwrap();
    let rules = &slos[0].override_rules;
    assert_eq!(
        rules.allowed_users.as_deref(),
        Some(&["alice".to_string(), "bob".to_string()][..])
    );
    assert_eq!(rules.max_duration, Some(Duration::from_secs(86_400)));
    // `convert` writes it out, and what it writes reads the same.
    let converted = crate::convert::render(&slos);
    assert!(
        converted.contains(
            "      override:\n        allowed_users: [alice, bob]\n        max_duration: 1d\n"
        ),
        "{converted}"
    );
    assert_eq!(
        parse_specs("c.yaml", &converted).unwrap()[0].override_rules,
        *rules
    );
    let errs: Vec<String> = parse_specs(
        "s.yaml",
        &spec(
            "        allowed_users: [\"\"]\n        max_duration: soon\n        who: x\n",
            "override",
        ),
    )
    .unwrap_err()
    .iter()
    .map(|d| d.to_string())
    .collect();
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(errs[0].contains("empty user name"), "{errs:?}");
    assert!(errs[1].contains("max_duration"), "{errs:?}");
    assert!(errs[2].contains("unknown field \"who\""), "{errs:?}");
    // Without the block: anyone, the default duration.
    let plain = parse_specs(
        "s.yaml",
        &spec("", "x_unused").replace("      x_unused:\n", ""),
    )
    .unwrap();
    assert_eq!(plain[0].override_rules, Default::default());
}
