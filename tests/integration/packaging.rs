//! What users install: the systemd unit (checked by systemd-analyze, and
//! its readiness protocol spoken by the binary), the Debian package
//! (installed into a temporary root, started, its man page and
//! completions used) and the container image (built with buildah on
//! scratch from the static binary, its health check run).
//!
//! The package and the static binary come from `scripts/package.sh`,
//! which `scripts/test.sh` runs first; the tests fail, never skip,
//! without them.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::harness::{free_port, loopback, poll, run_bounded, Guard};
use crate::http;

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// An artifact of `scripts/package.sh`.
fn built(name: &str) -> PathBuf {
    let p = repo("target/package").join(name);
    assert!(
        p.exists(),
        "{} not found: build it with `scripts/package.sh`",
        p.display()
    );
    p
}

fn require(bin: &str, package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {bin}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "{bin} not found: install it with `apt-get install -y {package}`"
    );
}

fn ok(cmd: &mut Command, timeout: Duration) -> String {
    let (code, out, err) = run_bounded(cmd, timeout);
    assert_eq!(code, Some(0), "{cmd:?}\n{out}\n{err}");
    out
}

/// The hardened unit scores what the README says under
/// `systemd-analyze security` (offline: no running systemd needed).
#[test]
fn systemd_unit_exposure_is_as_documented() {
    require("systemd-analyze", "systemd");
    let unit = repo("packaging/systemd/errbudget.service");
    let out = ok(
        Command::new("systemd-analyze")
            .args(["security", "--offline=true", "--no-pager"])
            .arg(&unit),
        Duration::from_secs(60),
    );
    let score = out
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for errbudget.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no overall exposure level:\n{out}"));
    let value: f64 = score.parse().expect("a number");
    assert!(value <= 1.5, "exposure {value}:\n{out}");
    for setting in [
        "DynamicUser=",
        "ProtectSystem=",
        "NoNewPrivileges=",
        "CapabilityBoundingSet=~CAP_SYS_ADMIN",
        "SystemCallFilter=~@privileged",
    ] {
        let line = out
            .lines()
            .find(|l| l.contains(setting))
            .unwrap_or_else(|| panic!("{setting} not assessed:\n{out}"));
        assert!(line.starts_with('✓'), "{line}");
    }
    let readme = std::fs::read_to_string(repo("README.md")).expect("README");
    assert!(
        readme.contains(&format!("exposure level {score}")),
        "README does not state the exposure level {score}"
    );
}

/// `Type=notify`: READY=1 once it listens, STOPPING=1 on SIGTERM, over
/// the datagram socket systemd would pass in NOTIFY_SOCKET.
#[test]
fn run_tells_systemd_when_it_is_ready_and_when_it_stops() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("notify");
    let listener = UnixDatagram::bind(&socket).expect("bind notify socket");
    listener
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let ws = crate::harness::Workspace::new();
    let spec = crate::fixtures::spec(
        "unit",
        "sre",
        &[crate::fixtures::slo("availability", "99.9", "unit", false)],
    );
    let cfg = ws.config("http://127.0.0.1:1", "30s", &[("unit.yaml", &spec)]);
    let port = free_port();
    let mut guard = Guard::spawn(
        "errbudget",
        Command::new(crate::harness::errbudget_bin())
            .env("NOTIFY_SOCKET", &socket)
            .args(["run", "--config.file"])
            .arg(&cfg)
            .arg(format!("--web.listen-address=127.0.0.1:{port}")),
        dir.path().join("errbudget.log"),
    );
    let mut buf = [0u8; 512];
    let n = listener
        .recv(&mut buf)
        .unwrap_or_else(|e| panic!("no notification: {e}\n{}", guard.log_tail()));
    let msg = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(msg.lines().any(|l| l == "READY=1"), "{msg:?}");
    // Ready means its signals are handled: systemd may reload the unit the
    // moment it is told (a SIGHUP without a handler ends the process).
    guard.signal("HUP");
    // Ready means serving.
    let r = http::get(loopback(port), "/-/healthy").unwrap_or_else(|e| {
        panic!(
            "healthy after READY=1 and a SIGHUP: {e}\n{}",
            guard.log_tail()
        )
    });
    assert_eq!(r.status, 200);
    let reloaded = crate::harness::poll(Duration::from_secs(10), || {
        guard
            .log_tail()
            .contains("configuration reloaded")
            .then_some(())
    });
    assert!(
        reloaded.is_some(),
        "the SIGHUP was not a reload:\n{}",
        guard.log_tail()
    );
    guard.signal("TERM");
    let n = listener.recv(&mut buf).expect("STOPPING=1");
    let msg = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(msg.lines().any(|l| l == "STOPPING=1"), "{msg:?}");
    let st = guard.wait_exit(Duration::from_secs(20)).expect("exits");
    assert!(st.success(), "{st}");
}

