//! Processes under test: a real Prometheus on a backfilled TSDB and the
//! errbudget binary. Every child is killed on drop (also on panic), every
//! wait is bounded, everything listens on loopback ports picked by binding
//! port 0.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::http;

pub use crate::bins::{alertmanager, prometheus, promtool, victoria_metrics};

/// Fails (never skips) when a required Prometheus tool is missing.
pub fn require(bin: &str) {
    crate::bins::require(bin, "prometheus");
}

/// `promtool ARGS` with `stdin` written to it (e.g. `check metrics`):
/// exit code and stdout+stderr. promtool reads stdin to EOF and exits;
/// bounded by the test timeout.
pub fn promtool_with_stdin(args: &[&str], stdin: &str) -> (Option<i32>, String) {
    use std::io::Write;
    require(promtool());
    let mut child = Command::new(promtool())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A child process killed (and reaped) on drop.
pub struct Guard {
    pub name: String,
    pub child: Option<Child>,
    pub log: PathBuf,
}

impl Guard {
    pub fn spawn(name: &str, cmd: &mut Command, log: PathBuf) -> Guard {
        let out = std::fs::File::create(&log).expect("create log file");
        let err = out.try_clone().expect("clone log file");
        use std::os::unix::process::CommandExt as _;
        // SAFETY: prctl is async-signal-safe and touches no memory of ours;
        // it makes the kernel kill the child if the test dies without
        // running Drop (e.g. killed on timeout).
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        Guard {
            name: name.to_string(),
            child: Some(child),
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("child running").id()
    }

    pub fn log_tail(&self) -> String {
        let s = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = s.len().saturating_sub(4000);
        let start = (start..s.len())
            .find(|i| s.is_char_boundary(*i))
            .unwrap_or(0);
        format!(
            "--- {} log ({}) ---\n{}",
            self.name,
            self.log.display(),
            &s[start..]
        )
    }

    /// Some(status) if the child has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Sends a signal by name (`TERM`, `HUP`) with the `kill` command.
    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .args(["-s", sig, &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -s {sig} {} failed", self.pid());
    }

    /// Waits up to `timeout` for the child to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(st) = self.exited() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Polls `f` every 100 ms until it returns Some or `timeout` passes.
pub fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs a command to completion with a bounded wait; kills it on timeout.
pub fn run_bounded(cmd: &mut Command, timeout: Duration) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (o, e) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&o).expect("out file"))
        .stderr(std::fs::File::create(&e).expect("err file"))
        .spawn()
        .unwrap_or_else(|err| panic!("spawn {cmd:?}: {err}"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        status.code(),
        std::fs::read_to_string(o).unwrap_or_default(),
        std::fs::read_to_string(e).unwrap_or_default(),
    )
}

/// Turns OpenMetrics texts (one per day) into TSDB blocks with promtool,
/// two promtool processes at a time. When `cache` is set, blocks are kept
/// under the cargo target tmp dir keyed by a hash of the exact texts, so
/// the 30-day backfill is built once and shared by every test process
/// (nextest runs each test in its own process).
/// A Prometheus holding one day of the given series, ending at the current
/// minute (`series` gets that end, to place incidents). Returns the
/// generated events too: they are the expected figures.
pub fn day_ending_now(
    series: impl Fn(i64) -> Vec<crate::events::Series>,
) -> (Prometheus, Vec<crate::events::Generated>) {
    use crate::events::{openmetrics_days, DAY, MINUTE};
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64;
    let end = now - now.rem_euclid(MINUTE);
    let start = end - DAY;
    let gens: Vec<_> = series(end).iter().map(|s| s.generate(start, end)).collect();
    let (_tmp, blocks) = backfill(&openmetrics_days(&gens, start, end), false);
    (Prometheus::start(&blocks), gens)
}

pub fn backfill(chunks: &[String], cache: bool) -> (Option<tempfile::TempDir>, PathBuf) {
    require(promtool());
    let mut h = 0u64;
    for c in chunks {
        h = h.rotate_left(5) ^ crate::events::fnv1a(c.as_bytes());
    }
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-blocks");
    let cached = root.join(format!("{h:016x}"));
    if cache && cached.join("done").exists() {
        return (None, cached);
    }
    std::fs::create_dir_all(&root).expect("create cache root");
    let work = tempfile::tempdir_in(&root).expect("tempdir");
    let blocks = work.path().join("blocks");
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(text) = chunks.get(i) else { return };
                let input = work.path().join(format!("day{i:03}.om"));
                std::fs::write(&input, text).expect("write openmetrics");
                let (code, out, err) = run_bounded(
                    Command::new(promtool())
                        .args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"])
                        .arg(&input)
                        .arg(&blocks),
                    Duration::from_secs(120),
                );
                assert_eq!(
                    code,
                    Some(0),
                    "promtool backfill of {input:?} failed:\n{out}\n{err}"
                );
                let _ = std::fs::remove_file(&input);
            });
        }
    });
    std::fs::write(blocks.join("done"), "").expect("mark done");
    if !cache {
        return (Some(work), blocks);
    }
    // Another test process may have won the race; either copy is identical.
    let _ = std::fs::rename(&blocks, &cached);
    assert!(
        cached.join("done").exists(),
        "block cache {cached:?} missing"
    );
    prune_cache(&root, &cached);
    (None, cached)
}

