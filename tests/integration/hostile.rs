//! The hostile-input corpus (`tests/fixtures/hostile/`): files made to
//! crash, hang, exhaust or trick errbudget. Each must give its exact
//! error and exit code within bounds on time and memory, never a panic
//! or an abort; a running daemon asked to reload any of them keeps
//! serving its old SLOs. Large inputs are generated here rather than
//! committed.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::daemon::value_of;
use crate::harness::{errbudget_bin, poll, Daemon};
use crate::http;

/// Every case must finish within this, using at most this much memory.
const MAX_TIME: Duration = Duration::from_secs(10);
const MAX_RSS_KIB: i64 = 150 * 1024;

fn corpus(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hostile")
        .join(rel)
}

struct Outcome {
    code: Option<i32>,
    signal: Option<i32>,
    stderr: String,
    elapsed: Duration,
    max_rss_kib: i64,
}

/// Runs `errbudget ARGS` in `dir`, measuring wall time and peak RSS
/// (`wait4`'s rusage), killing it past [`MAX_TIME`].
fn run_measured(dir: &Path, args: &[&str]) -> Outcome {
    let out = tempfile::NamedTempFile::new().expect("tempfile");
    let err = tempfile::NamedTempFile::new().expect("tempfile");
    let start = Instant::now();
    #[allow(clippy::zombie_processes)]
    let child = Command::new(errbudget_bin())
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(out.reopen().expect("reopen"))
        .stderr(err.reopen().expect("reopen"))
        .spawn()
        .expect("spawn errbudget");
    // Reaped by wait4 below, which also gives the rusage std's wait hides.
    let pid = child.id() as libc::pid_t;
    std::mem::forget(child);
    let mut status = 0;
    // SAFETY: rusage is plain data, filled by the kernel.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our child; the pointers are valid for the call.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break;
        }
        if start.elapsed() > MAX_TIME {
            // SAFETY: plain kill of our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("errbudget {args:?} still running after {MAX_TIME:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let st = std::process::ExitStatus::from_raw(status);
    Outcome {
        code: st.code(),
        signal: st.signal(),
        stderr: std::fs::read_to_string(err.path()).unwrap_or_default(),
        elapsed: start.elapsed(),
        max_rss_kib: usage.ru_maxrss,
    }
}

/// `check` exits 1 with exactly `want` (then the problem count), in bounds.
fn assert_check(dir: &Path, args: &[&str], want: &[&str]) {
    let mut full = vec!["check"];
    full.extend_from_slice(args);
    let o = run_measured(dir, &full);
    let mut lines: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    lines.push(format!("{} problem(s) found", want.len()));
    assert_eq!(
        (o.code, o.signal, o.stderr.lines().collect::<Vec<_>>()),
        (Some(1), None, lines.iter().map(String::as_str).collect()),
        "check {args:?}"
    );
    assert!(o.elapsed < MAX_TIME, "check {args:?}: {:?}", o.elapsed);
    assert!(
        o.max_rss_kib < MAX_RSS_KIB,
        "check {args:?}: {} KiB",
        o.max_rss_kib
    );
    eprintln!(
        "check {args:?}: exit 1 in {:.2}s, max RSS {} KiB",
        o.elapsed.as_secs_f64(),
        o.max_rss_kib
    );
}

/// Writes the large and special inputs no one should commit.
struct Generated {
    dir: tempfile::TempDir,
}

