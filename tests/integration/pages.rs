//! The status page in a real headless Chromium, served by a running
//! errbudget on synthetic data: the overview lists every SLO worst first
//! and shows spec text as text; the page of the SLO in trouble shows its
//! firing alert and its charts. Screenshots land in `tests/artifacts/`.

use crate::chromium;
use crate::scraped;

#[test]
fn status_pages_in_headless_chromium() {
    chromium::require();
    let w = scraped::start();
    let dir = chromium::artifacts();

    let dom = chromium::dump_dom(&w.daemon_url("/"));
    let burning = dom
        .find("href=\"/slo/burning/availability\"")
        .unwrap_or_else(|| panic!("overview lacks burning:\n{dom}"));
    let healthy = dom
        .find("href=\"/slo/healthy/availability\"")
        .unwrap_or_else(|| panic!("overview lacks healthy:\n{dom}"));
    assert!(
        burning < healthy,
        "the SLO in trouble is not listed first:\n{dom}"
    );
    assert!(
        dom.contains("page 1h/5m"),
        "no firing page alert on the overview:\n{dom}"
    );
    assert!(
        dom.contains("frozen"),
        "burning's release freeze not shown:\n{dom}"
    );
    // The description's markup reached the browser as text, not as script.
    assert!(
        dom.contains(
            "&lt;script&gt;document.body.setAttribute('data-pwned','1')&lt;/script&gt; healthy"
        ),
        "description not shown as text:\n{dom}"
    );
    assert!(
        !dom.contains("data-pwned=\"1\""),
        "spec markup ran in the page:\n{dom}"
    );
    let overview_png = dir.join("status-overview.png");
    chromium::screenshot(&w.daemon_url("/"), &overview_png, 390, 844);
    chromium::publish(&overview_png, "status-overview.png");

    let page = w.daemon_url("/slo/burning/availability");
    let dom = chromium::dump_dom(&page);
    assert!(
        dom.contains("<b class=\"bad\">FIRING</b>"),
        "no firing alert on the SLO page:\n{dom}"
    );
    assert!(
        dom.contains("<span class=\"pill page\">page 1h/5m</span>"),
        "{dom}"
    );
    assert!(
        !dom.contains("History unavailable"),
        "range queries failed:\n{dom}"
    );
    assert_eq!(
        dom.matches("<svg ").count(),
        2,
        "burn-down and burn-rate charts:\n{dom}"
    );
    assert!(dom.contains("ideal (budget spent evenly)"), "{dom}");
    let slo_png = dir.join("status-slo.png");
    chromium::screenshot(&page, &slo_png, 390, 1900);
    chromium::publish(&slo_png, "status-slo.png");

    let missing = w.daemon.get("/slo/burning/nope");
    assert_eq!(missing.status, 404, "{}", missing.body);
}

/// Behind a proxy at `http://host/errbudget/`, every link of the status
/// pages starts with `/errbudget/`, and the pages answer there as at `/`
/// (a proxy may strip the prefix or pass it on).
#[test]
fn links_follow_the_external_urls_path() {
    use std::process::Command;
    use std::time::Duration;

    use crate::events::{openmetrics, Series, Traffic, HOUR, MINUTE, T0};
    use crate::fixtures::{slo, spec};
    use crate::harness::{self, backfill, errbudget_bin, free_port, loopback, poll, Prometheus};

    let end = T0 + 3 * HOUR;
    let g = Series {
        service: "proxied",
        labels: vec![],
        traffic: Traffic::Steady {
            base: 100,
            spread: 10,
            p: 0.001,
            incidents: vec![],
        },
        resets: vec![],
        seed: 5,
        histogram: false,
    }
    .generate(end - 30 * MINUTE, end);
    let (_tmp, blocks) = backfill(
        &[openmetrics(
            std::slice::from_ref(&g),
            end - 30 * MINUTE,
            end + 1,
        )],
        false,
    );
    let prom = Prometheus::start(&blocks);
    let ws = harness::Workspace::new();
    let cfg = ws.config(
        &prom.url(),
        "1h",
        &[(
            "proxied.yaml",
            &spec(
                "proxied",
                "web",
                &[slo("availability", "99.9", "proxied", false)],
            ),
        )],
    );
    let port = free_port();
    let guard = harness::Guard::spawn(
        "errbudget",
        Command::new(errbudget_bin()).args([
            "run",
            "--config.file",
            cfg.to_str().expect("utf-8 path"),
            "--web.listen-address",
            &format!("127.0.0.1:{port}"),
            "--web.external-url",
            &format!("http://127.0.0.1:{port}/errbudget/"),
        ]),
        ws.path("errbudget.log"),
    );
    let addr = loopback(port);
    let get = |path: &str| {
        crate::http::get(addr, path)
            .ok()
            .filter(|r| r.status == 200)
    };
    let overview = poll(Duration::from_secs(30), || {
        get("/errbudget/").filter(|r| r.body.contains("proxied"))
    })
    .unwrap_or_else(|| {
        let r = crate::http::get(addr, "/errbudget/");
        panic!(
            "no overview at /errbudget/: {:?}\n{}",
            r.map(|r| (r.status, r.body)),
            guard.log_tail()
        )
    })
    .body;
    let hrefs = |html: &str| -> Vec<String> {
        html.split("href=\"")
            .skip(1)
            .filter_map(|s| s.split('"').next())
            .map(str::to_string)
            .collect()
    };
    let links = hrefs(&overview);
    for want in [
        "/errbudget/slo/proxied/availability",
        "/errbudget/metrics",
        "/errbudget/api/v1/slos",
        "/errbudget/-/healthy",
        "/errbudget/-/ready",
    ] {
        assert!(links.iter().any(|l| l == want), "{want} not in {links:?}");
    }
    let page = get("/errbudget/slo/proxied/availability")
        .unwrap_or_else(|| panic!("no SLO page under the prefix\n{}", guard.log_tail()))
        .body;
    assert!(hrefs(&page).iter().any(|l| l == "/errbudget/"), "{page}");
    // Every link the pages hold answers, under the prefix and without it.
    for link in links.iter().chain(hrefs(&page).iter()) {
        assert!(link.starts_with("/errbudget/"), "{link} outside the prefix");
        assert!(get(link).is_some(), "{link} does not answer");
        assert!(
            get(&link["/errbudget".len()..]).is_some(),
            "{link} unprefixed"
        );
    }
    assert!(get("/errbudget").is_some(), "/errbudget without its slash");

    // The landing page names the build `errbudget_build_info` describes.
    let metrics = get("/errbudget/metrics").expect("metrics").body;
    let info = metrics
        .lines()
        .find(|l| l.starts_with("errbudget_build_info{"))
        .unwrap_or_else(|| panic!("no errbudget_build_info:\n{metrics}"));
    let label = |k: &str| -> String {
        [format!("{{{k}=\""), format!(",{k}=\"")]
            .iter()
            .find_map(|p| info.split(p.as_str()).nth(1))
            .and_then(|s| s.split('"').next())
            .unwrap_or_else(|| panic!("no {k} in {info}"))
            .to_string()
    };
    let rev: String = label("revision").chars().take(12).collect();
    let named = format!("errbudget {} ({rev})", label("version"));
    assert!(
        overview.contains(&named),
        "{named} not on the page:\n{overview}"
    );
}