/// Removes cached datasets of earlier model versions (finished more than
/// an hour ago, so a concurrent run of another version is not disturbed).
fn prune_cache(root: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let old = std::fs::metadata(p.join("done"))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > Duration::from_secs(3600));
        if p != keep && old {
            let _ = std::fs::remove_dir_all(&p);
        }
    }
}

/// Block directories (those with a meta.json) under `dir`.
pub fn block_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.retain(|p| p.join("meta.json").exists());
    v.sort();
    v
}

fn link_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("dir entry");
        let dst = to.join(e.file_name());
        if e.file_type().expect("file type").is_dir() {
            link_tree(&e.path(), &dst);
        } else if std::fs::hard_link(e.path(), &dst).is_err() {
            std::fs::copy(e.path(), &dst).expect("copy block file");
        }
    }
}

pub struct Prometheus {
    pub addr: SocketAddr,
    pub data: PathBuf,
    pub blocks_loaded: usize,
    pub guard: Guard,
    scheme: &'static str,
    prefix: String,
    _dir: tempfile::TempDir,
}

/// How a Prometheus serves, beyond its data and `prometheus.yml`.
#[derive(Default)]
pub struct PrometheusOptions<'a> {
    /// A path such as `/prometheus` for `--web.external-url`: every
    /// endpoint then lives under it, as behind a reverse proxy.
    pub prefix: Option<&'a str>,
    /// An exporter-toolkit `--web.config.file`; with `tls_server_config`
    /// the server speaks HTTPS only.
    pub web_config: Option<&'a Path>,
}

impl Prometheus {
    /// Starts Prometheus on a private data dir holding (hard links to) the
    /// given blocks, and waits (bounded) for `/-/ready`.
    pub fn start(blocks: &Path) -> Prometheus {
        Prometheus::start_with(
            Some(blocks),
            "global:\n  scrape_interval: 1m\nscrape_configs: []\n",
        )
    }

    /// As `start`, with the given `prometheus.yml` (e.g. to scrape
    /// errbudget).
    pub fn start_with_config(blocks: &Path, config: &str) -> Prometheus {
        Prometheus::start_with(Some(blocks), config)
    }

    /// A Prometheus with an empty TSDB scraping `targets` (job name, address)
    /// every `interval` (whole seconds, e.g. `1s`), for live tests.
    pub fn scraping(targets: &[(&str, SocketAddr)], interval: &str) -> Prometheus {
        let mut cfg = format!(
            "global:\n  scrape_interval: {interval}\n  scrape_timeout: {interval}\n\
             \x20 evaluation_interval: {interval}\nscrape_configs:\n"
        );
        for (job, addr) in targets {
            cfg.push_str(&format!(
                "  - job_name: \"{job}\"\n    static_configs:\n      - targets: [\"{addr}\"]\n"
            ));
        }
        Prometheus::start_with(None, &cfg)
    }

    /// Started and waited for: `/-/ready` answers 200.
    pub fn start_with(blocks: Option<&Path>, config: &str) -> Prometheus {
        let mut p = Prometheus::spawn(blocks, config, &PrometheusOptions::default());
        p.wait_ready(Duration::from_secs(90));
        p
    }

