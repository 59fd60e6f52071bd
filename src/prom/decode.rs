//! Decoding of Prometheus HTTP API bodies into samples: pure functions on
//! bytes, no I/O, so every shape (and every broken shape) is unit-tested with
//! strings. Owns the wire types of `/api/v1/query` and `/api/v1/query_range`;
//! does not interpret values (NaN and ±Inf are passed through).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::error::QueryError;
use super::{RangeSeries, Sample};

/// A decoded successful answer with what Prometheus said about it.
#[derive(Debug, PartialEq)]
pub(crate) struct Decoded<T> {
    pub data: T,
    pub warnings: Vec<String>,
    /// `data.stats.samples.totalQueryableSamples`, present when `stats=all`
    /// was sent and the server supports it (VictoriaMetrics does not).
    pub samples_read: Option<u64>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    status: String,
    #[serde(borrow, default)]
    data: Option<Data<'a>>,
    #[serde(rename = "errorType", default)]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
    // `null` from some proxies; treated as none.
    #[serde(default)]
    warnings: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct Data<'a> {
    #[serde(rename = "resultType")]
    result_type: String,
    // Kept raw because its shape depends on `resultType`, which may come
    // after it in the object; parsed once the type is known.
    #[serde(borrow)]
    result: &'a RawValue,
    #[serde(default)]
    stats: Option<Stats>,
}

#[derive(Deserialize)]
struct Stats {
    #[serde(default)]
    samples: Option<SampleStats>,
}

#[derive(Deserialize)]
struct SampleStats {
    #[serde(rename = "totalQueryableSamples", default)]
    total_queryable_samples: Option<u64>,
}

/// `[<unix seconds as float>, "<value as string>"]`.
#[derive(Deserialize)]
struct WirePoint(f64, String);

#[derive(Deserialize)]
struct WireVectorElem {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: Option<WirePoint>,
    // Native histograms come as `histogram`; an SLI built on them is not
    // something we can turn into one float, so it is an error, not a drop.
    histogram: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct WireMatrixElem {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<WirePoint>,
    histograms: Option<serde::de::IgnoredAny>,
}

fn decode_err(reason: impl Into<String>) -> QueryError {
    QueryError::Decode {
        reason: reason.into(),
    }
}

/// Parses the envelope; `status:"error"` becomes `QueryError::Api` carrying
/// `http_status`, since the HTTP status decides whether to retry.
fn envelope<'a>(body: &'a [u8], http_status: u16) -> Result<Envelope<'a>, QueryError> {
    let env: Envelope<'a> = serde_json::from_slice(body).map_err(|e| decode_err(e.to_string()))?;
    match env.status.as_str() {
        "success" => Ok(env),
        "error" => Err(QueryError::Api {
            status: http_status,
            error_type: env.error_type.unwrap_or_else(|| "unknown".to_owned()),
            error: env.error.unwrap_or_default(),
        }),
        other => Err(decode_err(format!("unknown status {other:?}"))),
    }
}

/// The Prometheus error carried by a non-2xx body, if the body is one.
pub(crate) fn decode_error_body(body: &[u8], http_status: u16) -> Option<QueryError> {
    match envelope(body, http_status) {
        Err(e @ QueryError::Api { .. }) => Some(e),
        _ => None,
    }
}

/// Prometheus renders values as strings so that NaN and ±Inf survive JSON.
/// They are returned as the f64 NaN/±Inf: deciding what a NaN ratio means
/// is the engine's business, not the client's.
pub(crate) fn parse_value(s: &str) -> Result<f64, QueryError> {
    match s {
        "NaN" => Ok(f64::NAN),
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => s
            .parse::<f64>()
            .map_err(|_| decode_err(format!("sample value {s:?} is not a number"))),
    }
}

/// Whole unix seconds. Our queries are aligned to seconds; rounding absorbs
/// the float's representation error (e.g. 1700000000.0000002).
fn timestamp(t: f64) -> Result<i64, QueryError> {
    if !t.is_finite() || t.abs() > 1e15 {
        return Err(decode_err(format!("timestamp {t} is out of range")));
    }
    Ok(t.round() as i64)
}