/// The package installs into an empty root with dpkg, as `apt install
/// ./errbudget_<version>_amd64.deb` does on a host; the installed tree
/// passes `systemd-analyze verify`, and the installed binary, started
/// with the installed config, answers /-/healthy.
#[test]
fn debian_package_installs_and_its_binary_serves() {
    require("dpkg", "dpkg");
    require("systemd-analyze", "systemd");
    require("man", "man-db");
    let deb = built(&format!("errbudget_{}_amd64.deb", version()));
    let info = ok(
        Command::new("dpkg-deb").arg("--info").arg(&deb),
        Duration::from_secs(30),
    );
    assert!(info.contains(&format!("Version: {}", version())), "{info}");
    // apt accepts the file and resolves it against this host.
    ok(
        Command::new("apt-get")
            .args(["install", "--simulate", "--no-install-recommends"])
            .arg(&deb),
        Duration::from_secs(120),
    );

    let root = tempfile::tempdir().expect("tempdir");
    let r = root.path();
    let admin = r.join("var/lib/dpkg");
    std::fs::create_dir_all(admin.join("info")).expect("mkdir");
    std::fs::create_dir_all(admin.join("updates")).expect("mkdir");
    std::fs::write(admin.join("status"), "").expect("status");
    ok(
        Command::new("dpkg")
            .arg(format!("--root={}", r.display()))
            .args([
                "--force-script-chrootless",
                "--force-not-root",
                "--log=/dev/null",
                "-i",
            ])
            .arg(&deb),
        Duration::from_secs(120),
    );
    let status = ok(
        Command::new("dpkg")
            .arg(format!("--root={}", r.display()))
            .args(["-s", "errbudget"]),
        Duration::from_secs(30),
    );
    assert!(status.contains("Status: install ok installed"), "{status}");
    for path in [
        "usr/bin/errbudget",
        "lib/systemd/system/errbudget.service",
        "etc/errbudget/errbudget.yaml",
        "etc/errbudget/slos/prometheus.yaml",
        "usr/share/man/man1/errbudget.1.gz",
        "usr/share/bash-completion/completions/errbudget",
        "usr/share/zsh/vendor-completions/_errbudget",
        "usr/share/fish/vendor_completions.d/errbudget.fish",
        "usr/share/doc/errbudget/copyright",
    ] {
        assert!(r.join(path).exists(), "{path} not installed");
    }
    let conffiles = std::fs::read_to_string(admin.join("info/errbudget.conffiles"))
        .expect("conffiles recorded");
    assert!(conffiles.contains("/etc/errbudget/errbudget.yaml"));

    // The unit as installed, against the installed binary. The root holds
    // only the package, so give it the targets and /bin/kill a host has.
    for entry in std::fs::read_dir("/usr/lib/systemd/system")
        .expect("host units")
        .flatten()
    {
        let name = entry.file_name();
        if name.to_string_lossy().ends_with(".target") {
            let _ = std::fs::copy(entry.path(), r.join("lib/systemd/system").join(&name));
        }
    }
    std::fs::create_dir_all(r.join("bin")).expect("bin dir");
    std::fs::copy("/bin/kill", r.join("bin/kill")).expect("copy /bin/kill");
    ok(
        Command::new("systemd-analyze")
            .arg(format!("--root={}", r.display()))
            .args(["verify", "--man=no"])
            .arg(r.join("lib/systemd/system/errbudget.service")),
        Duration::from_secs(60),
    );

    let bin = r.join("usr/bin/errbudget");
    let version = ok(Command::new(&bin).arg("--version"), Duration::from_secs(10));
    assert!(
        version.starts_with(&format!("errbudget, version {} (branch: ", self::version())),
        "{version}"
    );
    let man = ok(
        Command::new("man")
            .env("MANWIDTH", "100")
            .arg("-l")
            .arg(r.join("usr/share/man/man1/errbudget.1.gz")),
        Duration::from_secs(30),
    );
    assert!(man.contains("--web.listen-address"), "{man}");
    let complete = ok(
        Command::new("bash").arg("-c").arg(format!(
            "source {} && complete -p errbudget",
            r.join("usr/share/bash-completion/completions/errbudget")
                .display()
        )),
        Duration::from_secs(30),
    );
    assert!(complete.contains("errbudget"), "{complete}");

    // The packaged config checks, and the daemon starts with it.
    let config = r.join("etc/errbudget/errbudget.yaml");
    let checked = ok(
        Command::new(&bin)
            .arg("check")
            .arg("--config.file")
            .arg(&config),
        Duration::from_secs(30),
    );
    assert_eq!(checked.trim(), "OK: 1 SLOs");
    let port = free_port();
    let mut guard = Guard::spawn(
        "packaged errbudget",
        Command::new(&bin)
            .arg("run")
            .arg("--config.file")
            .arg(&config)
            .arg(format!("--web.listen-address=127.0.0.1:{port}")),
        r.join("errbudget.log"),
    );
    let healthy = poll(Duration::from_secs(30), || {
        if let Some(st) = guard.exited() {
            panic!("packaged errbudget exited: {st}\n{}", guard.log_tail());
        }
        matches!(http::get(loopback(port), "/-/healthy"), Ok(r) if r.status == 200).then_some(())
    });
    assert!(healthy.is_some(), "{}", guard.log_tail());
    let code = run_bounded(
        Command::new(&bin)
            .arg("healthcheck")
            .arg(format!("--url=http://127.0.0.1:{port}/-/healthy")),
        Duration::from_secs(30),
    )
    .0;
    assert_eq!(code, Some(0));
}

