//! Deploys read from a metric (`deployments.query`): one series per
//! running version of a service, an info series (`deploy_info{service,
//! version}`) or a counter of deploys that carries the version. A version
//! that is present now and was not at the previous reading is a deploy.
//!
//! Cost per cycle: one instant query of `deployments.query` (as many
//! samples as there are running versions). Only when a version appears
//! does a range query of the same expression over the time since the
//! previous reading follow, at a 1 s step for a normal cycle gap, to date
//! the deploy at the first step the new series is present: the first
//! sample Prometheus holds of it, so the time is as good as the scrape of
//! the series (within one scrape interval of the real deploy).
//!
//! What the previous reading saw is kept in the records, which persist with
//! `storage.path`: a restart compares against the reading before it and
//! dates what appeared meanwhile, and the records' deduplication (service,
//! version, time) keeps a deploy seen twice one record. A first reading
//! ever records nothing: what runs then was deployed at an unknown time.

use crate::config::{DeploymentMetric, DeploymentSettings};
use crate::prom::{QueryApi, QueryError};
use crate::records::{self, Counts, Deployment, Present, Records, Source};

/// The labels the query's answer carries the service and version in. The
/// configured labels are copied into these and the rest dropped (`count
/// by`): `service` is a label errbudget sets on its own series, and the
/// query client refuses answers that carry it; `count by` also makes the
/// many pods of one version one series.
const SERVICE: &str = "errbudget_deploy_service";
const VERSION: &str = "errbudget_deploy_version";

/// The expression sent for `settings.query`: per service and version, the
/// number of series (info) or the sum of the counts (counter).
pub fn expression(settings: &DeploymentSettings) -> String {
    let aggregate = match settings.kind {
        DeploymentMetric::Info => "count",
        DeploymentMetric::Counter => "sum",
    };
    format!(
        "{aggregate} by ({SERVICE}, {VERSION}) (label_replace(label_replace({}, \"{SERVICE}\", \"$1\", \"{}\", \"(.*)\"), \"{VERSION}\", \"$1\", \"{}\", \"(.*)\"))",
        settings.query, settings.service_label, settings.version_label
    )
}

/// Points of the dating range query at most; the step grows past an hour
/// of gap (a restart after a long stop) so the query stays small.
const MAX_POINTS: i64 = 3_600;

/// Reads the metric at `now` and records the deploys it shows. Returns
/// the new deploys. On a query error nothing changes: the next reading
/// compares against the last good one and dates what appeared since.
pub async fn detect<C: QueryApi>(
    client: &C,
    settings: &DeploymentSettings,
    records: &Records,
    now: i64,
) -> Result<Vec<Deployment>, QueryError> {
    let query = expression(settings);
    let samples = client.instant(&query, now).await?;
    let before = records.read(|b| b.seen.clone());
    let (present, counts) = match settings.kind {
        DeploymentMetric::Info => (present(samples.iter().map(|s| &s.labels)), Counts::new()),
        DeploymentMetric::Counter => (Present::new(), counts(&samples)),
    };
    // What changed since the last reading; nothing on the first one ever.
    let changed: Vec<(String, String)> = match (before.at, settings.kind) {
        (None, _) => vec![],
        (Some(_), DeploymentMetric::Info) => records::appeared(&before, &present),
        (Some(_), DeploymentMetric::Counter) => flatten(&counts)
            .filter(|(s, v, n)| count_of(&before.counts, s, v) != Some(*n))
            .map(|(s, v, _)| (s.to_string(), v.to_string()))
            .collect(),
    };
    let mut found = Vec::new();
    if let (Some(since), false) = (before.at, changed.is_empty()) {
        let start = (since + 1).min(now);
        let step = ((now - start) / MAX_POINTS).max(1);
        let series = client.range(&query, start, now, step as u64).await?;
        for (service, version) in changed {
            let points = series
                .iter()
                // An empty version is no label at all in the answer.
                .find(|s| {
                    s.labels.get(SERVICE) == Some(&service)
                        && s.labels.get(VERSION).map_or("", String::as_str) == version
                })
                .map_or(&[][..], |s| &s.points[..]);
            let times = match settings.kind {
                DeploymentMetric::Info => vec![points.first().map_or(now, |p| p.0)],
                DeploymentMetric::Counter => {
                    rises(count_of(&before.counts, &service, &version), points)
                }
            };
            for at in times {
                found.push(Deployment {
                    service: service.clone(),
                    version: version.clone(),
                    at,
                    source: Source::Metric,
                    description: String::new(),
                });
            }
        }
    }
    let added = records.write(|b| {
        let added: Vec<Deployment> = found
            .into_iter()
            .filter(|d| b.add_deployment(d.clone()))
            .collect();
        b.set_seen(now, present, counts);
        added
    });
    Ok(added)
}