fn stats_of(data: &Data<'_>) -> Option<u64> {
    data.stats
        .as_ref()
        .and_then(|s| s.samples.as_ref())
        .and_then(|s| s.total_queryable_samples)
}

fn parse_result<'a, T: Deserialize<'a>>(raw: &'a RawValue, what: &str) -> Result<T, QueryError> {
    serde_json::from_str(raw.get()).map_err(|e| decode_err(format!("{what} result: {e}")))
}

/// Every series of an answer ends up, with its labels, on errbudget's own
/// series (`/metrics`, alerts). So an answer is refused when a series
/// carries a label errbudget sets itself (`slo`, `window`, ... from a
/// `label_replace` or a `sum without`): it would give several `/metrics`
/// series one label set. Two series with one label set (a broken proxy, a
/// federation) are refused too: taking one and dropping the other would
/// be a silent guess.
fn check_series<'a>(
    labels: impl Iterator<Item = &'a BTreeMap<String, String>>,
) -> Result<(), QueryError> {
    let mut seen = std::collections::HashSet::new();
    for l in labels {
        if let Some(k) = l
            .keys()
            .find(|k| crate::model::RESERVED_LABELS.contains(&k.as_str()))
        {
            return Err(decode_err(format!(
                "series {} carries the label {k:?}, which errbudget sets itself; drop or rename it in the query (sum by, label_replace)",
                series_name(l)
            )));
        }
        if !seen.insert(l) {
            return Err(decode_err(format!(
                "the answer holds series {} more than once",
                series_name(l)
            )));
        }
    }
    Ok(())
}

