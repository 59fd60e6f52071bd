//! SLO specs (Sloth `prometheus/v1`) for the scenarios, written here so
//! each test's expectations sit next to the queries they describe.

/// One event-based SLO entry of a Sloth spec.
pub struct Slo<'a> {
    pub name: &'a str,
    pub objective: &'a str,
    /// The docs/interface.md `period` extension; None = default 30d.
    pub period: Option<&'a str>,
    pub error_query: String,
    pub total_query: String,
}

/// `sum(rate(...))` queries over `http_requests_total{service=S}`,
/// optionally `by (route)`.
pub fn queries(service: &str, by_route: bool) -> (String, String) {
    let agg = if by_route { "sum by (route)" } else { "sum" };
    (
        format!(
            "{agg} (rate(http_requests_total{{service=\"{service}\",code=\"500\"}}[{{{{.window}}}}]))"
        ),
        format!("{agg} (rate(http_requests_total{{service=\"{service}\"}}[{{{{.window}}}}]))"),
    )
}

pub fn slo<'a>(name: &'a str, objective: &'a str, service: &str, by_route: bool) -> Slo<'a> {
    let (error_query, total_query) = queries(service, by_route);
    Slo {
        name,
        objective,
        period: None,
        error_query,
        total_query,
    }
}

/// A whole spec file for `service` with label `team: <team>`.
pub fn spec(service: &str, team: &str, slos: &[Slo]) -> String {
    let mut s = format!(
        "version: \"prometheus/v1\"\nservice: \"{service}\"\nlabels:\n  team: \"{team}\"\nslos:\n"
    );
    for slo in slos {
        s.push_str(&format!(
            "  - name: \"{}\"\n    objective: {}\n    description: \"{} of {service}\"\n",
            slo.name, slo.objective, slo.name
        ));
        if let Some(p) = slo.period {
            s.push_str(&format!("    period: {p}\n"));
        }
        s.push_str(&format!(
            "    sli:\n      events:\n        error_query: '{}'\n        total_query: '{}'\n\
             \x20   alerting:\n      name: \"{}HighErrorRate\"\n      page_alert:\n        labels:\n\
             \x20         severity: page\n      ticket_alert:\n        labels:\n          severity: ticket\n",
            slo.error_query, slo.total_query, service
        ));
    }
    s
}

/// A spec with one latency SLO through the docs/interface.md `sli.latency`
/// extension: good = `_bucket{le=threshold}`, total = `_count`.
pub fn latency_spec(
    service: &str,
    team: &str,
    name: &str,
    objective: &str,
    threshold: &str,
) -> String {
    format!(
        "version: \"prometheus/v1\"\nservice: \"{service}\"\nlabels:\n  team: \"{team}\"\nslos:\n\
         \x20 - name: \"{name}\"\n    objective: {objective}\n    description: \"requests under {threshold}s\"\n\
         \x20   sli:\n      latency:\n        metric: http_request_duration_seconds\n\
         \x20       selector: '{{service=\"{service}\"}}'\n        threshold: {threshold}\n\
         \x20   alerting:\n      name: \"{service}SlowRequests\"\n      page_alert:\n        labels:\n\
         \x20         severity: page\n      ticket_alert:\n        labels:\n          severity: ticket\n"
    )
}