    /// Started, not waited for: with a TLS web config the plain-HTTP probe
    /// of `wait_ready` cannot reach it, so the caller probes its own way
    /// (`poll_ready`).
    pub fn spawn(blocks: Option<&Path>, config: &str, opts: &PrometheusOptions) -> Prometheus {
        require(prometheus());
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("mkdir data");
        let mut blocks_loaded = 0;
        for b in blocks.map(block_dirs).unwrap_or_default() {
            link_tree(&b, &data.join(b.file_name().expect("block name")));
            blocks_loaded += 1;
        }
        let cfg = dir.path().join("prometheus.yml");
        std::fs::write(&cfg, config).expect("write prometheus.yml");
        let port = free_port();
        let scheme = if opts.web_config.is_some() {
            "https"
        } else {
            "http"
        };
        let prefix = opts.prefix.unwrap_or("").trim_end_matches('/').to_string();
        let mut cmd = Command::new(prometheus());
        if !prefix.is_empty() {
            cmd.arg(format!(
                "--web.external-url={scheme}://127.0.0.1:{port}{prefix}/"
            ));
        }
        if let Some(web) = opts.web_config {
            cmd.arg(format!("--web.config.file={}", web.display()));
        }
        let guard = Guard::spawn(
            "prometheus",
            cmd.arg(format!("--config.file={}", cfg.display()))
                .arg(format!("--storage.tsdb.path={}", data.display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                // Backfilled data is weeks old: keep it (retention counts
                // from the newest block, but be explicit).
                .arg("--storage.tsdb.retention.time=100y")
                // min = max block duration disables compaction, so the
                // backfilled 2h blocks are not rewritten while tests run.
                .arg("--storage.tsdb.min-block-duration=2h")
                .arg("--storage.tsdb.max-block-duration=2h")
                .arg("--log.level=warn"),
            dir.path().join("prometheus.log"),
        );
        Prometheus {
            addr: loopback(port),
            data,
            blocks_loaded,
            guard,
            scheme,
            prefix,
            _dir: dir,
        }
    }

    /// Kills Prometheus (SIGKILL) and waits for it to exit: from now on its
    /// port refuses connections.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.guard.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits (bounded) for `/-/ready` over plain HTTP.
    pub fn wait_ready(&mut self, timeout: Duration) {
        let (addr, ready) = (self.addr, self.path("/-/ready"));
        let deadline = Instant::now() + timeout;
        while !self.poll_ready(|| matches!(http::get(addr, &ready), Ok(r) if r.status == 200)) {
            assert!(
                Instant::now() < deadline,
                "prometheus not ready within {timeout:?}\n{}",
                self.guard.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// One readiness check for callers that wait without blocking (an
    /// async test probing over TLS); panics with the log if Prometheus
    /// has exited.
    pub fn poll_ready(&mut self, probe: impl FnOnce() -> bool) -> bool {
        if let Some(st) = self.guard.exited() {
            panic!("prometheus exited early ({st})\n{}", self.guard.log_tail());
        }
        probe()
    }

    /// The base URL, scheme and path prefix included.
    pub fn url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.addr, self.prefix)
    }

    /// `path` under the prefix.
    pub fn path(&self, path: &str) -> String {
        format!("{}{path}", self.prefix)
    }

    /// Instant query at unix time `t`; returns the whole response JSON.
    pub fn query_raw(&self, expr: &str, t: i64, stats: bool) -> Value {
        let mut body = format!("query={}&time={t}", http::encode(expr));
        if stats {
            body.push_str("&stats=all");
        }
        let r =
            http::post(self.addr, &self.path("/api/v1/query"), &body).expect("query prometheus");
        assert_eq!(r.status, 200, "query {expr}: {}", r.body);
        serde_json::from_str(&r.body).expect("prometheus JSON")
    }

    /// Instant query returning a single scalar-ish value (first series).
    pub fn query_value(&self, expr: &str, t: i64) -> Option<f64> {
        let v = self.query_raw(expr, t, false);
        let first = v["data"]["result"].as_array()?.first()?.clone();
        first["value"][1].as_str()?.parse().ok()
    }
}

pub fn errbudget_bin() -> &'static str {
    env!("CARGO_BIN_EXE_errbudget")
}

/// A temp dir holding an errbudget config and its SLO spec files.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Workspace {
        Workspace {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes `errbudget.yaml` pointing at `prom_url` with specs under
    /// `slos/`; returns the config path.
    pub fn config(&self, prom_url: &str, interval: &str, specs: &[(&str, &str)]) -> PathBuf {
        self.config_with(prom_url, interval, "", specs)
    }

    /// As `config`, with `extra` YAML appended (e.g. an `alerting:` block).
    pub fn config_with(
        &self,
        prom_url: &str,
        interval: &str,
        extra: &str,
        specs: &[(&str, &str)],
    ) -> PathBuf {
        let slos = self.path("slos");
        let _ = std::fs::remove_dir_all(&slos);
        std::fs::create_dir_all(&slos).expect("mkdir slos");
        for (name, text) in specs {
            std::fs::write(slos.join(name), text).expect("write spec");
        }
        let cfg = self.path("errbudget.yaml");
        std::fs::write(
            &cfg,
            format!(
                "prometheus:\n  url: {prom_url}\n  timeout: 30s\n\
                 evaluation_interval: {interval}\nslo_files:\n  - slos/*.yaml\n{extra}"
            ),
        )
        .expect("write config");
        cfg
    }
}

/// `errbudget eval --config.file CFG --at T --output json`.
pub fn eval(cfg: &Path, t: i64) -> (Option<i32>, String, String) {
    run_bounded(
        Command::new(errbudget_bin())
            .arg("eval")
            .arg("--config.file")
            .arg(cfg)
            .arg("--at")
            .arg(rfc3339(t))
            .args(["--output", "json"]),
        Duration::from_secs(120),
    )
}

/// Runs eval and parses its JSON, failing with the output on exit ≠ 0.
pub fn eval_json(cfg: &Path, t: i64) -> Value {
    let (code, out, err) = eval(cfg, t);
    assert_eq!(
        code,
        Some(0),
        "eval exit code\nstdout:\n{out}\nstderr:\n{err}"
    );
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("eval JSON: {e}\n{out}\n{err}"))
}

/// The `evaluated_at` of an `eval` or `/api/v1/slos` answer, in unix seconds.
pub fn evaluated_at(doc: &Value) -> i64 {
    let text = doc["evaluated_at"].as_str().expect("evaluated_at");
    humantime::parse_rfc3339(text)
        .expect("evaluated_at in RFC 3339")
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

pub fn rfc3339(t: i64) -> String {
    let st = std::time::UNIX_EPOCH + Duration::from_secs(t as u64);
    humantime::format_rfc3339_seconds(st).to_string()
}

pub struct Daemon {
    pub addr: SocketAddr,
    pub guard: Guard,
    _logdir: tempfile::TempDir,
}

impl Daemon {
    /// `errbudget run` on a free loopback port; waits for `/-/healthy`.
    pub fn start(cfg: &Path) -> Daemon {
        Daemon::start_on(cfg, free_port())
    }

    /// As `start`, on a port chosen beforehand (e.g. one Prometheus already
    /// scrapes).
    pub fn start_on(cfg: &Path, port: u16) -> Daemon {
        Daemon::start_with_args(cfg, port, &[])
    }

    /// As `start_on`, with more flags for `run`.
    pub fn start_with_args(cfg: &Path, port: u16, args: &[&std::ffi::OsStr]) -> Daemon {
        Daemon::start_as(cfg, port, args, None)
    }

    /// As `start_with_args` for a web config asking for basic auth: waits
    /// for `/-/healthy` with these credentials.
    pub fn start_as(
        cfg: &Path,
        port: u16,
        args: &[&std::ffi::OsStr],
        auth: Option<(&str, &str)>,
    ) -> Daemon {
        let logdir = tempfile::tempdir().expect("tempdir");
        let guard = Guard::spawn(
            "errbudget",
            Command::new(errbudget_bin())
                .arg("run")
                .arg("--config.file")
                .arg(cfg)
                .arg("--web.listen-address")
                .arg(format!("127.0.0.1:{port}"))
                .args(args),
            logdir.path().join("errbudget.log"),
        );
        let mut d = Daemon {
            addr: loopback(port),
            guard,
            _logdir: logdir,
        };
        let addr = d.addr;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = d.guard.exited() {
                panic!("errbudget run exited early ({st})\n{}", d.guard.log_tail());
            }
            if matches!(http::request_as(addr, "GET", "/-/healthy", auth, ""), Ok(r) if r.status == 200)
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "/-/healthy not 200 within 30s\n{}",
                d.guard.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        d
    }

    pub fn get(&self, path: &str) -> http::Response {
        http::get(self.addr, path)
            .unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", self.guard.log_tail()))
    }
}

/// A single-node VictoriaMetrics on loopback, loaded through its import
/// API (it has no promtool-style backfill; import is the supported way).
pub struct VictoriaMetrics {
    pub addr: SocketAddr,
    pub guard: Guard,
    _dir: tempfile::TempDir,
}

impl VictoriaMetrics {
    pub fn start() -> VictoriaMetrics {
        crate::bins::require(victoria_metrics(), "victoria-metrics");
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let guard = Guard::spawn(
            "victoria-metrics",
            Command::new(victoria_metrics())
                .arg(format!(
                    "-storageDataPath={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
                .arg("-retentionPeriod=100y")
                .arg("-search.disableCache")
                .arg("-loggerLevel=WARN"),
            dir.path().join("vm.log"),
        );
        let mut vm = VictoriaMetrics {
            addr: loopback(port),
            guard,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(st) = vm.guard.exited() {
                panic!(
                    "victoria-metrics exited early ({st})\n{}",
                    vm.guard.log_tail()
                );
            }
            if matches!(http::get(vm.addr, "/health"), Ok(r) if r.status == 200) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "victoria-metrics not healthy\n{}",
                vm.guard.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        vm
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Imports OpenMetrics text (second timestamps) as Prometheus text
    /// with millisecond timestamps, then flushes so queries see it.
    pub fn import(&self, openmetrics: &str) {
        let mut body = String::with_capacity(openmetrics.len() + openmetrics.len() / 8);
        for line in openmetrics.lines().filter(|l| !l.starts_with('#')) {
            let (series_value, ts) = line.rsplit_once(' ').expect("sample line");
            body.push_str(series_value);
            body.push(' ');
            body.push_str(ts);
            body.push_str("000\n");
        }
        let r = http::post(self.addr, "/api/v1/import/prometheus", &body).expect("import");
        assert!(r.status / 100 == 2, "import: {} {}", r.status, r.body);
        let r = http::get(self.addr, "/internal/force_flush").expect("force_flush");
        assert_eq!(r.status, 200, "force_flush: {}", r.body);
    }

    pub fn query_value(&self, expr: &str, t: i64) -> Option<f64> {
        let body = format!("query={}&time={t}", http::encode(expr));
        let r = http::post(self.addr, "/api/v1/query", &body).ok()?;
        let v: Value = serde_json::from_str(&r.body).ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }
}

/// Alertmanager on loopback with a null receiver and clustering off.
pub struct Alertmanager {
    pub addr: SocketAddr,
    pub guard: Guard,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    pub fn start() -> Alertmanager {
        Alertmanager::start_on(free_port())
    }

    /// On a given port, e.g. one errbudget was told about before it listened.
    pub fn start_on(port: u16) -> Alertmanager {
        Alertmanager::start_with(
            port,
            "route:\n  receiver: \"null\"\nreceivers:\n  - name: \"null\"\n",
        )
    }

    /// With the given `alertmanager.yml` text; fails if it does not load.
    pub fn start_with(port: u16, config: &str) -> Alertmanager {
        crate::bins::require(alertmanager(), "prometheus-alertmanager");
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = dir.path().join("alertmanager.yml");
        std::fs::write(&cfg, config).expect("write alertmanager.yml");
        let guard = Guard::spawn(
            "alertmanager",
            Command::new(alertmanager())
                .arg(format!("--config.file={}", cfg.display()))
                .arg(format!(
                    "--storage.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--cluster.listen-address="),
            dir.path().join("alertmanager.log"),
        );
        let mut am = Alertmanager {
            addr: loopback(port),
            guard,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(st) = am.guard.exited() {
                panic!("alertmanager exited early ({st})\n{}", am.guard.log_tail());
            }
            if matches!(http::get(am.addr, "/-/ready"), Ok(r) if r.status == 200) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "alertmanager not ready\n{}",
                am.guard.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        am
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `GET /api/v2/alerts`.
    pub fn alerts(&self) -> Vec<Value> {
        http::get(self.addr, "/api/v2/alerts")
            .ok()
            .filter(|r| r.status == 200)
            .and_then(|r| serde_json::from_str::<Value>(&r.body).ok())
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
    }
}