/// `{a="1", b="2"}`, bounded: label values come from the server.
fn series_name(l: &BTreeMap<String, String>) -> String {
    let text = format!(
        "{{{}}}",
        l.iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if text.chars().count() > 200 {
        text.chars().take(200).chain(['…']).collect()
    } else {
        text
    }
}

/// Decodes an `/api/v1/query` answer: a vector, or a scalar returned as one
/// sample with no labels.
pub(crate) fn decode_instant(
    body: &[u8],
    http_status: u16,
) -> Result<Decoded<Vec<Sample>>, QueryError> {
    let env = envelope(body, http_status)?;
    let data = env
        .data
        .ok_or_else(|| decode_err("status is success but data is missing"))?;
    let samples = match data.result_type.as_str() {
        "vector" => {
            let elems: Vec<WireVectorElem> = parse_result(data.result, "vector")?;
            elems
                .into_iter()
                .map(|e| match (e.value, e.histogram) {
                    (Some(WirePoint(_, v)), _) => Ok(Sample {
                        labels: e.metric,
                        value: parse_value(&v)?,
                    }),
                    (None, Some(_)) => Err(decode_err(
                        "native histogram samples are not supported; aggregate them to floats in the query",
                    )),
                    (None, None) => Err(decode_err("vector sample without a value")),
                })
                .collect::<Result<Vec<_>, _>>()?
        }
        "scalar" => {
            let WirePoint(_, v) = parse_result(data.result, "scalar")?;
            vec![Sample {
                labels: BTreeMap::new(),
                value: parse_value(&v)?,
            }]
        }
        other => {
            return Err(decode_err(format!(
                "instant query returned resultType {other:?}, expected \"vector\" or \"scalar\""
            )))
        }
    };
    check_series(samples.iter().map(|s| &s.labels))?;
    Ok(Decoded {
        samples_read: stats_of(&data),
        data: samples,
        warnings: env.warnings.unwrap_or_default(),
    })
}

/// Decodes an `/api/v1/query_range` answer, which is always a matrix.
pub(crate) fn decode_range(
    body: &[u8],
    http_status: u16,
) -> Result<Decoded<Vec<RangeSeries>>, QueryError> {
    let env = envelope(body, http_status)?;
    let data = env
        .data
        .ok_or_else(|| decode_err("status is success but data is missing"))?;
    if data.result_type != "matrix" {
        return Err(decode_err(format!(
            "range query returned resultType {:?}, expected \"matrix\"",
            data.result_type
        )));
    }
    let elems: Vec<WireMatrixElem> = parse_result(data.result, "matrix")?;
    let series = elems
        .into_iter()
        .map(|e| {
            if e.histograms.is_some() {
                return Err(decode_err(
                    "native histogram samples are not supported; aggregate them to floats in the query",
                ));
            }
            let points = e
                .values
                .into_iter()
                .map(|WirePoint(t, v)| Ok((timestamp(t)?, parse_value(&v)?)))
                .collect::<Result<Vec<_>, QueryError>>()?;
            Ok(RangeSeries {
                labels: e.metric,
                points,
            })
        })
        .collect::<Result<Vec<_>, QueryError>>()?;
    check_series(series.iter().map(|s| &s.labels))?;
    Ok(Decoded {
        samples_read: stats_of(&data),
        data: series,
        warnings: env.warnings.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reserved_labels_and_duplicate_series_are_errors_naming_them() {
        let reserved = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"route":"/a","slo":"x"},"value":[1,"1"]}]}}"#;
        assert_eq!(
            decode_instant(reserved, 200).unwrap_err().to_string(),
            decode_err("series {route=\"/a\", slo=\"x\"} carries the label \"slo\", which errbudget sets itself; drop or rename it in the query (sum by, label_replace)").to_string()
        );
        let dup = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"route":"/a"},"value":[1,"1"]},{"metric":{"route":"/a"},"value":[1,"2"]}]}}"#;
        assert_eq!(
            decode_instant(dup, 200).unwrap_err().to_string(),
            decode_err("the answer holds series {route=\"/a\"} more than once").to_string()
        );
        let dup_range = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{},"values":[[1,"1"]]},{"metric":{},"values":[[2,"2"]]}]}}"#;
        assert_eq!(
            decode_range(dup_range, 200).unwrap_err().to_string(),
            decode_err("the answer holds series {} more than once").to_string()
        );
        let window = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"window":"5m"},"values":[[1,"1"]]}]}}"#;
        assert!(decode_range(window, 200).is_err());
        // Distinct label sets are fine.
        let ok = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"route":"/a"},"value":[1,"1"]},{"metric":{"route":"/b"},"value":[1,"2"]}]}}"#;
        assert_eq!(decode_instant(ok, 200).unwrap().data.len(), 2);
    }

    /// The hostile answers of the regression corpus, each with its error.
    #[test]
    fn hostile_answers_are_refused() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hostile/prom");
        let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
        let reason = |e: QueryError| match e {
            QueryError::Decode { reason } => reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            reason(decode_instant(&read("reserved-label.json"), 200).unwrap_err()),
            "series {route=\"/pay\", slo=\"availability\"} carries the label \"slo\", which errbudget sets itself; drop or rename it in the query (sum by, label_replace)"
        );
        assert_eq!(
            reason(decode_instant(&read("duplicate-series.json"), 200).unwrap_err()),
            "the answer holds series {route=\"/pay\"} more than once"
        );
        assert_eq!(
            reason(decode_range(&read("duplicate-series-range.json"), 200).unwrap_err()),
            "the answer holds series {route=\"/pay\"} more than once"
        );
        // serde_json bounds nesting itself (128); typed decoding stops first.
        assert_eq!(
            reason(decode_instant(&read("deep-json.json"), 200).unwrap_err()),
            "vector result: invalid type: sequence, expected a map at line 1 column 2"
        );
    }

    #[test]
    fn vector_with_labels() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"__name__":"up","job":"a"},"value":[1700000000.123,"1"]},
            {"metric":{"job":"b"},"value":[1700000000.123,"0.25"]}]}}"#;
        let d = decode_instant(body, 200).unwrap();
        assert_eq!(
            d.data,
            vec![
                Sample {
                    labels: labels(&[("__name__", "up"), ("job", "a")]),
                    value: 1.0
                },
                Sample {
                    labels: labels(&[("job", "b")]),
                    value: 0.25
                },
            ]
        );
        assert!(d.warnings.is_empty());
        assert_eq!(d.samples_read, None);
    }

    #[test]
    fn result_before_result_type() {
        let body =
            br#"{"status":"success","data":{"result":[{"metric":{},"value":[1,"2"]}],"resultType":"vector"}}"#;
        assert_eq!(decode_instant(body, 200).unwrap().data[0].value, 2.0);
    }

    #[test]
    fn empty_vector_is_not_an_error() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert!(decode_instant(body, 200).unwrap().data.is_empty());
        let body = br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert!(decode_range(body, 200).unwrap().data.is_empty());
    }

    #[test]
    fn scalar_is_one_unlabelled_sample() {
        let body =
            br#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"0.999"]}}"#;
        let d = decode_instant(body, 200).unwrap();
        assert_eq!(
            d.data,
            vec![Sample {
                labels: BTreeMap::new(),
                value: 0.999
            }]
        );
    }

    #[test]
    fn matrix_rounds_timestamps() {
        let body = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"job":"a"},"values":[[1700000000.0000002,"1"],[1700000060.4,"2"],[1700000119.6,"3"]]}]}}"#;
        let d = decode_range(body, 200).unwrap();
        assert_eq!(
            d.data,
            vec![RangeSeries {
                labels: labels(&[("job", "a")]),
                points: vec![(1700000000, 1.0), (1700000060, 2.0), (1700000120, 3.0)]
            }]
        );
    }

    #[test]
    fn special_values() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"v":"nan"},"value":[1,"NaN"]},
            {"metric":{"v":"pinf"},"value":[1,"+Inf"]},
            {"metric":{"v":"ninf"},"value":[1,"-Inf"]},
            {"metric":{"v":"exp"},"value":[1,"1e-3"]}]}}"#;
        let d = decode_instant(body, 200).unwrap();
        assert!(d.data[0].value.is_nan());
        assert_eq!(d.data[1].value, f64::INFINITY);
        assert_eq!(d.data[2].value, f64::NEG_INFINITY);
        assert_eq!(d.data[3].value, 0.001);
        let body = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{},"values":[[1,"NaN"],[2,"+Inf"]]}]}}"#;
        let d = decode_range(body, 200).unwrap();
        assert!(d.data[0].points[0].1.is_nan());
        assert_eq!(d.data[0].points[1].1, f64::INFINITY);
    }

    #[test]
    fn non_numeric_value_is_decode_error() {
        let body =
            br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"abc"]}]}}"#;
        assert_eq!(
            decode_instant(body, 200).unwrap_err(),
            QueryError::Decode {
                reason: "sample value \"abc\" is not a number".into()
            }
        );
    }

    #[test]
    fn status_error_is_api_error() {
        let body = br#"{"status":"error","errorType":"bad_data","error":"1:8: parse error: unexpected end of input"}"#;
        let want = QueryError::Api {
            status: 400,
            error_type: "bad_data".into(),
            error: "1:8: parse error: unexpected end of input".into(),
        };
        assert_eq!(decode_instant(body, 400).unwrap_err(), want);
        assert_eq!(decode_error_body(body, 400), Some(want));
        assert!(!decode_error_body(body, 400).unwrap().is_transient());
        let body = br#"{"status":"error","errorType":"timeout","error":"query timed out"}"#;
        assert!(decode_range(body, 503).unwrap_err().is_transient());
    }

    #[test]
    fn non_json_error_body_is_not_an_api_error() {
        assert_eq!(decode_error_body(b"<html>bad gateway</html>", 502), None);
        assert_eq!(
            decode_error_body(br#"{"status":"success","data":null}"#, 500),
            None
        );
    }

    #[test]
    fn warnings_are_returned_with_data() {
        let body =
            br#"{"status":"success","warnings":["PromQL info: metric might not be a counter"],
            "data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]}]}}"#;
        let d = decode_instant(body, 200).unwrap();
        assert_eq!(
            d.warnings,
            vec!["PromQL info: metric might not be a counter"]
        );
        assert_eq!(d.data.len(), 1);
    }

    #[test]
    fn truncated_json_is_decode_error() {
        let body =
            br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"val"#;
        match decode_instant(body, 200) {
            Err(QueryError::Decode { reason }) => assert!(reason.contains("EOF"), "{reason}"),
            other => panic!("want Decode, got {other:?}"),
        }
        assert!(matches!(
            decode_range(b"", 200),
            Err(QueryError::Decode { .. })
        ));
    }

    #[test]
    fn wrong_result_type_is_decode_error() {
        let body = br#"{"status":"success","data":{"resultType":"string","result":[1,"hello"]}}"#;
        assert_eq!(
            decode_instant(body, 200).unwrap_err(),
            QueryError::Decode {
                reason: "instant query returned resultType \"string\", expected \"vector\" or \"scalar\"".into()
            }
        );
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert_eq!(
            decode_range(body, 200).unwrap_err(),
            QueryError::Decode {
                reason: "range query returned resultType \"vector\", expected \"matrix\"".into()
            }
        );
    }

    #[test]
    fn wrong_result_shape_is_decode_error() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":{"a":1}}}"#;
        assert!(matches!(
            decode_instant(body, 200),
            Err(QueryError::Decode { .. })
        ));
    }

    #[test]
    fn native_histograms_are_rejected() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{},"histogram":[1,{"count":"1","sum":"1","buckets":[]}]}]}}"#;
        assert!(matches!(
            decode_instant(body, 200),
            Err(QueryError::Decode { .. })
        ));
    }

    #[test]
    fn stats_samples_are_extracted() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[],
            "stats":{"timings":{"evalTotalTime":0.001},"samples":{"totalQueryableSamples":1234,"peakSamples":12}}}}"#;
        assert_eq!(decode_instant(body, 200).unwrap().samples_read, Some(1234));
        let body = br#"{"status":"success","data":{"resultType":"matrix","result":[],
            "stats":{"samples":{"totalQueryableSamples":7,"totalQueryableSamplesPerStep":[[1,7]]}}}}"#;
        assert_eq!(decode_range(body, 200).unwrap().samples_read, Some(7));
        // Servers that ignore `stats` (VictoriaMetrics) or return other shapes.
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[],"stats":{"seriesFetched":"3"}}}"#;
        assert_eq!(decode_instant(body, 200).unwrap().samples_read, None);
    }

    #[test]
    fn unknown_status_is_decode_error() {
        assert!(matches!(
            decode_instant(br#"{"status":"weird"}"#, 200),
            Err(QueryError::Decode { .. })
        ));
    }
}