impl Generated {
    fn new() -> Generated {
        let g = Generated {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        let head = "version: \"prometheus/v1\"\nservice: \"hostile\"\nlabels:\n";
        // 16,800 block sequences on one line (33 KiB): aborted with a stack
        // overflow before the depth bound.
        g.write(
            "deep-block-16800.yaml",
            &format!("{head}{}v\n", "- ".repeat(16_800)),
        );
        // 2,500 indented levels (3 MiB, under the size cap): aborted too.
        let mut indented = head.to_string();
        for i in 0..2_500 {
            indented.push_str(&" ".repeat(i + 1));
            indented.push_str("k:\n");
        }
        indented.push_str(&" ".repeat(2_502));
        indented.push_str("v\n");
        g.write("deep-indent-2500.yaml", &indented);
        // 5 MiB of comments: over the 4 MiB spec cap.
        g.write(
            "huge.yaml",
            &"# padding padding padding padding padding padding\n".repeat(105_000),
        );
        // 2 MiB settings: over the 1 MiB settings cap.
        g.write(
            "huge-settings.yaml",
            &format!(
                "prometheus:\n  url: http://127.0.0.1:9\n{}",
                "# pad\n".repeat(350_000)
            ),
        );
        let fifo = g.path("fifo.yaml");
        let c = std::ffi::CString::new(fifo.to_str().expect("utf-8 path")).expect("no NUL");
        // SAFETY: valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
        g
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path(name), text).expect("write generated file");
    }
}

const DEEP: &str = "nesting deeper than 64 levels";

