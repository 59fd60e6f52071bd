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