/// The times a count rises along `points`, from `before` (a series new
/// since the last reading starts from 0). A fall is a reset (a process
/// that restarted), not a deploy; counting goes on from the new value. A
/// rise by more than one within a step is one deploy at that step.
fn rises(before: Option<f64>, points: &[(i64, f64)]) -> Vec<i64> {
    let mut last = before.unwrap_or(0.0);
    let mut out = vec![];
    for &(t, v) in points {
        if v > last {
            out.push(t);
        }
        last = v;
    }
    out
}

fn count_of(counts: &Counts, service: &str, version: &str) -> Option<f64> {
    counts.get(service)?.get(version).copied()
}

fn flatten(counts: &Counts) -> impl Iterator<Item = (&str, &str, f64)> + '_ {
    counts
        .iter()
        .flat_map(|(s, vs)| vs.iter().map(move |(v, n)| (s.as_str(), v.as_str(), *n)))
}

/// Counts per service and version (empty: the counter has none); a series
/// without a service is not a deploy of anything.
fn counts(samples: &[crate::prom::Sample]) -> Counts {
    let mut out = Counts::new();
    for s in samples {
        let Some(service) = s.labels.get(SERVICE).filter(|v| !v.is_empty()) else {
            continue;
        };
        let version = s.labels.get(VERSION).cloned().unwrap_or_default();
        if s.value.is_finite() {
            out.entry(service.clone())
                .or_default()
                .insert(version, s.value);
        }
    }
    out
}