#[test]
fn hostile_specs_get_their_exact_error_in_bounds() {
    let dir = corpus("specs");
    let cases: &[(&str, &str)] = &[
        ("deep-block-sequences.yaml", &format!("deep-block-sequences.yaml:4:127: {DEEP}")),
        ("deep-flow.yaml", &format!("deep-flow.yaml:3:264: {DEEP}")),
        ("deep-indent.yaml", &format!("deep-indent.yaml:67:65: {DEEP}")),
        ("deep-alias.yaml", &format!("deep-alias.yaml:4:129: {DEEP}")),
        ("billion-laughs.yaml", "billion-laughs.yaml:7:38: invalid YAML: alias expansion exceeded the maximum node budget (possible billion-laughs attack)"),
        ("empty.yaml", "empty.yaml: defines nothing: expected Sloth prometheus/v1, a Sloth PrometheusServiceLevel or AlertWindows, a Pyrra ServiceLevelObjective or OpenSLO objects"),
        ("comments-only.yaml", "comments-only.yaml: defines nothing: expected Sloth prometheus/v1, a Sloth PrometheusServiceLevel or AlertWindows, a Pyrra ServiceLevelObjective or OpenSLO objects"),
        ("nul.yaml", "nul.yaml:4:13: a NUL byte: not a text file"),
        ("non-utf8.yaml", "non-utf8.yaml:4:12: not UTF-8 text"),
        ("token.yaml", "token.yaml:1:1: top level: expected a mapping, found text (not repeated here)"),
        ("period-unbounded.yaml", "period-unbounded.yaml:6:13: slos[0].period: 999999999999d is longer than the 366d errbudget can evaluate (start-up reads the period one day per range query, and holds it in memory as 5-minute buckets)"),
        ("promql-huge.yaml", "promql-huge.yaml:8:22: slos[0].sli.events.error_query: invalid PromQL: query has 599 binary operators, more than the 500 accepted"),
    ];
    for (file, want) in cases {
        assert_check(&dir, &[file], &[want]);
    }
    let g = Generated::new();
    let gen = g.dir.path();
    assert_check(
        gen,
        &["deep-block-16800.yaml"],
        &[&format!("deep-block-16800.yaml:4:127: {DEEP}")],
    );
    assert_check(
        gen,
        &["deep-indent-2500.yaml"],
        &[&format!("deep-indent-2500.yaml:67:65: {DEEP}")],
    );
    assert_check(
        gen,
        &["huge.yaml"],
        &["huge.yaml: cannot read: larger than 4 MiB, the limit for spec files"],
    );
    assert_check(
        gen,
        &["-c", "huge-settings.yaml"],
        &["huge-settings.yaml: cannot read: larger than 1 MiB, the limit for settings files"],
    );
    assert_check(
        gen,
        &["fifo.yaml"],
        &["fifo.yaml: cannot read: a FIFO, not a regular file"],
    );
    assert_check(
        gen,
        &["-c", "/dev/zero"],
        &["/dev/zero: cannot read: a character device, not a regular file"],
    );
    // The valid file of the corpus passes, so the cases above fail for
    // their own reason.
    let o = run_measured(&dir, &["check", "valid.yaml"]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
}

/// A settings directory holding the corpus' settings and web configs, and
/// a valid spec as `slo.yaml` beside them.
fn settings_workspace() -> tempfile::TempDir {
    let ws = tempfile::tempdir().expect("tempdir");
    for sub in ["settings", "web"] {
        std::fs::create_dir_all(ws.path().join(sub)).expect("mkdir");
        for e in std::fs::read_dir(corpus(sub)).expect("corpus dir") {
            let p = e.expect("dir entry").path();
            let name = p.file_name().expect("file name");
            std::fs::copy(&p, ws.path().join(sub).join(name)).expect("copy");
        }
    }
    std::fs::copy(
        corpus("specs/valid.yaml"),
        ws.path().join("settings/slo.yaml"),
    )
    .expect("copy valid spec");
    ws
}

#[test]
fn hostile_settings_and_web_configs_are_refused_as_run_would() {
    let ws = settings_workspace();
    let dir = ws.path();
    let cases: &[(&str, &str)] = &[
        ("settings/deep.yaml", &format!("settings/deep.yaml:5:261: {DEEP}")),
        // The password of an unparsable URL is not repeated.
        ("settings/url-userinfo.yaml", "settings/url-userinfo.yaml:2:8: prometheus.url: invalid URL \"http://<redacted>@prometheus:190900\": invalid port number"),
        ("settings/alertmanager-query-token.yaml", "settings/alertmanager-query-token.yaml:6:12: alerting.alertmanagers[0].url: \"http://alertmanager:9093/?<redacted>\" must not have a query string or fragment (give credentials with basic_auth or bearer_token_file, and headers with headers)"),
        ("settings/bearer-token-missing.yaml", "settings/bearer-token-missing.yaml: cannot set up the Prometheus client: cannot read bearer_token_file settings/missing-token: No such file or directory (os error 2)"),
        ("settings/bearer-token-device.yaml", "settings/bearer-token-device.yaml: cannot set up the Prometheus client: cannot read bearer_token_file /dev/zero: a character device, not a regular file"),
        ("settings/web-bcrypt-cost-31.yaml", "settings/../web/bcrypt-cost-31.yaml:2:10: basic_auth_users.alice: bcrypt cost 31 is above 14, the highest accepted: every check of a wrong password would cost 2^31 rounds of CPU; hash the password again with a cost of 10 to 14"),
    ];
    for (file, want) in cases {
        assert_check(dir, &["-c", file], &[want]);
        // `run` refuses the same file with the same message: what check
        // accepts starts, and what it refuses does not.
        let o = run_measured(
            dir,
            &["run", "-c", file, "--web.listen-address", "127.0.0.1:0"],
        );
        assert_eq!(o.code, Some(1), "run -c {file}: {}", o.stderr);
        assert!(o.stderr.contains(want), "run -c {file}:\n{}", o.stderr);
        assert!(!o.stderr.contains("S3cret"), "{}", o.stderr);
    }
    // A glob that matches only devices names each of them.
    let o = run_measured(dir, &["check", "-c", "settings/slo-files-devices.yaml"]);
    assert_eq!(o.code, Some(1), "{}", o.stderr);
    for dev in ["/dev/stdin", "/dev/stdout", "/dev/stderr"] {
        assert!(
            o.stderr.lines().any(|l| l.starts_with(&format!("{dev}: "))),
            "{dev} not named:\n{}",
            o.stderr
        );
    }
    assert!(!o.stderr.contains("OK"), "{}", o.stderr);
}

fn slo_names(d: &Daemon) -> Vec<String> {
    let v: serde_json::Value =
        serde_json::from_str(&d.get("/api/v1/slos").body).expect("slos JSON");
    let mut names: Vec<String> = v["slos"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s["slo"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn counter(d: &Daemon, name: &str, labels: &[(&str, &str)]) -> f64 {
    value_of(&d.get("/metrics").body, name, labels)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// A daemon asked to reload each hostile spec and settings file answers
/// 500 with the error, keeps running and keeps serving its old SLOs.
#[test]
fn a_running_daemon_survives_reloading_every_hostile_file() {
    let ws = tempfile::tempdir().expect("tempdir");
    let dir = ws.path();
    std::fs::create_dir_all(dir.join("slos")).expect("mkdir");
    let valid = std::fs::read_to_string(corpus("specs/valid.yaml")).expect("valid spec");
    std::fs::write(dir.join("slos/valid.yaml"), &valid).expect("write");
    let settings = "prometheus:\n  url: http://127.0.0.1:9\nevaluation_interval: 1m\nslo_files: [slos/*.yaml]\n";
    let cfg = dir.join("errbudget.yaml");
    std::fs::write(&cfg, settings).expect("write settings");
    let mut d = Daemon::start(&cfg);
    // Listed once the first cycle has run (it fails: no Prometheus).
    poll(Duration::from_secs(30), || {
        (slo_names(&d) == ["availability"]).then_some(())
    })
    .expect("SLO listed");

    let g = Generated::new();
    let mut hostile: Vec<PathBuf> = std::fs::read_dir(corpus("specs"))
        .expect("corpus")
        .map(|e| e.expect("entry").path())
        .filter(|p| !p.ends_with("valid.yaml"))
        .collect();
    hostile.sort();
    hostile.extend(
        [
            "deep-block-16800.yaml",
            "deep-indent-2500.yaml",
            "huge.yaml",
        ]
        .map(|n| g.path(n)),
    );
    let target = dir.join("slos/hostile.yaml");
    for file in &hostile {
        std::fs::copy(file, &target).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let r = http::post(d.addr, "/-/reload", "").expect("POST /-/reload");
        assert_eq!(r.status, 500, "{}: {}", file.display(), r.body);
        assert!(
            r.body.contains("slos/hostile.yaml"),
            "{}: {}",
            file.display(),
            r.body
        );
        assert!(!r.body.contains("ghp_"), "{}", r.body);
        assert!(
            d.guard.exited().is_none(),
            "died on {}\n{}",
            file.display(),
            d.guard.log_tail()
        );
        assert_eq!(slo_names(&d), ["availability"], "after {}", file.display());
    }
    std::fs::remove_file(&target).expect("rm");

    // Hostile settings: the same, with the settings file itself replaced.
    let sws = settings_workspace();
    for name in [
        "deep.yaml",
        "url-userinfo.yaml",
        "alertmanager-query-token.yaml",
    ] {
        let text = std::fs::read_to_string(sws.path().join("settings").join(name)).expect("read");
        std::fs::write(&cfg, text).expect("write settings");
        let r = http::post(d.addr, "/-/reload", "").expect("POST /-/reload");
        assert_eq!(r.status, 500, "{name}: {}", r.body);
        assert!(!r.body.contains("S3cret"), "{name}: {}", r.body);
        assert!(
            d.guard.exited().is_none(),
            "died on {name}\n{}",
            d.guard.log_tail()
        );
        assert_eq!(slo_names(&d), ["availability"], "after {name}");
    }
    std::fs::copy(g.path("huge-settings.yaml"), &cfg).expect("copy");
    assert_eq!(
        http::post(d.addr, "/-/reload", "").expect("POST").status,
        500
    );
    assert!(
        !d.guard.log_tail().contains("S3cret"),
        "{}",
        d.guard.log_tail()
    );

    // The fixed file loads again.
    std::fs::write(&cfg, settings).expect("write settings");
    let r = http::post(d.addr, "/-/reload", "").expect("POST /-/reload");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(slo_names(&d), ["availability"]);
}

/// 100 concurrent `POST /-/reload` and then 500 SIGHUPs are served by a
/// handful of reloads and evaluation cycles, and every POST is answered.
#[test]
fn reload_bursts_coalesce() {
    let ws = tempfile::tempdir().expect("tempdir");
    let dir = ws.path();
    std::fs::create_dir_all(dir.join("slos")).expect("mkdir");
    std::fs::copy(corpus("specs/valid.yaml"), dir.join("slos/valid.yaml")).expect("copy");
    let cfg = dir.join("errbudget.yaml");
    std::fs::write(
        &cfg,
        "prometheus:\n  url: http://127.0.0.1:9\n  timeout: 1s\nevaluation_interval: 1h\nslo_files: [slos/*.yaml]\n",
    )
    .expect("write settings");
    let d = Daemon::start(&cfg);
    let reloads = |d: &Daemon| {
        counter(
            d,
            "errbudget_config_reloads_total",
            &[("outcome", "success")],
        )
    };
    let cycles = |d: &Daemon| counter(d, "errbudget_evaluation_duration_seconds_count", &[]);
    // The first cycle runs at start; wait for it.
    poll(Duration::from_secs(30), || {
        (cycles(&d) >= 1.0).then_some(())
    })
    .expect("first cycle");
    let (r0, c0) = (reloads(&d), cycles(&d));

    let addr = d.addr;
    let answers: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..100)
            .map(|_| s.spawn(move || http::post(addr, "/-/reload", "").map(|r| r.status)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread").expect("POST /-/reload"))
            .collect()
    });
    assert!(answers.iter().all(|s| *s == 200), "{answers:?}");
    let (r1, c1) = (reloads(&d), cycles(&d));
    eprintln!(
        "100 POST /-/reload: {} reloads, {} cycles",
        r1 - r0,
        c1 - c0
    );
    assert!(
        r1 - r0 >= 1.0 && r1 - r0 <= 5.0,
        "{} reloads for 100 POSTs",
        r1 - r0
    );
    assert!(c1 - c0 <= 5.0, "{} cycles for 100 POSTs", c1 - c0);

    let pid = d.guard.pid() as libc::pid_t;
    for _ in 0..500 {
        // SAFETY: signalling the daemon we started.
        unsafe { libc::kill(pid, libc::SIGHUP) };
    }
    // Let the last coalesced reload run (1 s gap), then count.
    std::thread::sleep(Duration::from_secs(3));
    let (r2, c2) = (reloads(&d), cycles(&d));
    eprintln!("500 SIGHUP: {} reloads, {} cycles", r2 - r1, c2 - c1);
    assert!(
        r2 - r1 >= 1.0 && r2 - r1 <= 5.0,
        "{} reloads for 500 SIGHUPs",
        r2 - r1
    );
    assert!(c2 - c1 <= 5.0, "{} cycles for 500 SIGHUPs", c2 - c1);
}

/// A real Prometheus answering with a label errbudget owns (here added by
/// `label_replace`): an error of that SLO naming the label, never two
/// `/metrics` series with one label set.
#[test]
fn a_query_result_with_a_label_errbudget_owns_is_an_error_of_that_slo() {
    let prom = crate::harness::Prometheus::start_with(None, "global:\n  scrape_interval: 15s\n");
    let valid = std::fs::read_to_string(corpus("specs/valid.yaml")).expect("valid spec");
    let hostile = valid
        .replace(
            "sum(rate(http_requests_total{code=~\"5..\"}[{{.window}}]))",
            "label_replace(sum(rate(http_requests_total{code=~\"5..\"}[{{.window}}])) or vector(1), \"window\", \"5m\", \"\", \"\")",
        )
        .replace(
            "sum(rate(http_requests_total[{{.window}}]))",
            "sum(rate(http_requests_total[{{.window}}])) or vector(2)",
        );
    assert_ne!(hostile, valid);
    let ws = crate::harness::Workspace::new();
    let cfg = ws.config(&prom.url(), "30s", &[("hostile.yaml", &hostile)]);
    let (code, out, err) = crate::harness::eval(&cfg, crate::scraped::unix_now());
    assert_eq!(code, Some(1), "{out}\n{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("eval JSON");
    let slos = v["slos"].as_array().expect("slos");
    assert_eq!(slos.len(), 1, "{out}");
    assert_eq!(slos[0]["status"], "error", "{out}");
    let e = slos[0]["error"].as_str().unwrap_or_default();
    assert!(
        e.contains("carries the label \"window\", which errbudget sets itself"),
        "{e}"
    );
}