/// buildah with its own storage under a temp dir (nothing of the host's
/// container storage is touched).
fn buildah(store: &Path) -> Command {
    let mut c = Command::new("buildah");
    c.arg(format!("--root={}", store.join("root").display()))
        .arg(format!("--runroot={}", store.join("runroot").display()))
        .arg("--storage-driver=vfs");
    c
}

/// The Containerfile's runtime stage, built for real on scratch. The build
/// stage (FROM rust:…) needs a registry this machine cannot reach, so it is
/// replaced by the static binary `scripts/package.sh` built the same way
/// (musl target, musl-gcc); every line of the runtime stage is used as
/// written. The image runs as nobody and its HEALTHCHECK command answers
/// for a daemon running from the same image.
#[test]
fn container_image_builds_on_scratch_and_its_healthcheck_passes() {
    require("buildah", "buildah");
    let binary = built(&format!("errbudget-{}-x86_64-linux-musl", version()));
    let containerfile = std::fs::read_to_string(repo("Containerfile")).expect("Containerfile");
    let runtime = containerfile
        .find("FROM scratch AS runtime")
        .expect("a `FROM scratch AS runtime` stage");
    let ctx = tempfile::tempdir().expect("tempdir");
    let c = ctx.path();
    std::fs::write(
        c.join("Containerfile"),
        format!(
            "FROM scratch AS build\nCOPY errbudget /out/errbudget\n\n{}",
            &containerfile[runtime..]
        ),
    )
    .expect("write Containerfile");
    std::fs::copy(&binary, c.join("errbudget")).expect("copy binary");
    std::fs::create_dir_all(c.join("packaging/config/slos")).expect("mkdir");
    for f in ["errbudget.yaml", "slos/prometheus.yaml"] {
        std::fs::copy(
            repo("packaging/config").join(f),
            c.join("packaging/config").join(f),
        )
        .expect("copy config");
    }
    let store = tempfile::tempdir().expect("tempdir");
    let s = store.path();
    ok(
        buildah(s)
            .args([
                "bud",
                "--format=docker",
                "--isolation=chroot",
                "-t",
                "errbudget:test",
            ])
            .arg(c),
        Duration::from_secs(300),
    );
    let inspect = ok(
        buildah(s).args([
            "inspect",
            "--format",
            "{{.Docker.Config.User}}|{{.Docker.Config.Healthcheck.Test}}|{{.Docker.Config.Entrypoint}}",
            "errbudget:test",
        ]),
        Duration::from_secs(60),
    );
    let parts: Vec<&str> = inspect.trim().split('|').collect();
    assert_eq!(parts[0], "65534:65534", "{inspect}");
    assert!(parts[1].contains("/errbudget healthcheck"), "{inspect}");
    assert_eq!(parts[2], "[/errbudget]", "{inspect}");

    let ctr = ok(
        buildah(s).args(["from", "--name", "errbudget-test", "errbudget:test"]),
        Duration::from_secs(120),
    );
    let ctr = ctr.trim().to_string();
    let version = ok(
        buildah(s).args([
            "run",
            "--isolation=chroot",
            &ctr,
            "--",
            "/errbudget",
            "--version",
        ]),
        Duration::from_secs(60),
    );
    assert!(version.starts_with("errbudget, version "), "{version}");

    // The daemon in the image, on a host port (chroot isolation shares the
    // host's network), checked by the image's own HEALTHCHECK command.
    let port = free_port();
    let mut daemon = Guard::spawn(
        "errbudget in the image",
        buildah(s).args([
            "run",
            "--isolation=chroot",
            &ctr,
            "--",
            "/errbudget",
            "run",
            "--config.file=/etc/errbudget/errbudget.yaml",
            &format!("--web.listen-address=127.0.0.1:{port}"),
        ]),
        c.join("run.log"),
    );
    let up = poll(Duration::from_secs(60), || {
        if let Some(st) = daemon.exited() {
            panic!("errbudget in the image exited: {st}\n{}", daemon.log_tail());
        }
        matches!(http::get(loopback(port), "/-/healthy"), Ok(r) if r.status == 200).then_some(())
    });
    assert!(up.is_some(), "{}", daemon.log_tail());
    let url = format!("--url=http://127.0.0.1:{port}/-/healthy");
    let (code, out, err) = run_bounded(
        buildah(s).args([
            "run",
            "--isolation=chroot",
            &ctr,
            "--",
            "/errbudget",
            "healthcheck",
            &url,
        ]),
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(0), "{out}{err}");
    // The image's USER applies: the daemon runs as nobody.
    let listen = format!("--web.listen-address=127.0.0.1:{port}");
    let pid = daemon_pid(&listen).expect("the daemon's process");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .expect("Uid line");
    assert_eq!(
        uid.split_whitespace().collect::<Vec<_>>(),
        ["65534"; 4],
        "{uid}"
    );
    // SIGTERM to the daemon itself: buildah run is its parent, not a
    // supervisor that forwards signals.
    ok(
        Command::new("kill").args(["-s", "TERM", &pid.to_string()]),
        Duration::from_secs(10),
    );
    let st = daemon.wait_exit(Duration::from_secs(30));
    assert!(st.is_some(), "{}", daemon.log_tail());
    let _ = run_bounded(buildah(s).args(["rm", &ctr]), Duration::from_secs(60));
}

/// The errbudget process started with `listen` among its arguments.
fn daemon_pid(listen: &str) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let is_daemon = args.first().is_some_and(|a| a.ends_with(b"/errbudget"))
            && args.contains(&listen.as_bytes());
        is_daemon.then_some(pid)
    })
}
