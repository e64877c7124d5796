//! srs-proxy: one front door before a fleet of SRS media origins.
//!
//! Wiring only: configuration, logging, signals, one pinned executor per
//! core with its own listeners, and the order things start and stop in.

mod api;
mod balancer;
mod cluster_api;
mod http;
mod http_api;
mod http_proxy;
mod http_stream;
mod metrics;
mod redis_lb;
mod rtc;
mod rtmp;
mod srt;
mod static_files;
mod worker;

use crate::balancer::{Balancer, LbReq, LbResp, MemoryBalancer};
use crate::worker::Core;
use glommio::net::TcpListener;
use srs_io::Shutdown;
use srs_lb::LoadBalancer;
use srs_proxy::config::{self, Config};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const SIGNATURE: &str = "srs-proxy";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const SERVER: &str = concat!("srs-proxy/", env!("CARGO_PKG_VERSION"));

/// (major, minor, revision) of VERSION, for SRS-style version answers.
pub fn version_triplet() -> (u32, u32, u32) {
    let mut it = VERSION.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0), it.next().unwrap_or(0))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{}", config::help_text());
        return;
    }
    if args.iter().any(|a| a == "--version" || a == "-V") {
        println!("{SERVER}");
        return;
    }
    if let Some(a) = args.first() {
        eprintln!("srs-proxy: unknown argument {a:?}; configuration is by PROXY_* variables, see --help");
        std::process::exit(2);
    }
    // Configuration first: its errors go to stderr as one line, and the
    // log format it names applies to every line after.
    let cfg = match Config::from_env() {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("srs-proxy: configuration error: {e}");
            std::process::exit(2);
        }
    };
    init_logging(cfg.log_format);
    if let Some(w) = cfg.open_register_warning() {
        tracing::warn!("{w}");
    }
    std::process::exit(run(cfg));
}

fn init_logging(format: config::LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    use std::io::IsTerminal;
    let fmt = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false);
    match format {
        config::LogFormat::Text => fmt.with_ansi(std::io::stderr().is_terminal()).init(),
        // One object per line, the event's fields flattened beside
        // `timestamp`, `level` and `message`, for log shippers.
        config::LogFormat::Json => fmt.json().flatten_event(true).with_current_span(false).init(),
    }
}

/// One listener an executor binds: which variable named it, and where.
struct ListenSpec {
    var: &'static str,
    addr: SocketAddr,
}

fn bind(spec: &ListenSpec) -> Result<TcpListener, String> {
    TcpListener::bind(spec.addr).map_err(|e| format!("{}={}: cannot listen: {e}", spec.var, spec.addr))
}

/// Every executor binds with SO_REUSEPORT, and the kernel lets any other
/// process of the same user that does the same (a second srs-proxy, say) join
/// the port and silently take a share of its connections. A plain bind first,
/// released at once, fails on a port that anyone holds, so the second
/// instance stops with a clear error instead.
fn probe(spec: &ListenSpec) -> Result<(), String> {
    if spec.addr.port() == 0 {
        return Ok(());
    }
    std::net::TcpListener::bind(spec.addr).map(drop).map_err(|e| {
        let who = if e.kind() == std::io::ErrorKind::AddrInUse { " (another process holds it)" } else { "" };
        format!("{}={}: cannot listen: {e}{who}", spec.var, spec.addr)
    })
}

/// The listeners in SRS's start order; any bind failure stops startup.
fn listen_specs(cfg: &Config) -> [ListenSpec; 4] {
    [
        ListenSpec { var: "PROXY_RTMP_SERVER", addr: cfg.rtmp_server.0 },
        ListenSpec { var: "PROXY_HTTP_API", addr: cfg.http_api.0 },
        ListenSpec { var: "PROXY_SYSTEM_API", addr: cfg.system_api.0 },
        ListenSpec { var: "PROXY_HTTP_SERVER", addr: cfg.http_server.0 },
    ]
}

