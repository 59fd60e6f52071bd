//! `errbudget gate`'s decision, from the `/api/v1/slos` document of a
//! running errbudget: per matching SLO instance allowed, frozen or cannot
//! tell, and the command's answer (the worst of them), as lines for a CI
//! log or as JSON for a pipeline to read. Pure: the caller fetches.

use serde_json::{json, Value};

/// What the gate answers, ordered so that the worst wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Decision {
    Allowed,
    Frozen,
    CannotTell,
}

impl Decision {
    /// The exit code: 0 allowed, 1 frozen, 2 cannot tell.
    pub fn code(self) -> u8 {
        match self {
            Decision::Allowed => 0,
            Decision::Frozen => 1,
            Decision::CannotTell => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allowed => "allowed",
            Decision::Frozen => "frozen",
            Decision::CannotTell => "cannot_tell",
        }
    }
}

/// One SLO instance's part of the answer, with the figures it rests on.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub decision: Decision,
    /// The line printed for it (`frozen: checkout/avail: ...`).
    pub line: String,
    /// The instance as `/api/v1/slos` gave it.
    pub instance: Value,
}

/// The gate's answer for one service (and SLO).
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    pub decision: Decision,
    /// Why, when no instance could be judged at all.
    pub reason: Option<String>,
    pub verdicts: Vec<Verdict>,
}

impl Answer {
    /// No answer at all (the request failed).
    pub fn cannot_tell(reason: String) -> Answer {
        Answer {
            decision: Decision::CannotTell,
            reason: Some(reason),
            verdicts: vec![],
        }
    }

    /// The lines a CI log shows, one per instance.
    pub fn lines(&self) -> Vec<String> {
        match &self.reason {
            Some(r) => vec![format!("cannot tell: {r}")],
            None => self.verdicts.iter().map(|v| v.line.clone()).collect(),
        }
    }

    /// The active overrides of the matching instances, each once.
    pub fn overrides(&self) -> Vec<Value> {
        let mut out: Vec<Value> = vec![];
        for v in &self.verdicts {
            for o in overrides_of(&v.instance) {
                if !out.iter().any(|x| x.get("id") == o.get("id")) {
                    out.push(o.clone());
                }
            }
        }
        out
    }

    /// `gate --output json`: the decision, the reasons and, per instance,
    /// the figures it was taken on.
    pub fn json(&self, endpoint: &str, service: &str, slo: Option<&str>, doc: &Value) -> Value {
        let figures = |i: &Value| {
            let mut o = serde_json::Map::new();
            for k in [
                "slo",
                "labels",
                "status",
                "error",
                "release_frozen",
                "error_budget_remaining_ratio",
                "period_coverage_ratio",
                "last_success",
                "overrides",
            ] {
                if let Some(v) = i.get(k) {
                    o.insert(k.to_string(), v.clone());
                }
            }
            o
        };
        let slos: Vec<Value> = self
            .verdicts
            .iter()
            .map(|v| {
                let mut o = figures(&v.instance);
                o.insert("decision".into(), json!(v.decision.as_str()));
                o.insert("reason".into(), json!(v.line));
                Value::Object(o)
            })
            .collect();
        json!({
            "decision": self.decision.as_str(),
            "exit_code": self.decision.code(),
            "service": service,
            "slo": slo,
            "url": endpoint,
            "evaluated_at": doc.get("evaluated_at").cloned().unwrap_or(Value::Null),
            "reasons": self.lines(),
            "slos": slos,
            "overrides": self.overrides(),
        })
    }
}

/// Judges every instance of `service` (and `slo`) in `doc`: frozen when
/// `release_frozen`; allowed when not and the remaining ratio is known and
/// the status is not `error`; cannot tell otherwise.
pub fn decide(doc: &Value, service: &str, slo: Option<&str>) -> Answer {
    let Some(list) = doc.get("slos").and_then(|s| s.as_array()) else {
        return Answer::cannot_tell("the answer has no \"slos\" list".into());
    };
    let matching: Vec<&Value> = list
        .iter()
        .filter(|s| s.get("service").and_then(|v| v.as_str()) == Some(service))
        .filter(|s| slo.is_none() || s.get("slo").and_then(|v| v.as_str()) == slo)
        .collect();
    if matching.is_empty() {
        return Answer::cannot_tell(format!(
            "no SLO of service {service:?}{} is known",
            slo.map(|s| format!(" named {s:?}")).unwrap_or_default()
        ));
    }
    let verdicts: Vec<Verdict> = matching.into_iter().map(|s| judge(s, service)).collect();
    Answer {
        decision: verdicts
            .iter()
            .map(|v| v.decision)
            .max()
            .unwrap_or(Decision::CannotTell),
        reason: None,
        verdicts,
    }
}

