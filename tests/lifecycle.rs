//! The proxy as a process: `--help`, configuration errors at start,
//! listeners that cannot bind, `.env`, and graceful shutdown on signals.

mod common;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

use common::*;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Every variable `--help` must document (SPEC B§2.1 and the LATEST
/// additions of B§2.2, plus PROXY_WORKERS of A3), with the default it must show
/// (None where the default is empty or machine-dependent; for
/// PROXY_STATIC_FILES the default is the project's `players/` folder).
const VARIABLES: &[(&str, Option<&str>)] = &[
    ("PROXY_FORCE_QUIT_TIMEOUT", Some("30s")),
    ("PROXY_GRACE_QUIT_TIMEOUT", Some("20s")),
    ("PROXY_HTTP_API", Some("11985")),
    ("PROXY_HTTP_SERVER", Some("18080")),
    ("PROXY_RTMP_SERVER", Some("11935")),
    ("PROXY_WEBRTC_SERVER", Some("18000")),
    ("PROXY_SRT_SERVER", Some("20080")),
    ("PROXY_SYSTEM_API", Some("12025")),
    ("PROXY_STATIC_FILES", Some("players")),
    ("PROXY_LOAD_BALANCER_TYPE", Some("memory")),
    ("PROXY_REDIS_HOST", Some("127.0.0.1")),
    ("PROXY_REDIS_PORT", Some("6379")),
    ("PROXY_REDIS_PASSWORD", None),
    ("PROXY_REDIS_DB", Some("0")),
    ("PROXY_REDIS_KEY_PREFIX", None),
    ("PROXY_DEFAULT_BACKEND_ENABLED", Some("off")),
    ("PROXY_DEFAULT_BACKEND_IP", Some("127.0.0.1")),
    ("PROXY_DEFAULT_BACKEND_RTMP", Some("1935")),
    ("PROXY_DEFAULT_BACKEND_HTTP", None),
    ("PROXY_DEFAULT_BACKEND_API", Some("1985")),
    ("PROXY_DEFAULT_BACKEND_RTC", Some("8000")),
    ("PROXY_DEFAULT_BACKEND_SRT", Some("10080")),
    ("PROXY_ORIGIN_SERVER_TTL", Some("300s")),
    ("PROXY_HTTP_API_AUTH_ENABLED", Some("off")),
    ("PROXY_HTTP_API_AUTH_TYPE", None),
    ("PROXY_HTTP_API_AUTH_TOKEN", None),
    ("PROXY_WORKERS", None),
    ("PROXY_PIN_CORES", Some("on")),
    // In SPEC B§2.1 too; accepted for compatibility, unused.
    ("GO_PPROF", None),
];

/// Whether `line`, trimmed, starts with the variable `name` (not a longer one).
fn starts_with_var(line: &str, name: &str) -> bool {
    let t = line.trim_start();
    t.starts_with(name) && !t[name.len()..].chars().next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The `--help` entry of `name`: its first line (starting with the name)
/// and the lines after it up to the next variable's entry.
fn help_entry(help: &str, name: &str) -> Option<String> {
    let lines: Vec<&str> = help.lines().collect();
    let start = lines.iter().position(|l| starts_with_var(l, name))?;
    let end = lines[start + 1..]
        .iter()
        .position(|l| {
            let t = l.trim_start();
            t.starts_with("PROXY_") || t.starts_with("GO_PPROF")
        })
        .map(|i| start + 1 + i)
        .unwrap_or(lines.len());
    Some(lines[start..end].join("\n"))
}

fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '/'))
        .map(|t| t.trim_end_matches(['.', '/']).to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

#[test]
fn help_lists_every_variable_with_its_default() {
    let dir = TempDir::new("help");
    let mut cmd = Command::new(proxy_bin());
    cmd.arg("--help").current_dir(dir.path());
    for (k, _) in std::env::vars() {
        if k.starts_with("PROXY_") {
            cmd.env_remove(k);
        }
    }
    let mut p = ProcGuard::spawn("srs-proxy-help", cmd, dir.path());
    let st = p.wait_exit(secs(10)).expect("--help must exit");
    assert!(st.success(), "--help exit status {st}");
    let help = p.stdout();
    for (name, default) in VARIABLES {
        let entry =
            help_entry(&help, name).unwrap_or_else(|| panic!("--help has no line starting with {name}:\n{help}"));
        if let Some(d) = default {
            assert!(
                tokens(&entry).iter().any(|t| t == d || t.ends_with(&format!("/{d}"))),
                "--help entry of {name} does not show its default {d}:\n{entry}"
            );
        }
    }
}

#[test]
fn bad_values_stop_startup_with_a_line_naming_the_variable() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("PROXY_RTMP_SERVER", "abc")], "PROXY_RTMP_SERVER"),
        (&[("PROXY_SYSTEM_API", "70000")], "PROXY_SYSTEM_API"),
        (&[("PROXY_GRACE_QUIT_TIMEOUT", "xyz")], "PROXY_GRACE_QUIT_TIMEOUT"),
        (&[("PROXY_FORCE_QUIT_TIMEOUT", "10")], "PROXY_FORCE_QUIT_TIMEOUT"),
        (&[("PROXY_LOAD_BALANCER_TYPE", "etcd")], "PROXY_LOAD_BALANCER_TYPE"),
        (&[("PROXY_ORIGIN_SERVER_TTL", "0s")], "PROXY_ORIGIN_SERVER_TTL"),
        (&[("PROXY_ORIGIN_SERVER_TTL", "-5s")], "PROXY_ORIGIN_SERVER_TTL"),
        (&[("PROXY_REDIS_DB", "x")], "PROXY_REDIS_DB"),
        (&[("PROXY_HTTP_API_AUTH_ENABLED", "on"), ("PROXY_HTTP_API_AUTH_TYPE", "bearer")], "PROXY_HTTP_API_AUTH_TOKEN"),
        (
            &[
                ("PROXY_HTTP_API_AUTH_ENABLED", "on"),
                ("PROXY_HTTP_API_AUTH_TYPE", "basic"),
                ("PROXY_HTTP_API_AUTH_TOKEN", "t"),
            ],
            "PROXY_HTTP_API_AUTH_TYPE",
        ),
        (&[("PROXY_WORKERS", "0")], "PROXY_WORKERS"),
        (&[("PROXY_WORKERS", "many")], "PROXY_WORKERS"),
        (&[("PROXY_PIN_CORES", "yes")], "PROXY_PIN_CORES"),
    ];
    for (env, var) in cases {
        let mut opts = ProxyOpts::new();
        for (k, v) in env.iter() {
            opts = opts.env(k, v);
        }
        let mut p = Proxy::spawn(opts);
        let st = p.guard.wait_exit(secs(15));
        let log = p.log();
        let st = st.unwrap_or_else(|| panic!("{env:?}: still running; it must refuse to start"));
        assert!(!st.success(), "{env:?}: exit status {st}, must be non-zero");
        assert!(log.lines().any(|l| l.contains(var)), "{env:?}: no stderr line names {var}:\n{log}");
    }
}

