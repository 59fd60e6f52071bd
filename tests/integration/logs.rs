//! The daemon's log and the commands' output when the other end fails: a
//! full disk, a file-size limit, a closed pipe. None may crash errbudget;
//! lost log lines are counted. Also the log line format itself.

use std::os::fd::FromRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{self, errbudget_bin, free_port, loopback, poll, Guard, Workspace};
use crate::http;

/// A config whose Prometheus refuses connections, evaluated every second:
/// each cycle logs a warning per SLO, so the log keeps growing.
fn noisy_config(ws: &Workspace) -> std::path::PathBuf {
    let spec = crate::fixtures::spec(
        "logs",
        "sre",
        &[crate::fixtures::slo("availability", "99.9", "logs", false)],
    );
    ws.config("http://127.0.0.1:1", "1s", &[("logs.yaml", &spec)])
}

/// `errbudget run` with its stderr on `stderr`, killed with the test.
fn spawn_run(cfg: &Path, port: u16, stderr: Stdio, limit_fsize: Option<u64>) -> Guard {
    let mut cmd = Command::new(errbudget_bin());
    cmd.args(["run", "--log.level=debug", "--config.file"])
        .arg(cfg)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    // SAFETY: prctl and setrlimit are async-signal-safe and touch no memory
    // of ours.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(bytes) = limit_fsize {
                let lim = libc::rlimit {
                    rlim_cur: bytes,
                    rlim_max: bytes,
                };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd.spawn().expect("spawn errbudget run");
    Guard {
        name: "errbudget".into(),
        child: Some(child),
        log: Path::new("/dev/null").into(),
    }
}

fn dropped_lines(port: u16) -> Option<f64> {
    let r = http::get(loopback(port), "/metrics").ok()?;
    crate::daemon::value_of(&r.body, "errbudget_log_lines_dropped_total", &[])?
        .parse()
        .ok()
}

/// Runs for ≥ 4 evaluation cycles while every log write fails, then
/// expects it alive, serving, and counting the lost lines.
fn survives(mut guard: Guard, port: u16, what: &str) {
    let healthy = poll(Duration::from_secs(30), || {
        if let Some(st) = guard.exited() {
            panic!(
                "errbudget died with {what}: {st} (signal {:?})",
                st.signal()
            );
        }
        matches!(http::get(loopback(port), "/-/healthy"), Ok(r) if r.status == 200).then_some(())
    });
    assert!(healthy.is_some(), "not healthy within 30s with {what}");
    let started = Instant::now();
    let mut last = 0.0;
    while started.elapsed() < Duration::from_secs(5) {
        if let Some(st) = guard.exited() {
            panic!(
                "errbudget died with {what}: {st} (signal {:?})",
                st.signal()
            );
        }
        last = dropped_lines(port).unwrap_or(last);
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(guard.exited().is_none(), "errbudget exited with {what}");
    assert!(
        last >= 4.0,
        "errbudget_log_lines_dropped_total {last} with {what}: every cycle logs lines"
    );
}

#[test]
fn run_keeps_going_when_stderr_is_a_full_disk() {
    let ws = Workspace::new();
    let cfg = noisy_config(&ws);
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("open /dev/full");
    let port = free_port();
    survives(
        spawn_run(&cfg, port, full.into(), None),
        port,
        "stderr on /dev/full",
    );
}

#[test]
fn run_keeps_going_past_a_file_size_limit_on_its_log() {
    let ws = Workspace::new();
    let cfg = noisy_config(&ws);
    let limit = 64 * 1024;
    let log = ws.path("errbudget.log");
    // Start just under the limit, so it is reached within a cycle.
    std::fs::write(&log, vec![b'#'; limit as usize - 300]).expect("prefill log");
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .expect("open log");
    let port = free_port();
    survives(
        spawn_run(&cfg, port, file.into(), Some(limit)),
        port,
        "a 64 KiB file-size limit",
    );
    let size = std::fs::metadata(&log).expect("log").len();
    assert!(size <= limit, "log grew to {size} past the limit");
    assert!(size > limit - 300, "nothing was logged before the limit");
}

/// A pipe whose reading end is already closed: every write gets EPIPE.
fn closed_pipe() -> Stdio {
    let mut fds = [0; 2];
    // SAFETY: pipe writes two new descriptors into the array we own.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
    // SAFETY: fds[0] is ours and closed once, here.
    unsafe { libc::close(fds[0]) };
    // SAFETY: fds[1] is a fresh descriptor nobody else owns.
    unsafe { Stdio::from_raw_fd(fds[1]) }
}

fn run_with_stdout(args: &[&str], stdout: Stdio) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = dir.path().join("err");
    let mut child = Command::new(errbudget_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(std::fs::File::create(&err).expect("err file"))
        .spawn()
        .expect("spawn errbudget");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("errbudget {args:?} did not finish within 60s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        status.code(),
        std::fs::read_to_string(err).unwrap_or_default(),
    )
}

/// `eval | head -c1`, `rules | head -c1` and friends: the reader is gone,
/// which ends the command quietly with 0 (no panic, no backtrace).
#[test]
fn a_closed_stdout_is_a_clean_exit() {
    let prom = harness::Prometheus::scraping(&[], "1s");
    let ws = Workspace::new();
    let spec = crate::fixtures::spec(
        "logs",
        "sre",
        &[crate::fixtures::slo("availability", "99.9", "logs", false)],
    );
    let cfg = ws.config(&prom.url(), "30s", &[("logs.yaml", &spec)]);
    let cfg = cfg.to_str().expect("utf-8 path");
    for args in [
        vec!["eval", "-c", cfg],
        vec!["eval", "-c", cfg, "--output", "json"],
        vec!["rules", "-c", cfg],
        vec!["check", "-c", cfg],
        vec!["completions", "bash"],
        vec!["--version"],
    ] {
        let (code, err) = run_with_stdout(&args, closed_pipe());
        assert_eq!(code, Some(0), "errbudget {args:?} on a closed pipe: {err}");
        assert!(!err.contains("panicked"), "errbudget {args:?}: {err}");
    }
}

/// `rules > /dev/full`: one message naming the failure, exit 2, no panic.
#[test]
fn a_full_disk_on_stdout_is_an_error_message() {
    let ws = Workspace::new();
    let cfg = noisy_config(&ws);
    let cfg = cfg.to_str().expect("utf-8 path");
    for args in [vec!["rules", "-c", cfg], vec!["check", "-c", cfg]] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("open /dev/full");
        let (code, err) = run_with_stdout(&args, full.into());
        assert_eq!(code, Some(2), "errbudget {args:?} > /dev/full: {err}");
        assert_eq!(
            err.trim(),
            "errbudget: cannot write the output: No space left on device (os error 28)",
            "errbudget {args:?}"
        );
    }
}

