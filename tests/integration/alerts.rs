//! Alert delivery: a service burning its budget now pages through a real
//! Alertmanager with the docs/interface.md labels and annotations.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::events::{Series, Traffic, MINUTE};
use crate::fixtures::{slo, spec};
use crate::harness::day_ending_now;
use crate::harness::{poll, Alertmanager, Daemon, Prometheus, Workspace};

/// One day of data ending at the current minute; the last 70 minutes at
/// 40% errors, so at "now" every default window pair burns far above its
/// factor (1h ≈ 400×, 5m ≈ 400× against 14.4).
pub fn burning_world() -> Prometheus {
    let (prom, _) = day_ending_now(|end| {
        vec![Series {
            service: "burning",
            labels: vec![],
            traffic: Traffic::Steady {
                base: 500,
                spread: 50,
                p: 0.001,
                incidents: vec![(end - 70 * MINUTE, end, 0.4)],
            },
            resets: vec![],
            seed: 21,
            histogram: false,
        }]
    });
    prom
}

#[test]
fn burning_budget_pages_through_alertmanager() {
    let prom = burning_world();
    let am = Alertmanager::start();
    let ws = Workspace::new();
    let extra = format!(
        "alerting:\n  alertmanagers:\n    - url: {}\n  resend_interval: 1m\n",
        am.url()
    );
    let cfg = ws.config_with(
        &prom.url(),
        "2s",
        &extra,
        &[(
            "burning.yaml",
            &spec(
                "burning",
                "sre",
                &[slo("availability", "99.9", "burning", false)],
            ),
        )],
    );
    let d = Daemon::start(&cfg);

    // First the decision, visible on /metrics, then its delivery.
    let firing = poll(Duration::from_secs(60), || {
        let m = d.get("/metrics").body;
        m.lines()
            .any(|l| {
                l.starts_with("slo_alert_firing{")
                    && l.contains("long_window=\"1h\"")
                    && l.contains("short_window=\"5m\"")
                    && l.ends_with(" 1")
            })
            .then_some(())
    });
    assert!(
        firing.is_some(),
        "slo_alert_firing for 1h/5m never 1:\n{}",
        d.get("/metrics").body
    );

    let page = poll(Duration::from_secs(30), || {
        am.alerts().into_iter().find(|a| {
            let l = &a["labels"];
            l["long_window"] == "1h" && l["short_window"] == "5m"
        })
    })
    .unwrap_or_else(|| {
        panic!(
            "no 1h/5m alert reached Alertmanager within 30s; got {:?}\n{}",
            am.alerts(),
            d.guard.log_tail()
        )
    });
    let l = &page["labels"];
    for (k, v) in [
        ("alertname", "burningHighErrorRate"),
        ("service", "burning"),
        ("slo", "availability"),
        ("severity", "page"),
        ("team", "sre"),
    ] {
        assert_eq!(l[k].as_str(), Some(v), "label {k} of {page}");
    }
    for k in [
        "summary",
        "description",
        "burn_rate",
        "error_budget_remaining",
    ] {
        assert!(
            page["annotations"][k]
                .as_str()
                .is_some_and(|s| !s.is_empty()),
            "annotation {k} of {page}"
        );
    }
    // Each window pair is its own alert: all four default pairs fire here.
    let pairs = poll(Duration::from_secs(30), || {
        let got: Vec<(String, String)> = am
            .alerts()
            .iter()
            .map(|a| {
                (
                    a["labels"]["long_window"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                    a["labels"]["short_window"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                )
            })
            .collect();
        let want = [("1h", "5m"), ("6h", "30m"), ("1d", "2h"), ("3d", "6h")];
        want.iter()
            .all(|(l, s)| got.iter().any(|(a, b)| a == l && b == s))
            .then_some(got)
    });
    assert!(
        pairs.is_some(),
        "not every window pair fired: {:?}",
        am.alerts()
    );
}

// ---------------------------------------------------------------------------
// Live: a synthetic service scraped every second by a real Prometheus, the
// daemon evaluating every second, a real Alertmanager. The policy is scaled
// down (1h period, 30s/10s windows) so a whole incident fits in a minute.
// ---------------------------------------------------------------------------

/// Requests per second of the synthetic service.
const RATE: u64 = 50;
/// Objective 90%: an error budget of b = 0.1.
const BUDGET: f64 = 0.1;
/// Scrape and evaluation intervals, seconds.
const SCRAPE: f64 = 1.0;
const EVAL: f64 = 1.0;
/// The page pair, and a ticket pair with a different detection time.
const PAGE: (&str, f64, &str, f64, f64) = ("page", 30.0, "10s", 10.0, 2.0);
const TICKET: (&str, f64, &str, f64, f64) = ("ticket", 40.0, "10s", 10.0, 1.75);
const EXTERNAL_URL: &str = "http://errbudget.example:9465";

/// The live spec: service `shop`, one SLO `availability` over the synthetic
/// service's counters, with spec, alerting, page and ticket labels and
/// annotations so the test can check each reaches Alertmanager. `windows`
/// is the YAML flow list of window pairs.
fn shop_spec(slos: &[(&str, &str)]) -> String {
    let mut s = String::from(
        "version: \"prometheus/v1\"\nservice: \"shop\"\nlabels:\n  team: \"web\"\nslos:\n",
    );
    for (name, windows) in slos {
        s.push_str(&format!(
            r#"  - name: "{name}"
    objective: 90
    period: 1h
    description: "shop requests served without a 5xx"
    sli:
      events:
        error_query: 'sum(rate(http_requests_total{{job="shop",code="500"}}[{{{{.window}}}}]))'
        total_query: 'sum(rate(http_requests_total{{job="shop"}}[{{{{.window}}}}]))'
    alerting:
      name: "ShopErrorBudgetBurn"
      labels:
        category: "availability"
      annotations:
        runbook: "https://runbooks.example/shop"
      page_alert:
        labels:
          pager: "shop-oncall"
        annotations:
          escalation: "call the shop on-call"
      ticket_alert:
        labels:
          queue: "shop-tickets"
      windows:
{windows}"#
        ));
    }
    s
}

fn pair_yaml(p: (&str, f64, &str, f64, f64), extra: &str) -> String {
    format!(
        "        - {{severity: {}, long: {}s, short: {}, factor: {}{extra}}}\n",
        p.0, p.1, p.2, p.4
    )
}

/// Theoretical detection delay of a window pair for errors switched on at
/// ratio `e` on steady traffic: a window W holds errors for d of its W
/// seconds, ratio e·d/W, which passes f·b at d = f·b·W/e; both windows must.
fn theory(p: (&str, f64, &str, f64, f64), e: f64) -> f64 {
    let (_, long, _, short, f) = p;
    (f * BUDGET * long / e).max(f * BUDGET * short / e)
}

struct LiveRig {
    svc: crate::synthetic::Service,
    prom: Prometheus,
    daemon: Daemon,
    _ws: Workspace,
}

/// Service, a Prometheus scraping it and the daemon every second, and the
/// daemon pointed at `alertmanager_url` (plus `extra_alerting` lines, where
/// `HOOK` stands for the service's URL, so it can be a webhook).
fn live_rig(alertmanager_url: &str, extra_alerting: &str, specs: &str, fraction: f64) -> LiveRig {
    let svc = crate::synthetic::Service::start(RATE);
    svc.set_errors(fraction);
    let daemon_port = crate::harness::free_port();
    let prom = Prometheus::scraping(
        &[
            ("shop", svc.addr),
            ("errbudget", crate::harness::loopback(daemon_port)),
        ],
        "1s",
    );
    let ws = Workspace::new();
    let extra = format!(
        "alerting:\n  alertmanagers:\n    - url: {alertmanager_url}\n  resend_interval: 2s\n\
         \x20 evaluation_failing_after: 3s\n{}web:\n  external_url: {EXTERNAL_URL}/\n",
        extra_alerting.replace("HOOK", &svc.url())
    );
    let cfg = ws.config_with(&prom.url(), "1s", &extra, &[("shop.yaml", specs)]);
    let daemon = Daemon::start_on(&cfg, daemon_port);
    LiveRig {
        svc,
        prom,
        daemon,
        _ws: ws,
    }
}

impl LiveRig {
    /// Waits (bounded) until Prometheus holds `secs` seconds of samples of
    /// the service, so every window up to that length is full of data.
    fn wait_history(&self, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs + 30);
        loop {
            let n = self.prom.query_value(
                &format!(
                    "count_over_time(http_requests_total{{job=\"shop\",code=\"200\"}}[{secs}s])"
                ),
                unix_now_secs(),
            );
            // One sample per second over `secs` seconds.
            if n.is_some_and(|n| n >= secs as f64) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus did not collect {secs}s of samples in time\n{}",
                self.prom.guard.log_tail()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// A value the daemon exposes on /metrics right now.
    fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let body = self.daemon.get("/metrics").body;
        body.lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{'))
            .find(|l| {
                labels
                    .iter()
                    .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
            })
            .and_then(|l| l.rsplit_once(' '))
            .and_then(|(_, v)| v.parse().ok())
    }
}

fn unix_now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

fn unix_f(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

fn rfc3339_secs(v: &Value) -> f64 {
    let s = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    unix_f(humantime::parse_rfc3339_weak(s).unwrap_or_else(|e| panic!("time {s}: {e}")))
}

/// Alertmanager's active alerts of service `shop` with `severity`.
fn shop_alerts(am: &Alertmanager, alertname: &str, severity: &str) -> Vec<Value> {
    am.alerts()
        .into_iter()
        .filter(|a| {
            a["labels"]["service"] == "shop"
                && a["labels"]["alertname"] == alertname
                && a["labels"]["severity"] == severity
        })
        .collect()
}

fn labels_of(a: &Value) -> BTreeMap<String, String> {
    serde_json::from_value(a["labels"].clone()).expect("labels map")
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The Alertmanager configuration in `docs/alerts.md` (the yaml block after
/// the `alertmanager.yml` marker), with every receiver URL pointed at a
/// closed loopback port so nothing leaves the machine.
fn docs_alertmanager_config() -> String {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/alerts.md"))
        .expect("read docs/alerts.md");
    let from = doc
        .find("<!-- alertmanager.yml -->")
        .expect("docs/alerts.md has an `<!-- alertmanager.yml -->` marker");
    let rest = &doc[from..];
    let start = rest.find("```yaml\n").expect("yaml block after the marker") + 8;
    let end = start + rest[start..].find("```").expect("end of the yaml block");
    let closed = format!("http://127.0.0.1:{}/", crate::harness::free_port());
    rest[start..end]
        .lines()
        .map(|l| match l.split_once("url: ") {
            Some((head, _)) => format!("{head}url: {closed}"),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// Requirement: a live incident pages through Alertmanager with every
/// docs/interface.md label and annotation, within the policy's theoretical detection
/// delay, and resolves when the errors stop; a burst too short to lift the
/// long window over the factor never pages. The Alertmanager runs the
/// routing and inhibition example of docs/alerts.md, and the ticket of the
/// same SLO must be inhibited while the page fires.
#[test]
fn live_incident_pages_in_theoretical_time_and_short_burst_never_pages() {
    let am = Alertmanager::start_with(crate::harness::free_port(), &docs_alertmanager_config());
    let windows = pair_yaml(PAGE, "") + &pair_yaml(TICKET, "");
    let rig = live_rig(
        &am.url(),
        "",
        &shop_spec(&[("availability", &windows)]),
        0.0,
    );
    let page_w = format!("{}s", PAGE.1);
    let ticket_w = format!("{}s", TICKET.1);

    // Both long windows full of clean data before anything happens.
    rig.wait_history(TICKET.1 as u64 + 1);
    let page_labels = |l: &[(&str, &str)]| {
        l.iter().all(|(k, v)| {
            rig.metric("slo_alert_firing", &[("slo", "availability"), (k, v)])
                .is_some()
        })
    };
    assert!(
        page_labels(&[("long_window", &page_w), ("short_window", PAGE.2)]),
        "slo_alert_firing for the page pair missing:\n{}",
        rig.daemon.get("/metrics").body
    );

    // --- A 3 s burst of 100% errors. Theory: the long windows peak at
    // 3/30 = 0.10 (page) and 3/40 = 0.075 (ticket), under f·b = 0.2 and
    // 0.175, so nothing may fire even though the 10 s short windows reach
    // 0.3, above both thresholds.
    let burst = 3.0;
    let (burst_on, _) = rig.svc.set_errors(1.0);
    std::thread::sleep(Duration::from_secs_f64(burst));
    rig.svc.set_errors(0.0);
    let burst_secs = burst_on.elapsed().as_secs_f64();
    let (_, bad) = rig.svc.counts();
    // Watch until the burst left the longest window, plus two cycles.
    let watch = TICKET.1 + 2.0 * (SCRAPE + EVAL);
    let watch_until = burst_on + Duration::from_secs_f64(burst_secs + watch);
    while Instant::now() < watch_until {
        let any: Vec<Value> = am
            .alerts()
            .into_iter()
            .filter(|a| a["labels"]["service"] == "shop")
            .collect();
        assert!(
            any.is_empty(),
            "a {burst_secs:.1}s burst ({bad} bad requests) must not alert, got {any:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The burst was seen (the check above is not vacuous): Prometheus,
    // scraping the daemon, holds its burn rates over the watch.
    let span = (watch + burst_secs + 2.0).ceil() as i64;
    let peak = |w: &str| {
        rig.prom
            .query_value(
                &format!(
                    "max_over_time(slo_burn_rate{{slo=\"availability\",window=\"{w}\"}}[{span}s])"
                ),
                unix_now_secs(),
            )
            .unwrap_or_else(|| panic!("no slo_burn_rate{{window=\"{w}\"}} scraped from the daemon"))
    };
    let fired = rig
        .prom
        .query_value(
            &format!("max_over_time(slo_alert_firing{{slo=\"availability\"}}[{span}s])"),
            unix_now_secs(),
        )
        .expect("slo_alert_firing scraped from the daemon");
    let (p_long, p_short, t_long) = (peak(&page_w), peak(PAGE.2), peak(&ticket_w));
    eprintln!(
        "burst {burst_secs:.2}s at 100%: peak burn {page_w} {p_long:.2} (theory {:.2}), \
         {ticket_w} {t_long:.2} (theory {:.2}), {} {p_short:.2} (theory {:.2}); \
         max slo_alert_firing {fired}",
        burst / PAGE.1 / BUDGET,
        burst / TICKET.1 / BUDGET,
        PAGE.2,
        burst / PAGE.3 / BUDGET,
    );
    assert!(
        p_short > PAGE.4 && p_short > TICKET.4,
        "the short window must have seen the burst above both factors: {p_short}"
    );
    assert!(
        p_long > 0.5 && p_long < PAGE.4 && t_long < TICKET.4,
        "long windows saw the burst under the factors: {p_long} {t_long}"
    );
    assert_eq!(fired, 0.0, "the burst must never fire an alert");

    // --- An incident: 50% errors from now on. Detection delay, measured
    // from the switch to the alert showing in Alertmanager's API.
    let e = 0.5;
    let (on, on_wall) = rig.svc.set_errors(e);
    let mut arrived: BTreeMap<&str, (f64, Value)> = BTreeMap::new();
    let deadline = on + Duration::from_secs(60);
    while arrived.len() < 2 && Instant::now() < deadline {
        for (sev, w) in [("page", &page_w), ("ticket", &ticket_w)] {
            if arrived.contains_key(sev) {
                continue;
            }
            if let Some(a) = shop_alerts(&am, "ShopErrorBudgetBurn", sev)
                .into_iter()
                .find(|a| a["labels"]["long_window"] == w.as_str())
            {
                arrived.insert(sev, (on.elapsed().as_secs_f64(), a));
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for sev in ["page", "ticket"] {
        assert!(
            arrived.contains_key(sev),
            "no {sev} within 60s of {e} errors; Alertmanager has {:?}\n{}",
            am.alerts(),
            rig.daemon.guard.log_tail()
        );
    }
    // Bounds: the windows are read by Prometheus from 1 s scrapes
    // (a switch is seen up to one scrape late, and rate() over a window of
    // N samples spans W − 1 s to W, so up to one scrape early), the daemon
    // evaluates every 1 s at whole seconds (up to one evaluation interval
    // plus 1 s of truncation late), and delivery through the dispatcher's
    // queue into Alertmanager and our 100 ms poll of its API adds a little
    // more: 3 s of slack for that on 2 shared cores. So
    // theory − scrape ≤ measured ≤ theory + scrape + eval + 1 s + 3 s.
    // startsAt is the decision's own time: the same bounds without the
    // delivery slack.
    for (sev, pair) in [("page", PAGE), ("ticket", TICKET)] {
        let (measured, a) = &arrived[sev];
        let th = theory(pair, e);
        let starts = rfc3339_secs(&a["startsAt"]) - unix_f(on_wall);
        eprintln!(
            "detection {sev} {}s/{}: theory {th:.1}s, measured arrival {measured:.1}s, \
             startsAt − switch {starts:.1}s",
            pair.1, pair.2
        );
        let (lo, hi) = (th - SCRAPE, th + SCRAPE + EVAL + 1.0 + 3.0);
        assert!(
            *measured >= lo && *measured <= hi,
            "{sev} detection {measured:.1}s outside [{lo:.1}, {hi:.1}] (theory {th:.1}s)"
        );
        // startsAt is a whole second, so up to 1 s early.
        let (slo_, shi) = (th - SCRAPE - 1.0, th + SCRAPE + EVAL + 1.0);
        assert!(
            starts >= slo_ && starts <= shi,
            "{sev} startsAt {starts:.1}s after the switch, outside [{slo_:.1}, {shi:.1}]"
        );
    }

    // The page as Alertmanager shows it: exactly the docs/interface.md labels.
    let (_, page) = &arrived["page"];
    assert_eq!(
        labels_of(page),
        map(&[
            ("alertname", "ShopErrorBudgetBurn"),
            ("service", "shop"),
            ("slo", "availability"),
            ("severity", "page"),
            ("long_window", "30s"),
            ("short_window", "10s"),
            ("team", "web"),
            ("category", "availability"),
            ("pager", "shop-oncall"),
        ]),
        "page labels: {page}"
    );
    let ann = &page["annotations"];
    let text = |k: &str| {
        ann[k]
            .as_str()
            .unwrap_or_else(|| panic!("annotation {k} missing: {page}"))
            .to_string()
    };
    assert!(
        text("summary").starts_with("shop/availability: error budget burning"),
        "summary: {}",
        text("summary")
    );
    assert!(
        text("description").contains("above 2.00 over both 30s and 10s"),
        "description: {}",
        text("description")
    );
    let burn: f64 = text("burn_rate").parse().expect("burn_rate is a number");
    assert!(
        burn > PAGE.4 && burn <= e / BUDGET * 1.1,
        "burn_rate {burn}: above the factor, at most the injected {}",
        e / BUDGET
    );
    let remaining: f64 = text("error_budget_remaining")
        .parse()
        .expect("error_budget_remaining is a number");
    assert!(
        remaining < 1.0 && remaining > -10.0,
        "error_budget_remaining {remaining}"
    );
    assert_eq!(text("runbook"), "https://runbooks.example/shop");
    assert_eq!(text("escalation"), "call the shop on-call");
    assert_eq!(
        page["generatorURL"],
        format!("{EXTERNAL_URL}/slo/shop/availability").as_str()
    );
    let (_, ticket) = &arrived["ticket"];
    assert_eq!(ticket["labels"]["queue"], "shop-tickets", "{ticket}");
    assert!(ticket["labels"]["pager"].is_null(), "{ticket}");
    eprintln!("example page in Alertmanager: {page:#}");

    // docs/alerts.md's inhibit rule: while the page fires, the ticket of
    // the same service and SLO is muted.
    let inhibited = poll(Duration::from_secs(10), || {
        shop_alerts(&am, "ShopErrorBudgetBurn", "ticket")
            .into_iter()
            .find(|t| {
                t["status"]["inhibitedBy"]
                    .as_array()
                    .is_some_and(|by| by.iter().any(|f| *f == page["fingerprint"]))
            })
    });
    assert!(
        inhibited.is_some(),
        "ticket not inhibited by the page: {:?}",
        am.alerts()
    );
    assert!(
        page["status"]["inhibitedBy"]
            .as_array()
            .is_some_and(|v| v.is_empty()),
        "the page itself must not be inhibited: {page}"
    );

    // --- Errors stop: the short windows fall under their factors within
    // 10·(1 − f·b/e) s (6 s page, 6.5 s ticket), and the resolved
    // notification ends the alert in Alertmanager.
    let (off, _) = rig.svc.set_errors(0.0);
    let resolved = poll(Duration::from_secs(30), || {
        let now = unix_f(SystemTime::now());
        shop_alerts(&am, "ShopErrorBudgetBurn", "page")
            .iter()
            .all(|a| rfc3339_secs(&a["endsAt"]) <= now)
            .then_some(off.elapsed().as_secs_f64())
    });
    let resolved = resolved.unwrap_or_else(|| {
        panic!(
            "page still active 30s after the errors stopped: {:?}",
            am.alerts()
        )
    });
    eprintln!(
        "resolved {resolved:.1}s after the errors stopped (theory {:.1}s)",
        PAGE.3 * (1.0 - PAGE.4 * BUDGET / e)
    );
    assert_eq!(
        rig.metric(
            "slo_alert_firing",
            &[("slo", "availability"), ("severity", "page")]
        ),
        Some(0.0)
    );
}

/// Webhook bodies' alerts (version 4 format) that are firing pages.
fn hook_pages(svc: &crate::synthetic::Service) -> Vec<(SystemTime, Value)> {
    let mut out = vec![];
    for (at, body) in svc.posts() {
        for a in body["alerts"].as_array().cloned().unwrap_or_default() {
            if a["status"] == "firing"
                && a["labels"]["severity"] == "page"
                && a["labels"]["alertname"] == "ShopErrorBudgetBurn"
            {
                out.push((at, a));
            }
        }
    }
    out
}

/// Requirement: errbudget runs while its Alertmanager is down (the port is
/// reserved, nothing listens); the page is decided, its notifications fail
/// and are retried; once Alertmanager starts on that port the page arrives
/// exactly once, as the same incident: its startsAt is the decided start
/// (seen by a webhook that was up all along) and stays so across re-sends.
#[test]
fn alertmanager_down_for_a_while_gets_the_page_with_its_decided_start() {
    let am_port = crate::harness::free_port();
    let am_url = format!("http://127.0.0.1:{am_port}");
    // The synthetic service doubles as the webhook that sees the decision.
    let windows = pair_yaml(PAGE, "");
    // 100% errors from the start: the page is decided within seconds.
    let rig = live_rig(
        &am_url,
        "  webhooks:\n    - url: HOOK/hook\n",
        &shop_spec(&[("availability", &windows)]),
        1.0,
    );

    let first = poll(Duration::from_secs(60), || {
        hook_pages(&rig.svc).into_iter().next()
    })
    .unwrap_or_else(|| panic!("no page at the webhook\n{}", rig.daemon.guard.log_tail()));
    let decided = rfc3339_secs(&first.1["startsAt"]);
    let labels = labels_of(&first.1);
    // Alertmanager stays down for several resend intervals and retries.
    let down_for = Duration::from_secs(10);
    std::thread::sleep(down_for.saturating_sub(first.0.elapsed().unwrap_or_default()));
    let failed = rig
        .metric(
            "errbudget_notifications_total",
            &[("receiver", &format!("alertmanager:127.0.0.1:{am_port}"))],
        )
        .is_some();
    assert!(failed, "no notification counter for the Alertmanager");
    let am = Alertmanager::start_on(am_port);
    let up = Instant::now();
    let shown = poll(Duration::from_secs(40), || {
        let got: Vec<Value> = am
            .alerts()
            .into_iter()
            .filter(|a| labels_of(a) == labels)
            .collect();
        (!got.is_empty()).then_some(got)
    })
    .unwrap_or_else(|| {
        panic!(
            "page not in Alertmanager 40s after it came up: {:?}\n{}",
            am.alerts(),
            rig.daemon.guard.log_tail()
        )
    });
    eprintln!(
        "Alertmanager came up {:.1}s after the webhook got the page; the page showed in it {:.1}s later",
        first.0.elapsed().unwrap_or_default().as_secs_f64() - up.elapsed().as_secs_f64(),
        up.elapsed().as_secs_f64()
    );
    assert_eq!(
        shown.len(),
        1,
        "exactly one alert with the page's labels: {shown:?}"
    );
    assert_eq!(
        rfc3339_secs(&shown[0]["startsAt"]),
        decided,
        "startsAt in Alertmanager is the decided start: {}",
        shown[0]
    );
    // Over three more resend intervals: still one, still active, same start.
    let until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < until {
        let now = unix_f(SystemTime::now());
        let got: Vec<Value> = am
            .alerts()
            .into_iter()
            .filter(|a| labels_of(a) == labels)
            .collect();
        assert_eq!(got.len(), 1, "one alert for the page: {got:?}");
        assert_eq!(rfc3339_secs(&got[0]["startsAt"]), decided, "{}", got[0]);
        assert!(
            rfc3339_secs(&got[0]["endsAt"]) > now,
            "page must stay active: {}",
            got[0]
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // Every firing notification the webhook got carries the same start.
    let pages = hook_pages(&rig.svc);
    assert!(pages.len() >= 5, "re-sent every 2s: {}", pages.len());
    for (_, p) in &pages {
        assert_eq!(rfc3339_secs(&p["startsAt"]), decided, "{p}");
    }
}

/// Requirement: with a page firing, Prometheus goes away. Over several
/// cycles the daemon keeps `slo_alert_firing` at 1 with
/// `slo_evaluation_success` 0, keeps re-sending the page (Alertmanager
/// shows it active, its `endsAt` moving on: never resolved for missing
/// data), and after `evaluation_failing_after` (3 s) raises
/// `ErrorBudgetEvaluationFailing` (severity ticket) in Alertmanager.
///
/// Also the low-traffic guard: a second SLO on the same data has a page
/// pair with `min_bad_events` far above the bad events in its long window,
/// so while the first SLO pages, it arrives as a ticket.
#[test]
fn prometheus_unreachable_while_firing_holds_the_page_and_raises_evaluation_failing() {
    let am = Alertmanager::start();
    let specs = shop_spec(&[
        ("availability", &pair_yaml(PAGE, "")),
        // 30 s at 50 req/s is at most 1,500 bad events.
        (
            "availability-guarded",
            &pair_yaml(PAGE, ", min_bad_events: 100000"),
        ),
    ]);
    let mut rig = live_rig(&am.url(), "", &specs, 1.0);

    let page = poll(Duration::from_secs(60), || {
        shop_alerts(&am, "ShopErrorBudgetBurn", "page")
            .into_iter()
            .find(|a| a["labels"]["slo"] == "availability")
    })
    .unwrap_or_else(|| {
        panic!(
            "no page: {:?}\n{}",
            am.alerts(),
            rig.daemon.guard.log_tail()
        )
    });
    let guarded = poll(Duration::from_secs(20), || {
        am.alerts()
            .into_iter()
            .find(|a| a["labels"]["slo"] == "availability-guarded")
    })
    .unwrap_or_else(|| panic!("no alert of the guarded SLO: {:?}", am.alerts()));
    assert_eq!(guarded["labels"]["severity"], "ticket", "{guarded}");
    assert_eq!(guarded["labels"]["long_window"], "30s", "{guarded}");
    assert_eq!(guarded["labels"]["queue"], "shop-tickets", "{guarded}");
    assert!(
        guarded["annotations"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("too few bad events")),
        "{guarded}"
    );
    assert!(
        !am.alerts()
            .iter()
            .any(|a| a["labels"]["slo"] == "availability-guarded"
                && a["labels"]["severity"] == "page"),
        "the guarded SLO must not page: {:?}",
        am.alerts()
    );

    let labels = labels_of(&page);
    let started = rfc3339_secs(&page["startsAt"]);
    rig.prom.stop();
    let stopped = Instant::now();
    let sel = [("slo", "availability")];
    let dropped = poll(Duration::from_secs(10), || {
        (rig.metric("slo_evaluation_success", &sel) == Some(0.0)).then_some(())
    });
    assert!(
        dropped.is_some(),
        "slo_evaluation_success never 0\n{}",
        rig.daemon.get("/metrics").body
    );
    let mut last_ends = 0.0;
    let mut ends_moved = 0;
    let mut failing_alert = None;
    // Five resend intervals, longer than the 8 s (4 × resend) a firing
    // alert's endsAt lies ahead: without re-sends it would resolve.
    while stopped.elapsed() < Duration::from_secs(12) {
        assert_eq!(
            rig.metric("slo_evaluation_success", &sel),
            Some(0.0),
            "success must stay 0 while Prometheus is down"
        );
        assert_eq!(
            rig.metric(
                "slo_alert_firing",
                &[("slo", "availability"), ("severity", "page")]
            ),
            Some(1.0),
            "the page must keep firing on missing data"
        );
        let now = unix_f(SystemTime::now());
        let shown: Vec<Value> = am
            .alerts()
            .into_iter()
            .filter(|a| labels_of(a) == labels)
            .collect();
        assert_eq!(shown.len(), 1, "{shown:?}");
        let ends = rfc3339_secs(&shown[0]["endsAt"]);
        assert!(
            ends > now,
            "the page resolved in Alertmanager: {}",
            shown[0]
        );
        assert_eq!(rfc3339_secs(&shown[0]["startsAt"]), started);
        if ends > last_ends {
            if last_ends > 0.0 {
                ends_moved += 1;
            }
            last_ends = ends;
        }
        if failing_alert.is_none() {
            failing_alert = shop_alerts(&am, "ErrorBudgetEvaluationFailing", "ticket")
                .into_iter()
                .find(|a| a["labels"]["slo"] == "availability")
                .map(|a| (stopped.elapsed().as_secs_f64(), a));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        ends_moved >= 3,
        "page re-sent while Prometheus is down: {ends_moved} re-sends seen"
    );
    let (after, failing_alert) = failing_alert.unwrap_or_else(|| {
        panic!(
            "no ErrorBudgetEvaluationFailing within 12s: {:?}",
            am.alerts()
        )
    });
    eprintln!("ErrorBudgetEvaluationFailing shown {after:.1}s after Prometheus stopped (evaluation_failing_after 3s)");
    // 3 s after the first failed cycle (≤ 1 s after the stop), decided at
    // the next 1 s cycle, plus delivery.
    assert!(
        (3.0..=3.0 + 2.0 * EVAL + 3.0).contains(&after),
        "ErrorBudgetEvaluationFailing after {after:.1}s"
    );
    assert_eq!(
        labels_of(&failing_alert),
        map(&[
            ("alertname", "ErrorBudgetEvaluationFailing"),
            ("service", "shop"),
            ("slo", "availability"),
            ("severity", "ticket"),
            ("team", "web"),
        ]),
        "{failing_alert}"
    );
    assert_eq!(
        failing_alert["generatorURL"],
        format!("{EXTERNAL_URL}/slo/shop/availability").as_str()
    );
}