/// The CPUs a thread of `pid` may run on, by thread name (`core0`, ...;
/// the main thread under its own name), from /proc.
fn allowed_cpus(pid: u32) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).expect("/proc task list") {
        let dir = task.expect("task entry").path();
        let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default().trim().to_owned();
        let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
        if let Some(l) = status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")) {
            out.push((name, l.trim().to_owned()));
        }
    }
    out
}

#[test]
fn executors_are_pinned_one_per_core_unless_pin_cores_is_off() {
    // The CPUs this test may use: the proxy inherits them.
    let here = std::fs::read_to_string("/proc/self/status").unwrap();
    let mine = here.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).unwrap().trim().to_owned();
    let single = |l: &str| !l.contains([',', '-']);
    for pin in ["on", "off"] {
        let proxy = Proxy::start(&[("PROXY_WORKERS", "2"), ("PROXY_PIN_CORES", pin)]);
        let threads = allowed_cpus(proxy.pid());
        // Each executor's threads (it and its helper for blocking calls)
        // share its name, `core<i>-<id>`.
        let mut names: Vec<&String> = threads.iter().map(|(n, _)| n).filter(|n| n.starts_with("core")).collect();
        names.dedup();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 2, "PROXY_PIN_CORES={pin}: executor threads {threads:?}");
        let pinned_to: Vec<Option<&String>> = names
            .iter()
            .map(|name| {
                threads.iter().find(|(n, c)| n == *name && single(c) && (*c != mine || single(&mine))).map(|(_, c)| c)
            })
            .collect();
        if pin == "off" {
            let restricted: Vec<_> = threads.iter().filter(|(n, c)| n.starts_with("core") && *c != mine).collect();
            assert!(restricted.is_empty(), "unpinned executors must keep {mine}: {threads:?}");
        } else if single(&mine) {
            // One usable CPU: both executors run on it.
            assert!(pinned_to.iter().all(|c| c == &Some(&mine)), "{threads:?}");
        } else {
            assert!(pinned_to.iter().all(Option::is_some), "each executor pinned to one CPU: {threads:?}");
            assert_ne!(pinned_to[0], pinned_to[1], "two executors pinned to one CPU: {threads:?}");
        }
        let log = proxy.log();
        assert!(
            log.lines().any(|l| l.contains(&format!("pin_cores={pin}"))),
            "the startup line must show pin_cores={pin}:\n{log}"
        );
    }
}

