//! `/metrics` as scrapers see it: a real Prometheus negotiating the format
//! and compression, and the OpenMetrics, text and gzip answers compared.

use std::io::Read;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::fixtures::{slo, spec};
use crate::harness::{free_port, loopback, poll, Guard, Prometheus, Workspace};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// GET with the given headers through reqwest (which sends them as given
/// and does not decompress: the gzip feature is off).
fn get(port: u16, headers: &[(&str, &str)]) -> (String, Option<String>, Vec<u8>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut req = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .timeout(Duration::from_secs(30));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.expect("GET /metrics");
        assert_eq!(r.status(), 200);
        let ct = r.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .to_string();
        let ce = r
            .headers()
            .get("content-encoding")
            .map(|v| v.to_str().expect("ascii").to_string());
        (ct, ce, r.bytes().await.expect("body").to_vec())
    })
}

fn slo_samples(body: &str) -> Vec<String> {
    let mut v: Vec<String> = body
        .lines()
        .filter(|l| l.starts_with("slo_") && !l.starts_with("slo_last_evaluation"))
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// errbudget evaluating against the Prometheus that scrapes it (so its
/// SLO has no data, but every definition series is there), at debug level
/// so that each scrape's negotiated format is logged.
#[test]
fn prometheus_scrapes_openmetrics_gzipped_and_both_formats_agree() {
    let port = free_port();
    let prom = Prometheus::scraping(&[("errbudget", loopback(port))], "1s");
    let ws = Workspace::new();
    let cfg = ws.config(
        &prom.url(),
        "1s",
        &[(
            "x.yaml",
            &spec(
                "scraped",
                "sre",
                &[slo("availability", "99.5", "scraped", false)],
            ),
        )],
    );
    let log = ws.path("errbudget.log");
    let guard = Guard::spawn(
        "errbudget",
        Command::new(crate::harness::errbudget_bin())
            .args(["run", "--log.level=debug", "--config.file"])
            .arg(&cfg)
            .arg(format!("--web.listen-address=127.0.0.1:{port}")),
        log.clone(),
    );
    let up = poll(Duration::from_secs(60), || {
        let t = now();
        let objective = prom.query_value(
            "slo_objective_ratio{job=\"errbudget\",service=\"scraped\",slo=\"availability\"}",
            t,
        )?;
        let queries = prom.query_value(
            "sum(errbudget_prometheus_queries_total{job=\"errbudget\"})",
            t,
        )?;
        (prom.query_value("up{job=\"errbudget\"}", t)? == 1.0).then_some((objective, queries))
    });
    let (objective, queries) = up.unwrap_or_else(|| {
        panic!(
            "Prometheus never scraped errbudget\n{}\n{}",
            guard.log_tail(),
            prom.guard.log_tail()
        )
    });
    // 99.5 in the spec.
    assert_eq!(objective, 0.995);
    // A counter keeps its `_total` name through OpenMetrics.
    assert!(queries >= 1.0, "{queries}");
    let text = std::fs::read_to_string(&log).expect("log");
    let scrape = text
        .lines()
        .find(|l| l.contains("msg=\"metrics scraped\"") && l.contains("user_agent=Prometheus/"))
        .unwrap_or_else(|| panic!("no scrape by Prometheus logged:\n{text}"));
    assert!(scrape.contains(" format=openmetrics "), "{scrape}");
    assert!(scrape.contains(" gzip=true "), "{scrape}");
    // The same answers by hand: OpenMetrics, text, and gzip of each.
    let om_accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
    let (ct, ce, om) = get(port, &[("accept", om_accept)]);
    assert_eq!(
        ct,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert_eq!(ce, None);
    let om = String::from_utf8(om).expect("utf-8");
    assert!(om.ends_with("\n# EOF\n"), "{om}");
    assert_eq!(om.matches("# EOF").count(), 1);
    let (ct, _, plain) = get(port, &[]);
    assert_eq!(ct, "text/plain; version=0.0.4; charset=utf-8");
    let plain = String::from_utf8(plain).expect("utf-8");
    assert!(!plain.contains("# EOF"));
    assert!(plain.contains("process_resident_memory_bytes "), "{plain}");
    assert!(plain.contains("errbudget_build_info{"), "{plain}");
    let (_, ce, gz) = get(port, &[("accept", om_accept), ("accept-encoding", "gzip")]);
    assert_eq!(ce.as_deref(), Some("gzip"));
    let mut unzipped = String::new();
    flate2::read::MultiGzDecoder::new(&gz[..])
        .read_to_string(&mut unzipped)
        .expect("gunzip");
    assert!(unzipped.ends_with("\n# EOF\n"));
    assert_eq!(slo_samples(&unzipped), slo_samples(&om));
    assert_eq!(slo_samples(&plain), slo_samples(&om));
    assert!(!slo_samples(&om).is_empty());
    // No traffic, no burn: exhaustion is +Inf, spelt so in both formats.
    assert!(
        plain
            .lines()
            .any(|l| l.starts_with("slo_error_budget_exhaustion_seconds{") && l.ends_with("} +Inf")),
        "{plain}"
    );

    // Prometheus' OpenMetrics parser took every sample we serve.
    let served = om.lines().filter(|l| !l.starts_with('#')).count() as f64;
    let scraped = poll(Duration::from_secs(10), || {
        let n = prom.query_value("scrape_samples_scraped{job=\"errbudget\"}", now())?;
        (n == served).then_some(n)
    });
    assert_eq!(scraped, Some(served), "samples served vs scraped");

    // promtool lints the text format only (it reads stdin with the text
    // parser); the OpenMetrics answer is checked by Prometheus above.
    {
        let (format, body) = ("text", &plain);
        let (code, out) = crate::harness::promtool_with_stdin(&["check", "metrics"], body);
        assert!(
            code == Some(0) && out.is_empty(),
            "promtool check metrics ({format}, {}): {out}",
            crate::bins::backends(),
        );
    }
}