fn run(cfg: Arc<Config>) -> i32 {
    for spec in &listen_specs(&cfg) {
        if let Err(e) = probe(spec).and_then(|_| rtc::probe(&cfg)) {
            eprintln!("srs-proxy: {e}");
            tracing::error!("startup failed: {e}");
            return 1;
        }
    }
    if let Err(e) = srt::probe(&cfg) {
        eprintln!("srs-proxy: {e}");
        tracing::error!("startup failed: {e}");
        return 1;
    }
    let shutdown = Shutdown::new();
    install_signals(shutdown.clone(), cfg.force_quit_timeout);
    let epoch = Instant::now();
    let workers = cfg.workers;
    let builder = srs_io::mesh::builder::<LbReq, LbResp>(workers);
    let metrics_builder = metrics::builder(workers);
    let srt_builder = srt::builder(workers);
    let rtc_mesh = rtc::builder(workers);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<usize, String>>();
    let mem_cfg = srs_lb::MemoryConfig { origin_ttl: cfg.origin_ttl, ..srs_lb::MemoryConfig::default() };
    let static_root = match &cfg.static_files {
        None => None,
        Some(dir) => match dir.canonicalize() {
            Ok(p) if p.is_dir() => Some(p),
            _ => {
                tracing::warn!(dir = %dir.display(), "PROXY_STATIC_FILES: no such folder; static files are off");
                None
            }
        },
    };

    let handles = {
        let cfg = cfg.clone();
        let shutdown = shutdown.clone();
        srs_io::start(workers, cfg.pin_cores, move |info| {
            let cfg = cfg.clone();
            let shutdown = shutdown.clone();
            let builder = builder.clone();
            let metrics_builder = metrics_builder.clone();
            let srt_builder = srt_builder.clone();
            let rtc_mesh = rtc_mesh.clone();
            let ready = ready_tx.clone();
            let mem_cfg = mem_cfg.clone();
            let static_root = static_root.clone();
            async move {
                let lb = match cfg.load_balancer {
                    config::LbType::Memory => match MemoryBalancer::join(info.index, builder, mem_cfg, epoch).await {
                        Ok(lb) => Balancer::Memory(lb),
                        Err(e) => {
                            let _ = ready
                                .send(Err(format!("executor {}: cannot join the cross-core mesh: {e}", info.index)));
                            return;
                        }
                    },
                    config::LbType::Redis => {
                        let conn = redis_lb::client::Conn::new(redis_settings(&cfg.redis), info.index);
                        match redis_lb::RedisBalancer::start(conn, &cfg.redis.key_prefix, cfg.origin_ttl, info.index)
                            .await
                        {
                            Ok(lb) => Balancer::Redis(lb),
                            Err(e) => {
                                let _ = ready.send(Err(format!("PROXY_LOAD_BALANCER_TYPE=redis: {e}")));
                                return;
                            }
                        }
                    }
                };
                let core = Core::new(lb.core(), cfg.clone(), std::rc::Rc::new(lb), shutdown, static_root);
                let weak = Rc::downgrade(&core);
                let facts = move || {
                    weak.upgrade().map_or_else(metrics::CoreFacts::default, |c| metrics::CoreFacts {
                        live: c.live() as u64,
                        hls_sessions: c.lb.hls_sessions() as u64,
                    })
                };
                if let Err(e) = metrics::join(info.index, metrics_builder, facts).await {
                    let _ = ready.send(Err(format!("executor {}: cannot join the metrics mesh: {e}", info.index)));
                    return;
                }
                let specs = listen_specs(&cfg);
                let mut ls = Vec::with_capacity(specs.len());
                for spec in &specs {
                    match bind(spec) {
                        Ok(l) => ls.push(l),
                        Err(e) => {
                            let _ = ready.send(Err(e));
                            return;
                        }
                    }
                }
                let srt_task = match srt::start(core.clone(), srt_builder).await {
                    Ok(t) => t,
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                let rtc_task = match rtc::start(core.clone(), rtc_mesh).await {
                    Ok(t) => t,
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                let _ = ready.send(Ok(core.index));
                let [rtmp_l, api_l, sys_l, http_l]: [TcpListener; 4] = match ls.try_into() {
                    Ok(v) => v,
                    Err(_) => return,
                };
                let mut tasks = vec![
                    glommio::spawn_local(worker::accept_loop(core.clone(), rtmp_l, "rtmp", rtmp::serve)),
                    glommio::spawn_local(worker::accept_loop(
                        core.clone(),
                        api_l,
                        "http-api",
                        http::serve::<http_api::HttpApi>,
                    )),
                    glommio::spawn_local(worker::accept_loop(
                        core.clone(),
                        sys_l,
                        "system-api",
                        http::serve::<api::SystemApi>,
                    )),
                    glommio::spawn_local(worker::accept_loop(
                        core.clone(),
                        http_l,
                        "http",
                        http::serve::<http_stream::HttpStream>,
                    )),
                    srt_task,
                ];
                if core.index == 0 {
                    if let Some(db) = cfg.default_backend.clone() {
                        tasks.push(glommio::spawn_local(default_backend_loop(core.clone(), db)));
                    }
                }
                core.stopping.wait().await;
                rtc_task.await;
                // Listeners close as their accept loops end; live sessions get the grace period.
                let grace_end = Instant::now() + cfg.grace_quit_timeout;
                while core.live() > 0 && Instant::now() < grace_end {
                    glommio::timer::sleep(Duration::from_millis(100)).await;
                }
                if core.live() > 0 {
                    tracing::warn!(core = core.index, live = core.live(), "grace period over; closing live sessions");
                }
                drop(tasks);
            }
        })
    };
    let handles = match handles {
        Ok(h) => h,
        Err(e) => {
            eprintln!("srs-proxy: {e}");
            return 1;
        }
    };
    for _ in 0..workers {
        match ready_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                eprintln!("srs-proxy: {e}");
                tracing::error!("startup failed: {e}");
                return 1;
            }
            Err(_) => {
                eprintln!("srs-proxy: executors did not start within 30 s");
                return 1;
            }
        }
    }
    tracing::info!(
        version = VERSION, pid = std::process::id(), workers,
        pin_cores = %if cfg.pin_cores { "on" } else { "off" },
        rtmp = %cfg.rtmp_server.0, http = %cfg.http_server.0, http_api = %cfg.http_api.0,
        system_api = %cfg.system_api.0, srt = %cfg.srt_server.0, webrtc = %cfg.webrtc_server.0,
        balancer = ?cfg.load_balancer, origin_ttl = ?cfg.origin_ttl,
        "srs-proxy started"
    );
    for h in handles {
        let _ = h.join();
    }
    tracing::info!("srs-proxy done");
    0
}