/// Listeners bind with SO_REUSEPORT, which would let a second proxy of the
/// same user join the ports and take a share of the first one's players.
#[test]
fn a_second_proxy_on_the_same_ports_refuses_to_start() {
    let first = Proxy::start(&[]);
    for var in ["PROXY_RTMP_SERVER", "PROXY_SYSTEM_API", "PROXY_HTTP_SERVER", "PROXY_HTTP_API"] {
        let addr = first.env[var].clone();
        let mut second = Proxy::spawn(ProxyOpts::new().env(var, &addr));
        let st = second
            .guard
            .wait_exit(secs(15))
            .unwrap_or_else(|| panic!("{var}={addr} is held by another srs-proxy, yet a second one kept running"));
        let log = second.log();
        assert!(!st.success(), "{var}={addr}: exit status {st}");
        assert!(
            log.lines().any(|l| l.contains(var) && l.contains("another process holds it")),
            "{var}={addr}: no stderr line names {var} and says why:\n{log}"
        );
    }
    // The first one is untouched and still answers on every port.
    assert_eq!(first.get("/api/v1/versions").status, 200);
}

#[test]
fn a_listener_that_cannot_bind_stops_startup() {
    for var in ["PROXY_RTMP_SERVER", "PROXY_SYSTEM_API"] {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("127.0.0.1:{}", taken.local_addr().unwrap().port());
        let mut p = Proxy::spawn(ProxyOpts::new().env(var, &addr));
        let st =
            p.guard.wait_exit(secs(15)).unwrap_or_else(|| panic!("{var}={addr} is taken, yet the proxy kept running"));
        let log = p.log();
        assert!(!st.success(), "{var}={addr} taken: exit status {st}");
        assert!(log.lines().any(|l| l.contains(var)), "{var}={addr} taken: no stderr line names {var}:\n{log}");
        drop(taken);
    }
}