/// Fuzzing the decoder: whatever Prometheus (or a proxy, or a broken
/// network) sends, decoding returns a value or an error, never panics, and a
/// decoded success never carries a timestamp or value it did not parse.
#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::fuzzing::{corpus, mutated};
    use proptest::prelude::*;

    fn check(body: &[u8]) {
        for status in [200, 400, 422, 503] {
            let _ = decode_error_body(body, status);
            // A success is only ever decoded from a well-formed document
            // (bad UTF-8 inside a field we skip, like an unknown key, is
            // harmless and tolerated).
            let valid_json =
                serde_json::from_str::<serde_json::Value>(&String::from_utf8_lossy(body)).is_ok();
            if decode_instant(body, status).is_ok() || decode_range(body, status).is_ok() {
                assert!(
                    valid_json,
                    "decoded a malformed body: {:?}",
                    String::from_utf8_lossy(body)
                );
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

        #[test]
        fn mutated_responses_never_panic(body in mutated(corpus("prom-responses"), 12)) {
            check(&body);
        }

        #[test]
        fn random_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            check(&body);
        }

        #[test]
        fn sample_values_parse_or_fail_cleanly(s in "\\PC{0,24}") {
            if let Ok(v) = parse_value(&s) {
                prop_assert!(v.is_nan() || v.is_infinite() || s.trim().parse::<f64>().is_ok());
            }
        }
    }
}