fn judge(s: &Value, service: &str) -> Verdict {
    let name = s.get("slo").and_then(|v| v.as_str()).unwrap_or("?");
    let left = s
        .get("error_budget_remaining_ratio")
        .and_then(|v| v.as_f64());
    let status = s.get("status").and_then(|v| v.as_str()).unwrap_or("?");
    let (decision, line) = match (s.get("release_frozen").and_then(|v| v.as_bool()), left) {
        (Some(true), Some(l)) if !overrides_of(s).is_empty() => {
            let why: Vec<String> = overrides_of(s)
                .iter()
                .map(|o| {
                    let text = |k: &str| o.get(k).and_then(|v| v.as_str()).unwrap_or("?");
                    format!(
                        "freeze overridden by {} until {}: {}",
                        text("by"),
                        text("until"),
                        text("reason")
                    )
                })
                .collect();
            (
                Decision::Allowed,
                format!(
                    "allowed: {service}/{name}: {:.1}% of the error budget left, below the release-freeze policy; {}",
                    l * 100.0,
                    why.join("; ")
                ),
            )
        }
        (Some(true), Some(l)) => (
            Decision::Frozen,
            format!(
                "frozen: {service}/{name}: {:.1}% of the error budget left, below the release-freeze policy",
                l * 100.0
            ),
        ),
        (Some(false), Some(l)) if status != "error" => (
            Decision::Allowed,
            format!(
                "allowed: {service}/{name}: {:.1}% of the error budget left",
                l * 100.0
            ),
        ),
        _ => {
            let why = s.get("error").and_then(|v| v.as_str()).unwrap_or(status);
            (
                Decision::CannotTell,
                format!("cannot tell: {service}/{name}: not evaluated ({why})"),
            )
        }
    };
    Verdict {
        decision,
        line,
        instance: s.clone(),
    }
}

/// The instance's active overrides (`/api/v1/slos` of a daemon that
/// knows them; an older daemon gives none).
fn overrides_of(instance: &Value) -> &[Value] {
    instance
        .get("overrides")
        .and_then(|v| v.as_array())
        .map_or(&[], |v| v.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(frozen: bool, status: &str) -> Value {
        json!({"evaluated_at": "2026-11-26T01:00:00Z", "slos": [
            {"service": "checkout", "slo": "avail", "status": status,
             "release_frozen": frozen, "error_budget_remaining_ratio": if frozen { -0.2 } else { 0.4 }},
            {"service": "search", "slo": "avail", "status": "ok",
             "release_frozen": true, "error_budget_remaining_ratio": -1.0}
        ]})
    }

    fn code(doc: &Value, service: &str, slo: Option<&str>) -> u8 {
        decide(doc, service, slo).decision.code()
    }

    #[test]
    fn gate_exit_codes() {
        assert_eq!(code(&doc(false, "ok"), "checkout", None), 0);
        assert_eq!(code(&doc(true, "ok"), "checkout", None), 1);
        assert_eq!(code(&doc(false, "error"), "checkout", None), 2);
        assert_eq!(code(&doc(false, "ok"), "checkout", Some("latency")), 2);
        assert_eq!(code(&doc(false, "ok"), "search", Some("avail")), 1);
        assert_eq!(code(&json!({"x": 1}), "checkout", None), 2);
    }

    #[test]
    fn the_worst_instance_decides_and_each_says_why() {
        let d = json!({"slos": [
            {"service": "s", "slo": "a", "status": "ok", "release_frozen": false, "error_budget_remaining_ratio": 0.5},
            {"service": "s", "slo": "b", "status": "ok", "release_frozen": true, "error_budget_remaining_ratio": -0.25},
            {"service": "s", "slo": "c", "status": "error", "error": "query failed", "release_frozen": null, "error_budget_remaining_ratio": null}
        ]});
        let a = decide(&d, "s", None);
        assert_eq!(a.decision, Decision::CannotTell);
        assert_eq!(
            a.lines(),
            [
                "allowed: s/a: 50.0% of the error budget left",
                "frozen: s/b: -25.0% of the error budget left, below the release-freeze policy",
                "cannot tell: s/c: not evaluated (query failed)",
            ]
        );
        let j = a.json("http://eb/api/v1/slos", "s", None, &d);
        assert_eq!(j["decision"], "cannot_tell");
        assert_eq!(j["exit_code"], 2);
        assert_eq!(j["slos"][1]["decision"], "frozen");
        assert_eq!(j["slos"][1]["error_budget_remaining_ratio"], -0.25);
        assert_eq!(j["slos"][2]["error"], "query failed");
        assert_eq!(decide(&d, "s", Some("b")).decision, Decision::Frozen);
    }

    #[test]
    fn an_active_override_lets_a_frozen_slo_through_and_says_whose() {
        let o = json!({"id": "7", "service": "s", "slo": null, "reason": "fix for INC-4", "by": "alice",
                        "from": "2026-11-26T00:00:00Z", "until": "2026-11-26T06:00:00Z", "source": "api"});
        let d = json!({"slos": [
            {"service": "s", "slo": "a", "status": "ok", "release_frozen": true, "error_budget_remaining_ratio": -0.25, "overrides": [o]},
            {"service": "s", "slo": "b", "status": "ok", "release_frozen": false, "error_budget_remaining_ratio": 0.5, "overrides": [o]},
        ]});
        let a = decide(&d, "s", None);
        assert_eq!(a.decision, Decision::Allowed);
        assert_eq!(
            a.lines()[0],
            "allowed: s/a: -25.0% of the error budget left, below the release-freeze policy; freeze overridden by alice until 2026-11-26T06:00:00Z: fix for INC-4"
        );
        let j = a.json("u", "s", None, &d);
        assert_eq!(j["overrides"], json!([o]));
        assert_eq!(j["slos"][0]["overrides"], json!([o]));
    }
}