#[test]
fn dotenv_in_the_working_dir_is_read_and_the_environment_wins() {
    let ports = free_ports(2);
    let (rtmp_from_file, sys_from_file) = (ports[0], ports[1]);
    let dotenv = format!(
        "# srs-proxy test configuration\n\
         \n\
         PROXY_RTMP_SERVER=127.0.0.1:{rtmp_from_file}\n\
         PROXY_SYSTEM_API=127.0.0.1:{sys_from_file}\n"
    );
    // RTMP comes only from .env; the system API is in both, and the
    // environment's value must win (start_opts waits on the env's port).
    let proxy = Proxy::start_opts(ProxyOpts::new().unset("PROXY_RTMP_SERVER").dotenv(&dotenv));
    assert_ne!(proxy.system_api_port, sys_from_file);
    assert!(
        TcpStream::connect(loopback(sys_from_file)).is_err(),
        "the system API also listens on the .env port: the environment must win"
    );

    // The RTMP listener is where .env put it, and it speaks RTMP.
    let mut s = TcpStream::connect(loopback(rtmp_from_file)).expect("PROXY_RTMP_SERVER from .env is not listening");
    let mut c0c1 = vec![3u8];
    c0c1.extend_from_slice(&[0u8; 1536]);
    s.write_all(&c0c1).unwrap();
    s.set_read_timeout(Some(secs(10))).unwrap();
    let mut s0 = [0u8; 1];
    std::io::Read::read_exact(&mut s, &mut s0).expect("S0 from the .env RTMP port");
    assert_eq!(s0[0], 3);
}

/// Whether a new RTMP client is turned away: connect refused, or the
/// connection closed without a handshake answer.
fn rtmp_turned_away(port: u16) -> bool {
    match TcpStream::connect_timeout(&loopback(port), secs(2)) {
        Err(_) => true,
        Ok(mut s) => {
            let mut c0c1 = vec![3u8];
            c0c1.extend_from_slice(&[0u8; 1536]);
            let _ = s.write_all(&c0c1);
            matches!(read_until_closed(&mut s, secs(3)), Ok(got) if got.is_empty())
        }
    }
}

#[test]
fn sigterm_drains_a_live_relay_then_exits_0() {
    let origin = NginxRtmp::start();
    let mut proxy = Proxy::start(&[("PROXY_GRACE_QUIT_TIMEOUT", "10s"), ("PROXY_FORCE_QUIT_TIMEOUT", "60s")]);
    let _hb = Heartbeat::start(&proxy.sys_api(), origin.origin().register_body());
    let _publisher = ffmpeg_publish(&proxy.rtmp_url("draining"));
    assert!(wait_until(secs(20), || origin.has_stream("draining")), "the publish never reached the origin");

    proxy.guard.signal(libc::SIGTERM);
    // New clients are turned away (every try, once the signal is handled)...
    assert!(
        wait_until(secs(10), || rtmp_turned_away(proxy.rtmp_port)),
        "after SIGTERM the RTMP port still takes new clients"
    );
    for _ in 0..5 {
        assert!(rtmp_turned_away(proxy.rtmp_port), "after SIGTERM a new RTMP client was served");
    }
    // ...while the live relay goes on during the grace period.
    assert!(proxy.guard.is_running(), "exited before the grace period");
    assert!(origin.has_stream("draining"), "the live relay was cut at SIGTERM instead of being drained");

    let st = proxy.guard.wait_exit(secs(10 + 20)).expect("still running long after the grace period");
    assert_eq!(st.code(), Some(0), "exit status {st}");
}

#[test]
fn sigterm_and_sigint_with_nothing_live_exit_0_promptly() {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        // A grace period far longer than the wait below: with nothing live,
        // the proxy must not sit it out.
        let mut proxy = Proxy::start(&[("PROXY_GRACE_QUIT_TIMEOUT", "120s"), ("PROXY_FORCE_QUIT_TIMEOUT", "180s")]);
        proxy.guard.signal(sig);
        let st =
            proxy.guard.wait_exit(secs(20)).unwrap_or_else(|| panic!("signal {sig}: still running with nothing live"));
        assert_eq!(st.code(), Some(0), "signal {sig}: exit status {st}");
    }
}
