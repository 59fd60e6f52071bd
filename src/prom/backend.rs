//! Which range semantics the query backend has, found by behaviour: probe
//! queries with a known answer (`plan::probe`), built from `vector()` so they
//! need no data. `/api/v1/status/buildinfo` and `/api/v1/features` are only
//! hints (they name the product and version for `errbudget_backend_info`);
//! a Thanos in front of a Prometheus 3, or a build that changed its
//! semantics, answers the probes for what it really does.
//!
//! Owns the classification and the probing; writes no PromQL (that is
//! `plan`) and keeps no state (the engine does).

use std::sync::{Arc, RwLock};

use crate::plan::{probe, Semantics};
use crate::prom::{BuildInfo, QueryApi, QueryError};

/// What was detected, for the engine and for `errbudget_backend_info`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendInfo {
    pub semantics: Semantics,
    /// `prometheus`, `victoriametrics`, `mimir`, `thanos` or `unknown`.
    pub product: String,
    /// As the backend reports it (`""` when it does not).
    pub version: String,
}

/// The latest detection, shared by the engine (which writes it) and the
/// status page's history (which reads it). Cloning shares it.
#[derive(Clone, Debug, Default)]
pub struct Detected(Arc<RwLock<Option<BackendInfo>>>);

impl Detected {
    pub fn get(&self) -> Option<BackendInfo> {
        match self.0.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn set(&self, info: Option<BackendInfo>) {
        match self.0.write() {
            Ok(mut g) => *g = info,
            Err(poisoned) => *poisoned.into_inner() = info,
        }
    }
}

/// Why the backend could not be classified.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("backend probe {query:?} failed: {error}")]
    Probe {
        query: &'static str,
        error: QueryError,
    },
    #[error("backend probe {query:?} answered {value:?}, which no known range semantics gives")]
    Unknown {
        query: &'static str,
        value: Option<f64>,
    },
}

/// The semantics the answers of the probes prove. `count` is the answer to
/// [`probe::COUNT`], `base` to [`probe::BASE`], `anchored` to
/// [`probe::ANCHORED`] (`None` when the backend rejected the modifier).
pub fn classify(
    count: Option<f64>,
    base: Option<f64>,
    anchored: Option<f64>,
) -> Result<Semantics, DetectError> {
    const EPS: f64 = 1e-6;
    let is = |v: Option<f64>, want: f64| v.is_some_and(|v| (v - want).abs() < EPS);
    if is(anchored, 180.0) {
        return Ok(Semantics::Anchored);
    }
    match () {
        _ if is(count, 6.0) && is(base, 150.0) => Ok(Semantics::Closed),
        _ if is(count, 5.0) && is(base, 150.0) => Ok(Semantics::LeftOpen),
        _ if is(count, 5.0) && is(base, 180.0) => Ok(Semantics::LastBefore),
        _ if !(is(count, 5.0) || is(count, 6.0)) => Err(DetectError::Unknown {
            query: probe::COUNT,
            value: count,
        }),
        _ => Err(DetectError::Unknown {
            query: probe::BASE,
            value: base,
        }),
    }
}

/// The product a build-info answer names, the semantics breaking ties:
/// VictoriaMetrics reports a Prometheus-like version, so its own behaviour
/// names it.
pub fn product(info: Option<&BuildInfo>, semantics: Semantics) -> &'static str {
    if semantics == Semantics::LastBefore {
        return "victoriametrics";
    }
    let Some(info) = info else {
        return "unknown";
    };
    let app = info.application.to_ascii_lowercase();
    if app.contains("mimir") {
        "mimir"
    } else if app.contains("thanos") || info.features.iter().any(|f| f.contains("thanos")) {
        "thanos"
    } else if info.version.is_empty() {
        "unknown"
    } else {
        "prometheus"
    }
}

/// Probes the backend at `now` (rounded down to a minute, so the probes'
/// subquery steps fall on the range ends).
pub async fn detect<C: QueryApi>(client: &C, now: i64) -> Result<BackendInfo, DetectError> {
    let at = now.div_euclid(60) * 60;
    let value = |query: &'static str| async move {
        let samples = client
            .instant(query, at)
            .await
            .map_err(|error| DetectError::Probe { query, error })?;
        Ok::<_, DetectError>(samples.first().map(|s| s.value))
    };
    // All at once: against a backend that hangs, detection costs one
    // query timeout, not one per probe.
    let (count, base, hints, anchored) = tokio::join!(
        value(probe::COUNT),
        value(probe::BASE),
        async { client.buildinfo().await.ok().flatten() },
        client.instant(probe::ANCHORED, at)
    );
    let (count, base) = (count?, base?);
    // A backend that does not know the modifier says so with a parse error:
    // that is an answer, not a failure.
    let anchored = match anchored {
        Ok(samples) => samples.first().map(|s| s.value),
        Err(QueryError::Api { .. }) | Err(QueryError::Http { .. }) => None,
        Err(error) => {
            return Err(DetectError::Probe {
                query: probe::ANCHORED,
                error,
            })
        }
    };
    let semantics = classify(count, base, anchored)?;
    Ok(BackendInfo {
        semantics,
        product: product(hints.as_ref(), semantics).to_string(),
        version: hints.map(|h| h.version).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_answers_name_the_semantics() {
        // Answers measured on Prometheus 2.42 and 3.5.3 and
        // VictoriaMetrics 1.79 and 1.145.
        let cases = [
            (Some(6.0), Some(150.0), None, Semantics::Closed),
            (Some(5.0), Some(150.0), None, Semantics::LeftOpen),
            (Some(5.0), Some(180.0), None, Semantics::LastBefore),
            (Some(5.0), Some(150.0), Some(180.0), Semantics::Anchored),
        ];
        for (count, base, anchored, want) in cases {
            assert_eq!(classify(count, base, anchored).unwrap(), want);
        }
        let err = classify(Some(7.0), Some(150.0), None).unwrap_err();
        assert!(err.to_string().contains("count_over_time"), "{err}");
        let err = classify(Some(6.0), None, None).unwrap_err();
        assert!(err.to_string().contains("None"), "{err}");
        // An anchored answer that is not the anchored one proves nothing.
        assert_eq!(
            classify(Some(5.0), Some(150.0), Some(150.0)).unwrap(),
            Semantics::LeftOpen
        );
    }

    #[test]
    fn products_from_hints() {
        let info = |version: &str, application: &str| BuildInfo {
            version: version.into(),
            application: application.into(),
            features: vec![],
        };
        let p = info("3.5.3", "");
        assert_eq!(product(Some(&p), Semantics::LeftOpen), "prometheus");
        // VictoriaMetrics says "2.24.0": its behaviour names it.
        let vm = info("2.24.0", "");
        assert_eq!(product(Some(&vm), Semantics::LastBefore), "victoriametrics");
        let mimir = info("2.17.0", "Grafana Mimir");
        assert_eq!(product(Some(&mimir), Semantics::Anchored), "mimir");
        assert_eq!(product(None, Semantics::Closed), "unknown");
    }
}