/// Where the Redis balancer connects: PROXY_REDIS_HOST/PORT, or the master
/// the sentinels of PROXY_REDIS_SENTINELS name.
fn redis_settings(r: &config::RedisConfig) -> redis_lb::client::Settings {
    use redis_lb::client::{Settings, Target};
    let target = if r.sentinels.is_empty() {
        Target::Direct { host: r.host.clone(), port: r.port }
    } else {
        Target::Sentinel {
            sentinels: r.sentinels.clone(),
            master: r.sentinel_master.clone(),
            password: r.sentinel_password.clone(),
        }
    };
    Settings { target, password: r.password.clone(), db: r.db }
}

/// SIGINT/SIGTERM: stop accepting and drain; a backstop timer forces the
/// exit if draining hangs.
fn install_signals(shutdown: Shutdown, force: Duration) {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = match signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("srs-proxy: cannot install signal handlers: {e}");
            std::process::exit(1);
        }
    };
    std::thread::spawn(move || {
        for sig in signals.forever() {
            if shutdown.is_triggered() {
                continue;
            }
            tracing::info!(signal = sig, "got signal: stop accepting, draining live sessions");
            shutdown.trigger();
            std::thread::spawn(move || {
                std::thread::sleep(force);
                tracing::warn!("force exit: PROXY_FORCE_QUIT_TIMEOUT reached");
                std::process::exit(1);
            });
        }
    });
}

/// PROXY_DEFAULT_BACKEND_*: an origin that is always registered, refreshed
/// every 30 s as SRS does.
async fn default_backend_loop(core: std::rc::Rc<Core>, db: config::DefaultBackend) {
    let mut id7 = String::new();
    for _ in 0..7 {
        id7.push(fastrand::alphanumeric().to_ascii_lowercase());
    }
    let origin = srs_lb::default_backend(
        &db.ip,
        &db.rtmp,
        db.http.as_deref(),
        db.api.as_deref(),
        db.rtc.as_deref(),
        db.srt.as_deref(),
        std::process::id(),
        &id7,
    );
    tracing::info!(id = %origin.id(), ip = %db.ip, rtmp = %db.rtmp, "default backend enabled");
    loop {
        if let Err(e) = core.lb.update(origin.clone()).await {
            tracing::warn!(error = %e, "default backend refresh failed");
        }
        glommio::timer::sleep(Duration::from_secs(30)).await;
    }
}