/// Range queries a Prometheus has answered so far, from its own metrics.
fn range_queries_answered(prom: &crate::harness::Prometheus) -> f64 {
    let m = crate::http::get(prom.addr, "/metrics")
        .expect("Prometheus metrics")
        .body;
    m.lines()
        .filter(|l| {
            l.starts_with("prometheus_http_requests_total{")
                && l.contains("handler=\"/api/v1/query_range\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Fifty people opening an SLO's page at once cost the Prometheus behind
/// it the range queries of one page (the SLI's bad and total events),
/// counted by that Prometheus; the next fifty in the same evaluation cost
/// nothing.
#[test]
fn fifty_viewers_of_a_page_cost_one_page_of_range_queries() {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use crate::events::{openmetrics, Series, Traffic, MINUTE};
    use crate::fixtures::{slo, spec};
    use crate::harness::{self, backfill, poll, Daemon, Prometheus};

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64;
    let end = now - now.rem_euclid(MINUTE);
    let start = end - 30 * MINUTE;
    let g = Series {
        service: "viewed",
        labels: vec![],
        traffic: Traffic::Steady {
            base: 100,
            spread: 10,
            p: 0.01,
            incidents: vec![],
        },
        resets: vec![],
        seed: 9,
        histogram: false,
    }
    .generate(start, end);
    let (_tmp, blocks) = backfill(
        &[openmetrics(std::slice::from_ref(&g), start, end + 1)],
        false,
    );
    let prom = Prometheus::start(&blocks);
    let ws = harness::Workspace::new();
    // One evaluation in the whole test: every page load shares it.
    let cfg = ws.config(
        &prom.url(),
        "1h",
        &[(
            "viewed.yaml",
            &spec(
                "viewed",
                "web",
                &[slo("availability", "99", "viewed", false)],
            ),
        )],
    );
    let daemon = Daemon::start(&cfg);
    poll(Duration::from_secs(30), || {
        (daemon.get("/-/ready").status == 200).then_some(())
    })
    .unwrap_or_else(|| panic!("never ready\n{}", daemon.guard.log_tail()));

    let load_fifty = || {
        let addr = daemon.addr;
        let pages: Vec<_> = (0..50)
            .map(|_| {
                std::thread::spawn(move || {
                    crate::http::get(addr, "/slo/viewed/availability").map(|r| (r.status, r.body))
                })
            })
            .collect();
        for p in pages {
            let (status, body) = p.join().expect("viewer").expect("page");
            assert_eq!(status, 200, "{body}");
            assert!(!body.contains("History unavailable"), "{body}");
            assert_eq!(body.matches("<svg ").count(), 2, "{body}");
        }
    };
    let before = range_queries_answered(&prom);
    load_fifty();
    let first = range_queries_answered(&prom) - before;
    load_fifty();
    let second = range_queries_answered(&prom) - before - first;
    println!("50 concurrent page loads: {first} range queries; 50 more: {second}");
    assert_eq!(first, 2.0, "bad and total of one page, for 50 viewers");
    assert_eq!(second, 0.0, "the same evaluation's pages are cached");
}