/// Versions per service among the series' labels; a series without
/// either label (empty after `label_replace`) is not a deploy of anything.
fn present<'a>(
    labels: impl Iterator<Item = &'a std::collections::BTreeMap<String, String>>,
) -> Present {
    let mut out = Present::new();
    for l in labels {
        let (Some(s), Some(v)) = (l.get(SERVICE), l.get(VERSION)) else {
            continue;
        };
        if !s.is_empty() && !v.is_empty() {
            out.entry(s.clone()).or_default().insert(v.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prom::{RangeSeries, Sample};
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    /// Answers the instant query with `now` and the range query with
    /// `range`, recording what was asked.
    struct Fake {
        now: Vec<(&'static str, &'static str)>,
        range: Vec<(&'static str, &'static str, i64)>,
        asked: Mutex<Vec<String>>,
    }

    fn labels(s: &str, v: &str) -> BTreeMap<String, String> {
        [(SERVICE, s), (VERSION, v)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    impl QueryApi for Fake {
        async fn instant(&self, q: &str, at: i64) -> Result<Vec<Sample>, QueryError> {
            assert_eq!(q, expression(&settings()));
            self.asked.lock().unwrap().push(format!("instant {at}"));
            Ok(self
                .now
                .iter()
                .map(|(s, v)| Sample {
                    labels: labels(s, v),
                    value: 1.0,
                })
                .collect())
        }
        async fn range(
            &self,
            q: &str,
            start: i64,
            end: i64,
            step: u64,
        ) -> Result<Vec<RangeSeries>, QueryError> {
            self.asked
                .lock()
                .unwrap()
                .push(format!("range {start} {end} {step}"));
            assert_eq!(q, expression(&settings()));
            Ok(self
                .range
                .iter()
                .map(|(s, v, first)| RangeSeries {
                    labels: labels(s, v),
                    points: (*first..=end).map(|t| (t, 1.0)).collect(),
                })
                .collect())
        }
    }

    fn settings() -> DeploymentSettings {
        DeploymentSettings {
            query: "deploy_info".into(),
            kind: DeploymentMetric::Info,
            service_label: "service".into(),
            version_label: "version".into(),
        }
    }

    #[tokio::test]
    async fn a_new_version_is_dated_by_its_first_sample_and_recorded_once() {
        let records = Records::default();
        let first = Fake {
            now: vec![("a", "1"), ("b", "7")],
            range: vec![],
            asked: Mutex::new(vec![]),
        };
        // The first reading ever is a baseline: one query, no deploy.
        assert!(detect(&first, &settings(), &records, 1_000)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(first.asked.lock().unwrap().len(), 1);
        let next = Fake {
            now: vec![("a", "2"), ("b", "7")],
            range: vec![("a", "1", 1_001), ("a", "2", 1_017), ("b", "7", 1_001)],
            asked: Mutex::new(vec![]),
        };
        let found = detect(&next, &settings(), &records, 1_030).await.unwrap();
        assert_eq!(
            found
                .iter()
                .map(|d| (&d.service[..], &d.version[..], d.at))
                .collect::<Vec<_>>(),
            [("a", "2", 1_017)]
        );
        assert_eq!(
            *next.asked.lock().unwrap(),
            ["instant 1030", "range 1001 1030 1"]
        );
        // Seen again (a restart that reads the same gap): still one deploy.
        records.write(|b| b.seen.at = Some(1_000));
        assert!(detect(&next, &settings(), &records, 1_030)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(records.read(|b| b.totals["a"]), 1);
        // A quiet cycle asks one instant query only.
        let quiet = Fake {
            now: vec![("a", "2"), ("b", "7")],
            range: vec![],
            asked: Mutex::new(vec![]),
        };
        detect(&quiet, &settings(), &records, 1_060).await.unwrap();
        assert_eq!(quiet.asked.lock().unwrap().len(), 1);
    }

    /// A counter of deploys per service, without a version label.
    struct Counter {
        now: Vec<(&'static str, f64)>,
        range: Vec<(&'static str, Vec<(i64, f64)>)>,
        ranges: Mutex<usize>,
    }

    fn service_only(s: &str) -> BTreeMap<String, String> {
        [(SERVICE.to_string(), s.to_string())].into()
    }

    impl QueryApi for Counter {
        async fn instant(&self, q: &str, _: i64) -> Result<Vec<Sample>, QueryError> {
            assert!(q.starts_with("sum by ("), "{q}");
            Ok(self
                .now
                .iter()
                .map(|(s, v)| Sample {
                    labels: service_only(s),
                    value: *v,
                })
                .collect())
        }
        async fn range(
            &self,
            _: &str,
            _: i64,
            _: i64,
            _: u64,
        ) -> Result<Vec<RangeSeries>, QueryError> {
            *self.ranges.lock().unwrap() += 1;
            Ok(self
                .range
                .iter()
                .map(|(s, points)| RangeSeries {
                    labels: service_only(s),
                    points: points.clone(),
                })
                .collect())
        }
    }

    #[tokio::test]
    async fn a_counter_rise_is_a_deploy_and_a_reset_is_not() {
        let settings = DeploymentSettings {
            query: "deploys_total".into(),
            kind: DeploymentMetric::Counter,
            service_label: "service".into(),
            version_label: "version".into(),
        };
        let records = Records::default();
        let read = |now, range| Counter {
            now,
            range,
            ranges: Mutex::new(0),
        };
        let first = read(vec![("a", 5.0)], vec![]);
        assert!(detect(&first, &settings, &records, 1_000)
            .await
            .unwrap()
            .is_empty());
        // 5 → 6 at 1 012; the process restarts (0) at 1 020 and counts one
        // more deploy at 1 025: two deploys, the reset none.
        let points = vec![
            (1_001, 5.0),
            (1_012, 6.0),
            (1_019, 6.0),
            (1_020, 0.0),
            (1_025, 1.0),
            (1_030, 1.0),
        ];
        let next = read(vec![("a", 1.0)], vec![("a", points)]);
        let found = detect(&next, &settings, &records, 1_030).await.unwrap();
        assert_eq!(
            found
                .iter()
                .map(|d| (&d.version[..], d.at))
                .collect::<Vec<_>>(),
            [("", 1_012), ("", 1_025)]
        );
        // Unchanged: no range query.
        let quiet = read(vec![("a", 1.0)], vec![]);
        assert!(detect(&quiet, &settings, &records, 1_060)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(*quiet.ranges.lock().unwrap(), 0);
        assert_eq!(records.read(|b| b.totals["a"]), 2);
    }
}