/// Both formats carry `ts`, `level`, `caller` and `msg` first, as
/// Prometheus components write them, then the event's own fields.
#[test]
fn log_lines_are_keyed_like_prometheus() {
    let ws = Workspace::new();
    let cfg = noisy_config(&ws);
    let (_, _, err) = harness::run_bounded(
        Command::new(errbudget_bin())
            .args(["eval", "--log.format=json", "--config.file"])
            .arg(&cfg),
        Duration::from_secs(60),
    );
    let lines: Vec<Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let failed = lines
        .iter()
        .find(|l| l["msg"] == "SLO evaluation failed")
        .unwrap_or_else(|| panic!("no evaluation failure logged:\n{err}"));
    let keys: Vec<&str> = failed
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys[..4], ["ts", "level", "caller", "msg"], "{failed}");
    assert_eq!(failed["level"], "warn");
    assert_eq!(failed["service"], "logs");
    assert_eq!(failed["slo"], "availability");
    assert!(failed["ts"].as_str().is_some_and(|t| t.ends_with('Z')));

    let (_, _, err) = harness::run_bounded(
        Command::new(errbudget_bin())
            .args(["eval", "--config.file"])
            .arg(&cfg),
        Duration::from_secs(60),
    );
    let line = err
        .lines()
        .find(|l| l.contains("msg=\"SLO evaluation failed\""))
        .unwrap_or_else(|| panic!("no logfmt evaluation failure:\n{err}"));
    let keys: Vec<&str> = line
        .split(' ')
        .filter_map(|kv| kv.split_once('=').map(|(k, _)| k))
        .take(4)
        .collect();
    assert_eq!(keys, ["ts", "level", "caller", "msg"], "{line}");
    assert!(line.contains(" level=warn "), "{line}");
    assert!(line.contains(" service=logs slo=availability "), "{line}");
}

/// A bad `--log.level` or `--log.format` is a usage error naming the
/// allowed values, before anything runs.
#[test]
fn bad_log_flags_exit_2_with_the_allowed_values() {
    for (flag, allowed) in [
        ("--log.level=bogus", "error, warn, info, debug, trace"),
        ("--log.format=xml", "logfmt, json"),
    ] {
        let (code, _, err) = harness::run_bounded(
            Command::new(errbudget_bin()).args([flag, "check", "x.yaml"]),
            Duration::from_secs(10),
        );
        assert_eq!(code, Some(2), "{flag}: {err}");
        assert!(
            err.contains(&format!("[possible values: {allowed}]")),
            "{flag}: {err}"
        );
    }
}

/// A page that starts firing is one info line naming the alert, its
/// windows and both burn rates. `burning` runs at 40% errors for the last
/// 70 minutes against a 99.9% objective: a burn rate of 0.4 / 0.001 = 400
/// over both the 1h and the 5m window.
#[test]
fn an_alert_that_starts_firing_is_logged_once_with_its_burn_rates() {
    let world = crate::scraped::start();
    let log = std::fs::read_to_string(&world.daemon.guard.log).expect("daemon log");
    let firing: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.contains("msg=\"alert firing\"")
                && l.contains(" service=burning ")
                && l.contains(" long_window=1h short_window=5m")
        })
        .collect();
    assert_eq!(firing.len(), 1, "one line per state change:\n{log}");
    let field = |name: &str| -> f64 {
        firing[0]
            .split(' ')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {}", firing[0]))
    };
    for name in ["long_burn_rate", "short_burn_rate"] {
        let burn = field(name);
        assert!(
            (300.0..500.0).contains(&burn),
            "{name} {burn}: {}",
            firing[0]
        );
    }
    assert_eq!(field("threshold"), 14.4, "{}", firing[0]);
    assert!(firing[0].contains(" level=info "), "{}", firing[0]);
    assert!(firing[0].contains(" severity=page "), "{}", firing[0]);
    assert!(
        !log.lines()
            .any(|l| l.contains("msg=\"alert firing\"") && l.contains(" service=healthy ")),
        "healthy never fires:\n{log}"
    );
}
