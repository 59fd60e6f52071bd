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

use crate::config::DeploymentSettings;
use crate::prom::{QueryApi, QueryError};
use crate::records::{self, Deployment, Present, Records, Source};

/// The labels the query's answer carries the service and version in. The
/// configured labels are copied into these and the rest dropped (`count
/// by`): `service` is a label errbudget sets on its own series, and the
/// query client refuses answers that carry it; `count by` also makes the
/// many pods of one version one series.
const SERVICE: &str = "errbudget_deploy_service";
const VERSION: &str = "errbudget_deploy_version";

/// The expression sent for `settings.query`.
pub fn expression(settings: &DeploymentSettings) -> String {
    format!(
        "count by ({SERVICE}, {VERSION}) (label_replace(label_replace({}, \"{SERVICE}\", \"$1\", \"{}\", \"(.*)\"), \"{VERSION}\", \"$1\", \"{}\", \"(.*)\"))",
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
    let present = present(samples.iter().map(|s| &s.labels));
    let before = records.read(|b| b.seen.clone());
    let new = records::appeared(&before, &present);
    let mut found = Vec::new();
    if let (Some(since), false) = (before.at, new.is_empty()) {
        let start = (since + 1).min(now);
        let step = ((now - start) / MAX_POINTS).max(1);
        let series = client.range(&query, start, now, step as u64).await?;
        for (service, version) in new {
            let first = series
                .iter()
                .filter(|s| {
                    s.labels.get(SERVICE) == Some(&service)
                        && s.labels.get(VERSION) == Some(&version)
                })
                .filter_map(|s| s.points.first().map(|p| p.0))
                .min();
            found.push(Deployment {
                service,
                version,
                at: first.unwrap_or(now),
                source: Source::Metric,
                description: String::new(),
            });
        }
    }
    let added = records.write(|b| {
        let added: Vec<Deployment> = found
            .into_iter()
            .filter(|d| b.add_deployment(d.clone()))
            .collect();
        b.set_seen(now, present);
        added
    });
    Ok(added)
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
}
