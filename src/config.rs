//! Configuration from `PROXY_*` environment variables and `./.env`
//! (SPEC A1, A3, B§2).
//!
//! Rules, as SRS: an empty value means "use the default"; a variable already
//! present in the process environment wins over `.env`; a missing `.env` is
//! fine. Unlike SRS Go, every value is checked at startup and a bad one stops
//! the proxy with a one-line error naming the variable.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// A listen address. A bare port (`1935`, or Go's `:1935`) binds all IPv4
/// interfaces (`0.0.0.0`); `ip:port` and `[v6]:port` bind that address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen(pub SocketAddr);

impl Listen {
    pub fn port(&self) -> u16 {
        self.0.port()
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// `PROXY_LOAD_BALANCER_TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbType {
    Memory,
    Redis,
}

/// `PROXY_LOG_FORMAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// `PROXY_REDIS_*`.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    pub host: String,
    pub port: u16,
    /// `None` when empty (no AUTH).
    pub password: Option<String>,
    pub db: i64,
    /// `PROXY_REDIS_KEY_PREFIX`: when non-empty every key is `<prefix>:<key>`.
    pub key_prefix: String,
    /// `PROXY_REDIS_SENTINELS` (`host:port,...`): when non-empty the master
    /// is asked of these and HOST/PORT are not used.
    pub sentinels: Vec<(String, u16)>,
    /// `PROXY_REDIS_SENTINEL_MASTER`: the monitored master's name.
    pub sentinel_master: String,
    /// `PROXY_REDIS_SENTINEL_PASSWORD`: AUTH toward the sentinels.
    pub sentinel_password: Option<String>,
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("db", &self.db)
            .field("key_prefix", &self.key_prefix)
            .field("sentinels", &self.sentinels)
            .field("sentinel_master", &self.sentinel_master)
            .field("sentinel_password", &self.sentinel_password.as_ref().map(|_| "***"))
            .finish()
    }
}

/// `PROXY_DEFAULT_BACKEND_*` (B§5.4), present only when
/// `PROXY_DEFAULT_BACKEND_ENABLED=on`. Endpoint strings are checked with
/// [`srs_lb::parse_endpoint`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultBackend {
    pub ip: String,
    pub rtmp: String,
    pub http: Option<String>,
    pub api: Option<String>,
    pub rtc: Option<String>,
    pub srt: Option<String>,
}

/// Everything the proxy reads from its environment.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    pub rtmp_server: Listen,
    pub http_server: Listen,
    pub http_api: Listen,
    pub webrtc_server: Listen,
    pub srt_server: Listen,
    pub system_api: Listen,
    /// `None` when `PROXY_STATIC_FILES=off`. A missing folder is the caller's
    /// to handle (warn and serve no static files).
    pub static_files: Option<PathBuf>,
    pub load_balancer: LbType,
    pub redis: RedisConfig,
    pub default_backend: Option<DefaultBackend>,
    /// `PROXY_ORIGIN_SERVER_TTL`, positive.
    pub origin_ttl: Duration,
    pub grace_quit_timeout: Duration,
    pub force_quit_timeout: Duration,
    /// `PROXY_IDLE_TIMEOUT` (ours): a relay silent both ways this long is closed.
    pub idle_timeout: Duration,
    /// `PROXY_SRT_IDLE_TIMEOUT` (ours): an SRT session silent both ways this long ends.
    pub srt_idle_timeout: Duration,
    /// The bearer token `/api/v1/srs/register` requires, when auth is on.
    pub api_auth: Option<String>,
    /// `PROXY_REGISTER_ALLOW` (ours): the networks origins may register
    /// from; empty lets any address register.
    pub register_allow: Vec<ipnet::IpNet>,
    /// `PROXY_LOG_FORMAT` (ours).
    pub log_format: LogFormat,
    /// Executors (cores) to run, 1..=1024.
    pub workers: usize,
    /// `PROXY_WEBRTC_CANDIDATE` (ours): the addresses WebRTC clients reach the
    /// proxy at, put in answers' candidates; empty: the offer's local address.
    pub webrtc_candidate: Vec<std::net::IpAddr>,
    /// `PROXY_WEBRTC_SESSION_TIMEOUT` (ours): a WebRTC media session silent this long ends.
    pub webrtc_session_timeout: Duration,
    /// `PROXY_PIN_CORES` (ours): pin executor i to the i-th usable core. Off
    /// where other programs (another proxy) would pin to the same cores.
    pub pin_cores: bool,
    /// `GO_PPROF`: kept for compatibility; there is no Go pprof here.
    pub go_pprof: Option<String>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("rtmp_server", &self.rtmp_server)
            .field("http_server", &self.http_server)
            .field("http_api", &self.http_api)
            .field("webrtc_server", &self.webrtc_server)
            .field("srt_server", &self.srt_server)
            .field("system_api", &self.system_api)
            .field("static_files", &self.static_files)
            .field("load_balancer", &self.load_balancer)
            .field("redis", &self.redis)
            .field("default_backend", &self.default_backend)
            .field("origin_ttl", &self.origin_ttl)
            .field("grace_quit_timeout", &self.grace_quit_timeout)
            .field("force_quit_timeout", &self.force_quit_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("srt_idle_timeout", &self.srt_idle_timeout)
            .field("api_auth", &self.api_auth.as_ref().map(|_| "***"))
            .field("register_allow", &self.register_allow)
            .field("log_format", &self.log_format)
            .field("workers", &self.workers)
            .field("webrtc_candidate", &self.webrtc_candidate)
            .field("webrtc_session_timeout", &self.webrtc_session_timeout)
            .field("pin_cores", &self.pin_cores)
            .field("go_pprof", &self.go_pprof)
            .finish()
    }
}

/// A bad configuration value: `PROXY_RTMP_SERVER=abc: not a port or ip:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub var: &'static str,
    pub value: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}: {}", self.var, self.value, self.reason)
    }
}

impl std::error::Error for ConfigError {}

/// Every variable: (group, name, default shown in --help, meaning).
const VARS: &[(&str, &str, &str, &str)] = &[
    ("Listeners", "PROXY_RTMP_SERVER", "11935", "RTMP listen port or ip:port (TCP)"),
    ("Listeners", "PROXY_HTTP_SERVER", "18080", "HTTP-FLV/TS, HLS, WHIP/WHEP and static files listen port or ip:port"),
    ("Listeners", "PROXY_HTTP_API", "11985", "HTTP API listen port or ip:port (WebRTC signalling, versions)"),
    ("Listeners", "PROXY_WEBRTC_SERVER", "18000", "WebRTC media listen port or ip:port (UDP)"),
    ("Listeners", "PROXY_SRT_SERVER", "20080", "SRT listen port or ip:port (UDP)"),
    ("Listeners", "PROXY_SYSTEM_API", "12025", "system API listen port or ip:port (origin register, origins, streams, metrics); 127.0.0.1:12025 keeps it private"),
    ("Web", "PROXY_STATIC_FILES", "./players", "folder served on the HTTP server; 'off' disables; a missing folder is skipped with a warning"),
    ("Load balancer", "PROXY_LOAD_BALANCER_TYPE", "memory", "memory (one proxy) or redis (proxies sharing origins and stream pins)"),
    ("Load balancer", "PROXY_ORIGIN_SERVER_TTL", "300s", "an origin silent this long is dead; its streams move (Go duration, positive)"),
    ("Redis", "PROXY_REDIS_HOST", "127.0.0.1", "Redis host"),
    ("Redis", "PROXY_REDIS_PORT", "6379", "Redis port"),
    ("Redis", "PROXY_REDIS_PASSWORD", "", "Redis password (empty: none)"),
    ("Redis", "PROXY_REDIS_DB", "0", "Redis database number"),
    ("Redis", "PROXY_REDIS_KEY_PREFIX", "", "prefix for every Redis key as '<prefix>:<key>' (empty: none)"),
    ("Redis", "PROXY_REDIS_SENTINELS", "", "host:port,... of Redis Sentinels: the master is asked of them (HOST/PORT unused) and followed across failovers"),
    ("Redis", "PROXY_REDIS_SENTINEL_MASTER", "mymaster", "the master name the sentinels monitor"),
    ("Redis", "PROXY_REDIS_SENTINEL_PASSWORD", "", "password toward the sentinels (empty: none); PROXY_REDIS_PASSWORD is for the data nodes"),
    ("Register API auth", "PROXY_HTTP_API_AUTH_ENABLED", "off", "on: /api/v1/srs/register requires 'Authorization: Bearer <token>'"),
    ("Register API auth", "PROXY_HTTP_API_AUTH_TYPE", "", "must be bearer when auth is on"),
    ("Register API auth", "PROXY_HTTP_API_AUTH_TOKEN", "", "the bearer token, required when auth is on"),
    ("Register API auth", "PROXY_REGISTER_ALLOW", "", "networks allowed to register, comma-separated CIDRs or addresses (e.g. 10.0.0.0/8,127.0.0.1); empty: any"),
    ("Default backend (debugging)", "PROXY_DEFAULT_BACKEND_ENABLED", "off", "on: register a fixed origin every 30 s"),
    ("Default backend (debugging)", "PROXY_DEFAULT_BACKEND_IP", "127.0.0.1", "its IP address"),
    ("Default backend (debugging)", "PROXY_DEFAULT_BACKEND_RTMP", "1935", "its RTMP endpoint"),
    ("Default backend (debugging)", "PROXY_DEFAULT_BACKEND_HTTP", "", "its HTTP endpoint (empty: none, so no HTTP-FLV/HLS)"),
    ("Default backend (debugging)", "PROXY_DEFAULT_BACKEND_API", "1985", "its HTTP API endpoint"),
    ("Default backend (debugging)", "PROXY_DEFAULT_BACKEND_RTC", "8000", "its WebRTC endpoint (UDP)"),
    ("Default backend (debugging)", "PROXY_DEFAULT_BACKEND_SRT", "10080", "its SRT endpoint (UDP)"),
    ("Lifecycle", "PROXY_GRACE_QUIT_TIMEOUT", "20s", "on SIGTERM, how long live streams may drain (Go duration)"),
    ("Lifecycle", "PROXY_FORCE_QUIT_TIMEOUT", "30s", "after a quit signal, exit anyway after this long (Go duration)"),
    ("Runtime", "PROXY_WORKERS", "all usable cores", "executors (one per core), 1..=1024"),
    ("Runtime", "PROXY_PIN_CORES", "on", "on: pin each executor to its own usable core; off: let the kernel place them (several proxies or other busy programs sharing these cores)"),
    ("Runtime", "PROXY_IDLE_TIMEOUT", "300s", "a relay with no bytes either way for this long is closed (Go duration)"),
    ("Runtime", "PROXY_SRT_IDLE_TIMEOUT", "10s", "an SRT session with no packet either way for this long ends, as SRS's peer_idle_timeout (Go duration)"),
    ("WebRTC", "PROXY_WEBRTC_CANDIDATE", "", "comma-separated IPs clients reach the proxy's WebRTC port at, written into answers' candidates; empty: the address the offer arrived on"),
    ("WebRTC", "PROXY_WEBRTC_SESSION_TIMEOUT", "30s", "a WebRTC media session with no packet from its client this long ends (SRS's STUN timeout; Go duration)"),
    ("Runtime", "GO_PPROF", "", "accepted for compatibility with SRS Go; unused"),
    ("Logs", "PROXY_LOG_FORMAT", "text", "text (human lines) or json (one JSON object per line, for log shippers); RUST_LOG sets the level"),
];

/// The largest `PROXY_WORKERS`.
pub const MAX_WORKERS: usize = 1024;

impl Config {
    /// Builds the configuration from `get`, which returns a variable's value
    /// (`None` if unset; empty values are treated as unset, i.e. default).
    /// `available_cores` is the default for `PROXY_WORKERS`.
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>, available_cores: usize) -> Result<Config, ConfigError> {
        let r = Reader { get };
        let listen = |var| r.listen(var, default_of(var));

        let load_balancer = match r.value("PROXY_LOAD_BALANCER_TYPE") {
            None => LbType::Memory,
            Some(v) if v.eq_ignore_ascii_case("memory") => LbType::Memory,
            Some(v) if v.eq_ignore_ascii_case("redis") => LbType::Redis,
            Some(v) => {
                return Err(err("PROXY_LOAD_BALANCER_TYPE", &v, "must be memory or redis"));
            }
        };

        let redis = RedisConfig {
            host: r.string("PROXY_REDIS_HOST"),
            port: r.port("PROXY_REDIS_PORT", 6379)?,
            password: r.value("PROXY_REDIS_PASSWORD"),
            db: match r.value("PROXY_REDIS_DB") {
                None => 0,
                Some(v) => match v.parse::<i64>() {
                    Ok(db) if db >= 0 => db,
                    Ok(_) => return Err(err("PROXY_REDIS_DB", &v, "must not be negative")),
                    Err(_) => return Err(err("PROXY_REDIS_DB", &v, "not an integer")),
                },
            },
            key_prefix: r.value("PROXY_REDIS_KEY_PREFIX").unwrap_or_default(),
            sentinels: match r.value("PROXY_REDIS_SENTINELS") {
                None => Vec::new(),
                Some(v) => parse_sentinels(&v).map_err(|why| err("PROXY_REDIS_SENTINELS", &v, why))?,
            },
            sentinel_master: r.string("PROXY_REDIS_SENTINEL_MASTER"),
            sentinel_password: r.value("PROXY_REDIS_SENTINEL_PASSWORD"),
        };

        let static_files = match r.value("PROXY_STATIC_FILES") {
            Some(v) if v == "off" => None,
            Some(v) => Some(PathBuf::from(v)),
            None => Some(PathBuf::from(default_of("PROXY_STATIC_FILES"))),
        };

        let api_auth = match r.value("PROXY_HTTP_API_AUTH_ENABLED").as_deref() {
            None | Some("off") => None,
            Some("on") => {
                match r.value("PROXY_HTTP_API_AUTH_TYPE") {
                    None => {
                        return Err(err(
                            "PROXY_HTTP_API_AUTH_TYPE",
                            "",
                            "required when PROXY_HTTP_API_AUTH_ENABLED=on (only supports bearer)",
                        ))
                    }
                    Some(t) if t.eq_ignore_ascii_case("bearer") => {}
                    Some(t) => return Err(err("PROXY_HTTP_API_AUTH_TYPE", &t, "only supports bearer")),
                }
                let token = r.value("PROXY_HTTP_API_AUTH_TOKEN").ok_or_else(|| {
                    err("PROXY_HTTP_API_AUTH_TOKEN", "", "required when PROXY_HTTP_API_AUTH_ENABLED=on")
                })?;
                Some(token)
            }
            Some(v) => return Err(err("PROXY_HTTP_API_AUTH_ENABLED", v, "must be on or off")),
        };

        let register_allow = match r.value("PROXY_REGISTER_ALLOW") {
            None => Vec::new(),
            Some(v) => parse_networks(&v).map_err(|reason| err("PROXY_REGISTER_ALLOW", &v, &reason))?,
        };

        let log_format = match r.value("PROXY_LOG_FORMAT") {
            None => LogFormat::Text,
            Some(v) if v.eq_ignore_ascii_case("text") => LogFormat::Text,
            Some(v) if v.eq_ignore_ascii_case("json") => LogFormat::Json,
            Some(v) => return Err(err("PROXY_LOG_FORMAT", &v, "must be text or json")),
        };

        let default_backend = if r.value("PROXY_DEFAULT_BACKEND_ENABLED").as_deref() == Some("on") {
            let ip = r.string("PROXY_DEFAULT_BACKEND_IP");
            if ip.parse::<IpAddr>().is_err() {
                return Err(err("PROXY_DEFAULT_BACKEND_IP", &ip, "not an IP address"));
            }
            Some(DefaultBackend {
                ip,
                rtmp: r.endpoint("PROXY_DEFAULT_BACKEND_RTMP")?.unwrap_or_default(),
                http: r.endpoint("PROXY_DEFAULT_BACKEND_HTTP")?,
                api: r.endpoint("PROXY_DEFAULT_BACKEND_API")?,
                rtc: r.endpoint("PROXY_DEFAULT_BACKEND_RTC")?,
                srt: r.endpoint("PROXY_DEFAULT_BACKEND_SRT")?,
            })
        } else {
            None
        };

        let workers = match r.value("PROXY_WORKERS") {
            None => available_cores.clamp(1, MAX_WORKERS),
            Some(v) => match v.parse::<usize>() {
                Ok(n @ 1..=MAX_WORKERS) => n,
                _ => return Err(err("PROXY_WORKERS", &v, "must be an integer in 1..=1024")),
            },
        };

        let pin_cores = match r.value("PROXY_PIN_CORES").as_deref() {
            None | Some("on") => true,
            Some("off") => false,
            Some(v) => return Err(err("PROXY_PIN_CORES", v, "must be on or off")),
        };

        Ok(Config {
            rtmp_server: listen("PROXY_RTMP_SERVER")?,
            http_server: listen("PROXY_HTTP_SERVER")?,
            http_api: listen("PROXY_HTTP_API")?,
            webrtc_server: listen("PROXY_WEBRTC_SERVER")?,
            srt_server: listen("PROXY_SRT_SERVER")?,
            system_api: listen("PROXY_SYSTEM_API")?,
            static_files,
            load_balancer,
            redis,
            default_backend,
            origin_ttl: r.duration("PROXY_ORIGIN_SERVER_TTL", Sign::Positive)?,
            grace_quit_timeout: r.duration("PROXY_GRACE_QUIT_TIMEOUT", Sign::NonNegative)?,
            force_quit_timeout: r.duration("PROXY_FORCE_QUIT_TIMEOUT", Sign::NonNegative)?,
            idle_timeout: r.duration("PROXY_IDLE_TIMEOUT", Sign::Positive)?,
            srt_idle_timeout: r.duration("PROXY_SRT_IDLE_TIMEOUT", Sign::Positive)?,
            api_auth,
            register_allow,
            log_format,
            workers,
            webrtc_candidate: match r.value("PROXY_WEBRTC_CANDIDATE") {
                None => Vec::new(),
                Some(v) => v
                    .split(',')
                    .map(|a| {
                        a.trim().parse().map_err(|_| err("PROXY_WEBRTC_CANDIDATE", &v, "not a list of IP addresses"))
                    })
                    .collect::<Result<_, _>>()?,
            },
            webrtc_session_timeout: r.duration("PROXY_WEBRTC_SESSION_TIMEOUT", Sign::Positive)?,
            pin_cores,
            go_pprof: r.value("GO_PPROF"),
        })
    }

    /// Reads `./.env` (missing is fine; any other read error is a
    /// `ConfigError` on `.env`), then the process environment. A variable
    /// present in the process environment wins over `.env`, even when empty
    /// (it then means default), as SRS's `loadEnvFile` does.
    pub fn from_env() -> Result<Config, ConfigError> {
        let dotenv = match std::fs::read(".env") {
            Ok(bytes) => parse_dotenv(&String::from_utf8_lossy(&bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                return Err(ConfigError { var: ".env", value: String::new(), reason: format!("cannot read: {e}") })
            }
        };
        let process = |k: &str| std::env::var_os(k).map(|v| v.to_string_lossy().into_owned());
        let get = layered(&process, dotenv);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Config::from_lookup(&get, cores)
    }

    /// Whether an origin at `ip` may register (`PROXY_REGISTER_ALLOW`). An
    /// IPv4 peer seen on a dual-stack socket (`::ffff:a.b.c.d`) is matched
    /// as the IPv4 address it is.
    pub fn allows_register(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.register_allow.is_empty() || self.register_allow.iter().any(|n| n.contains(&ip))
    }

    /// Why the system API is open to anyone who can reach it, if it is: it
    /// listens beyond loopback with neither a bearer token nor an allow-list,
    /// so a stranger could register an origin and take streams (SRS #4690).
    pub fn open_register_warning(&self) -> Option<String> {
        let ip = self.system_api.0.ip();
        if ip.is_loopback() || self.api_auth.is_some() || !self.register_allow.is_empty() {
            return None;
        }
        Some(format!(
            "PROXY_SYSTEM_API={} listens beyond loopback with neither PROXY_HTTP_API_AUTH_ENABLED nor \
             PROXY_REGISTER_ALLOW: anyone who reaches it can register an origin and take streams",
            self.system_api
        ))
    }

    /// One line with every setting, secrets masked, for the startup log.
    pub fn summary(&self) -> String {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        let mut s = format!(
            "rtmp={}, http={}, api={}, webrtc={}, srt={}, system={}, static={}, lb={:?}, \
             origin_ttl={:?}, grace={:?}, force={:?}, workers={}, pin_cores={}, auth={}, register_allow={}",
            self.rtmp_server,
            self.http_server,
            self.http_api,
            self.webrtc_server,
            self.srt_server,
            self.system_api,
            self.static_files.as_ref().map_or_else(|| "off".to_owned(), |p| p.display().to_string()),
            self.load_balancer,
            self.origin_ttl,
            self.grace_quit_timeout,
            self.force_quit_timeout,
            self.workers,
            if self.pin_cores { "on" } else { "off" },
            if self.api_auth.is_some() { "bearer" } else { "off" },
            if self.register_allow.is_empty() {
                "any".to_owned()
            } else {
                self.register_allow.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
            },
        );
        if self.load_balancer == LbType::Redis {
            s += &format!(
                ", redis={}:{}/{}, redis_password={}, redis_prefix={}",
                self.redis.host,
                self.redis.port,
                self.redis.db,
                if self.redis.password.is_some() { "***" } else { "" },
                self.redis.key_prefix
            );
            if !self.redis.sentinels.is_empty() {
                let list: Vec<String> = self.redis.sentinels.iter().map(|(h, p)| format!("{h}:{p}")).collect();
                s += &format!(
                    ", redis_sentinels={}, redis_sentinel_master={}, redis_sentinel_password={}",
                    list.join(","),
                    self.redis.sentinel_master,
                    if self.redis.sentinel_password.is_some() { "***" } else { "" }
                );
            }
        }
        if let Some(b) = &self.default_backend {
            s += &format!(
                ", default_backend=ip={} rtmp={} http={} api={} rtc={} srt={}",
                b.ip,
                b.rtmp,
                opt(&b.http),
                opt(&b.api),
                opt(&b.rtc),
                opt(&b.srt)
            );
        }
        s
    }
}

/// Process environment over `.env`: a variable present in `process` (even
/// empty) hides the `.env` one; the last `.env` line for a key wins.
fn layered<'a>(
    process: &'a dyn Fn(&str) -> Option<String>,
    dotenv: Vec<(String, String)>,
) -> impl Fn(&str) -> Option<String> + 'a {
    let file: HashMap<String, String> = dotenv.into_iter().collect();
    move |k: &str| match process(k) {
        Some(v) => Some(v),
        None => file.get(k).cloned(),
    }
}

fn default_of(var: &str) -> &'static str {
    VARS.iter().find(|(_, name, _, _)| *name == var).map_or("", |(_, _, default, _)| default)
}

/// `host:port,host:port`; IPv6 as `[::1]:26379`.
fn parse_sentinels(v: &str) -> Result<Vec<(String, u16)>, &'static str> {
    let mut out = Vec::new();
    for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (host, port) = item.rsplit_once(':').ok_or("each sentinel is host:port")?;
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        let port: u16 = port.parse().map_err(|_| "a sentinel port is not a number 1..65535")?;
        if host.is_empty() || port == 0 {
            return Err("each sentinel is host:port");
        }
        out.push((host.to_string(), port));
    }
    if out.is_empty() {
        return Err("no sentinel listed");
    }
    Ok(out)
}

fn err(var: &'static str, value: &str, reason: &str) -> ConfigError {
    ConfigError { var, value: value.to_owned(), reason: reason.to_owned() }
}

#[derive(Clone, Copy)]
enum Sign {
    Positive,
    NonNegative,
}

struct Reader<'a> {
    get: &'a dyn Fn(&str) -> Option<String>,
}

impl Reader<'_> {
    /// The trimmed value, `None` when unset or empty.
    fn value(&self, var: &str) -> Option<String> {
        (self.get)(var).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    fn string(&self, var: &'static str) -> String {
        self.value(var).unwrap_or_else(|| default_of(var).to_owned())
    }

    fn listen(&self, var: &'static str, default: &str) -> Result<Listen, ConfigError> {
        let v = self.value(var).unwrap_or_else(|| default.to_owned());
        parse_listen(&v).map_err(|reason| err(var, &v, reason))
    }

    fn port(&self, var: &'static str, default: u16) -> Result<u16, ConfigError> {
        match self.value(var) {
            None => Ok(default),
            Some(v) => parse_port(&v).map_err(|reason| err(var, &v, reason)),
        }
    }

    fn duration(&self, var: &'static str, sign: Sign) -> Result<Duration, ConfigError> {
        let v = self.string(var);
        let nanos = parse_go_duration(&v).map_err(|e| err(var, &v, &e))?;
        match sign {
            Sign::Positive if nanos <= 0 => Err(err(var, &v, "must be positive")),
            Sign::NonNegative if nanos < 0 => Err(err(var, &v, "must not be negative")),
            _ => Ok(Duration::from_nanos(nanos.unsigned_abs())),
        }
    }

    /// An endpoint string (default applied), checked with srs-lb's parser.
    fn endpoint(&self, var: &'static str) -> Result<Option<String>, ConfigError> {
        let v = self.string(var);
        if v.is_empty() {
            return Ok(None);
        }
        match srs_lb::parse_endpoint(&v) {
            Ok(_) => Ok(Some(v)),
            Err(e) => Err(err(var, &v, &e.to_string())),
        }
    }
}

fn parse_port(v: &str) -> Result<u16, &'static str> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err("not a port");
    }
    match v.parse::<u32>() {
        Ok(p @ 1..=65535) => Ok(p as u16),
        _ => Err("port must be in 1..=65535"),
    }
}

/// A comma-separated list of CIDRs (`10.0.0.0/8`, `fd00::/8`) or bare
/// addresses (a /32 or /128). Host bits set under the mask are an error:
/// `10.0.0.1/8` is more likely a typo than a meant network.
fn parse_networks(v: &str) -> Result<Vec<ipnet::IpNet>, String> {
    let mut out = Vec::new();
    for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let net = if item.contains('/') {
            let net: ipnet::IpNet = item.parse().map_err(|_| format!("{item:?} is not a CIDR"))?;
            if net.trunc() != net {
                return Err(format!("{item:?} has host bits set (the network is {})", net.trunc()));
            }
            net
        } else {
            let ip: IpAddr = item.parse().map_err(|_| format!("{item:?} is not an address or CIDR"))?;
            ipnet::IpNet::from(ip)
        };
        out.push(net);
    }
    if out.is_empty() {
        return Err("no network listed".into());
    }
    Ok(out)
}

/// `1935`, `:1935` → `0.0.0.0:1935`; `ip:port`, `[v6]:port` as written.
fn parse_listen(v: &str) -> Result<Listen, &'static str> {
    let bare = v.strip_prefix(':').unwrap_or(v);
    if !bare.is_empty() && bare.bytes().all(|b| b.is_ascii_digit()) {
        let port = parse_port(bare)?;
        return Ok(Listen(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)));
    }
    let addr: SocketAddr = v.parse().map_err(|_| "not a port or ip:port")?;
    if addr.port() == 0 {
        return Err("port must be in 1..=65535");
    }
    Ok(Listen(addr))
}

/// Go's `time.ParseDuration`: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+` with units
/// `ns`, `us` (`µs`, `μs`), `ms`, `s`, `m`, `h`, or a bare `0`. Returns
/// nanoseconds; errors use Go's messages.
pub fn parse_go_duration(s: &str) -> Result<i64, String> {
    let orig = s;
    let invalid = || format!("time: invalid duration {orig:?}");
    let mut s = s;
    let mut neg = false;
    if let Some(c) = s.chars().next() {
        if c == '-' || c == '+' {
            neg = c == '-';
            s = &s[1..];
        }
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    const LIMIT: u64 = 1 << 63;
    let mut total: u64 = 0;
    while !s.is_empty() {
        let b = s.as_bytes();
        if !(b[0] == b'.' || b[0].is_ascii_digit()) {
            return Err(invalid());
        }
        // Integer part.
        let int_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
        let mut v: u64 = 0;
        for &c in &b[..int_len] {
            v = v
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(c - b'0')))
                .filter(|v| *v <= LIMIT)
                .ok_or_else(invalid)?;
        }
        s = &s[int_len..];
        // Fraction.
        let mut frac: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut frac_len = 0;
        if let Some(rest) = s.strip_prefix('.') {
            s = rest;
            let digits = s.bytes().take_while(u8::is_ascii_digit).count();
            let mut overflow = false;
            for c in s[..digits].bytes() {
                if overflow {
                    continue;
                }
                match frac.checked_mul(10).and_then(|f| f.checked_add(u64::from(c - b'0'))).filter(|f| *f <= LIMIT) {
                    Some(f) => {
                        frac = f;
                        scale *= 10.0;
                    }
                    None => overflow = true,
                }
            }
            frac_len = digits;
            s = &s[digits..];
        }
        if int_len == 0 && frac_len == 0 {
            return Err(invalid());
        }
        // Unit.
        let unit_len = s.find(|c: char| c == '.' || c.is_ascii_digit()).unwrap_or(s.len());
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration {orig:?}"));
        }
        let unit_str = &s[..unit_len];
        s = &s[unit_len..];
        let unit: u64 = match unit_str {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(format!("time: unknown unit {unit_str:?} in duration {orig:?}")),
        };
        if v > LIMIT / unit {
            return Err(invalid());
        }
        v *= unit;
        if frac > 0 {
            v += (frac as f64 * (unit as f64 / scale)) as u64;
            if v > LIMIT {
                return Err(invalid());
            }
        }
        total = total.checked_add(v).filter(|t| *t <= LIMIT).ok_or_else(invalid)?;
    }
    if neg {
        return Ok((total as i128).wrapping_neg() as i64);
    }
    if total > LIMIT - 1 {
        return Err(invalid());
    }
    Ok(total as i64)
}

/// Parses `.env` text as SRS LATEST's `parseEnvReader` (B§2.2): `#` comment
/// lines, blank lines, an `export ` prefix, `KEY=value` split on the first
/// `=` with both sides trimmed, single quotes raw, double quotes with
/// `\n \r \" \\` escapes, ` # comment` after unquoted values, `KEY=` empty,
/// lines without `=` ignored. Two fixes: escapes are decoded in one pass
/// (Go's chained `ReplaceAll` turns `\\n` into a newline), and a quoted
/// value may be followed by a ` # comment`. Later lines win.
pub fn parse_dotenv(text: &str) -> Vec<(String, String)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for line in text.lines() {
        let mut line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("export ") {
            line = rest.trim();
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.is_empty() {
            continue;
        }
        out.push((key.to_owned(), dotenv_value(value.trim())));
    }
    out
}

fn dotenv_value(v: &str) -> String {
    let quoted = |q: char| -> Option<(&str, &str)> {
        let inner = v.strip_prefix(q)?;
        let mut escaped = false;
        for (i, c) in inner.char_indices() {
            if q == '"' && c == '\\' && !escaped {
                escaped = true;
                continue;
            }
            if c == q && !escaped {
                return Some((&inner[..i], &inner[i + 1..]));
            }
            escaped = false;
        }
        None
    };
    for q in ['\'', '"'] {
        if let Some((inner, rest)) = quoted(q) {
            let rest = rest.trim_start();
            if rest.is_empty() || rest.starts_with('#') {
                return if q == '"' { unescape(inner) } else { inner.to_owned() };
            }
        }
    }
    match v.find(" #") {
        Some(i) => v[..i].trim().to_owned(),
        None => v.to_owned(),
    }
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// The `--help` text: every variable with its default and meaning, grouped.
pub fn help_text() -> String {
    let mut s = String::from(
        "srs-proxy: a proxy in front of a cluster of SRS media origins.\n\
         \n\
         Configured with environment variables, also read from ./.env (variables\n\
         already set win). An empty value means the default.\n",
    );
    let width = VARS.iter().map(|(_, n, _, _)| n.len()).max().unwrap_or(0);
    let mut group = "";
    for (g, name, default, meaning) in VARS {
        if *g != group {
            group = g;
            s += &format!("\n{g}:\n");
        }
        let default = if default.is_empty() { "(empty)" } else { default };
        s += &format!("  {name:width$}  default {default}: {meaning}\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::BTreeSet;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(&|k| map.get(k).cloned(), 4)
    }

    fn addr(s: &str) -> Listen {
        Listen(s.parse().unwrap())
    }

    #[test]
    fn defaults() {
        let c = config(&[]).unwrap();
        assert_eq!(c.rtmp_server, addr("0.0.0.0:11935"));
        assert_eq!(c.http_server, addr("0.0.0.0:18080"));
        assert_eq!(c.http_api, addr("0.0.0.0:11985"));
        assert_eq!(c.webrtc_server, addr("0.0.0.0:18000"));
        assert_eq!(c.srt_server, addr("0.0.0.0:20080"));
        assert_eq!(c.system_api, addr("0.0.0.0:12025"));
        assert_eq!(c.static_files, Some(PathBuf::from("./players")));
        assert_eq!(c.load_balancer, LbType::Memory);
        assert_eq!(
            c.redis,
            RedisConfig {
                host: "127.0.0.1".into(),
                port: 6379,
                password: None,
                db: 0,
                key_prefix: String::new(),
                sentinels: Vec::new(),
                sentinel_master: "mymaster".into(),
                sentinel_password: None,
            }
        );
        assert_eq!(c.default_backend, None);
        assert_eq!(c.origin_ttl, Duration::from_secs(300));
        assert_eq!(c.grace_quit_timeout, Duration::from_secs(20));
        assert_eq!(c.force_quit_timeout, Duration::from_secs(30));
        assert_eq!(c.api_auth, None);
        assert_eq!(c.workers, 4);
        assert_eq!(c.go_pprof, None);
        // Empty values mean default, as SRS.
        let all_empty: Vec<(&str, &str)> = VARS.iter().map(|(_, n, _, _)| (*n, "")).collect();
        assert_eq!(config(&all_empty).unwrap(), c);
        let blank: Vec<(&str, &str)> = VARS.iter().map(|(_, n, _, _)| (*n, "  ")).collect();
        assert_eq!(config(&blank).unwrap(), c);
    }

    #[test]
    fn workers_default_clamped() {
        let get = |_: &str| None;
        assert_eq!(Config::from_lookup(&get, 0).unwrap().workers, 1);
        assert_eq!(Config::from_lookup(&get, 5000).unwrap().workers, 1024);
    }

    #[test]
    fn default_backend_enabled() {
        let c = config(&[("PROXY_DEFAULT_BACKEND_ENABLED", "on")]).unwrap();
        assert_eq!(
            c.default_backend,
            Some(DefaultBackend {
                ip: "127.0.0.1".into(),
                rtmp: "1935".into(),
                http: None,
                api: Some("1985".into()),
                rtc: Some("8000".into()),
                srt: Some("10080".into()),
            })
        );
        let c = config(&[
            ("PROXY_DEFAULT_BACKEND_ENABLED", "on"),
            ("PROXY_DEFAULT_BACKEND_IP", "10.0.0.9"),
            ("PROXY_DEFAULT_BACKEND_RTMP", "19351"),
            ("PROXY_DEFAULT_BACKEND_HTTP", "8081"),
            ("PROXY_DEFAULT_BACKEND_SRT", "udp://0.0.0.0:10081"),
        ])
        .unwrap();
        let b = c.default_backend.unwrap();
        assert_eq!((b.ip.as_str(), b.rtmp.as_str()), ("10.0.0.9", "19351"));
        assert_eq!(b.http.as_deref(), Some("8081"));
        assert_eq!(b.srt.as_deref(), Some("udp://0.0.0.0:10081"));
        // Only the exact value `on` enables it.
        for v in ["off", "On", "yes", "true", "1"] {
            let c = config(&[("PROXY_DEFAULT_BACKEND_ENABLED", v)]).unwrap();
            assert_eq!(c.default_backend, None, "{v}");
        }
    }

    /// One `#[test]` per accepted value: (vars) → check on the config.
    macro_rules! good {
        ($($name:ident: [$(($k:expr, $v:expr)),*] => |$c:ident| $check:expr;)*) => {$(
            #[test]
            fn $name() {
                let $c = config(&[$(($k, $v)),*]).unwrap();
                assert!($check);
            }
        )*};
    }

    good! {
        listen_ip_port: [("PROXY_RTMP_SERVER", "127.0.0.1:1935")] => |c| c.rtmp_server == addr("127.0.0.1:1935");
        listen_v6: [("PROXY_SYSTEM_API", "[::1]:12025")] => |c| c.system_api == addr("[::1]:12025");
        listen_go_colon_port: [("PROXY_HTTP_API", ":1985")] => |c| c.http_api == addr("0.0.0.0:1985");
        listen_trimmed: [("PROXY_SRT_SERVER", " 10080 ")] => |c| c.srt_server == addr("0.0.0.0:10080");
        listen_max_port: [("PROXY_WEBRTC_SERVER", "65535")] => |c| c.webrtc_server.port() == 65535;
        lb_redis: [("PROXY_LOAD_BALANCER_TYPE", "redis")] => |c| c.load_balancer == LbType::Redis;
        lb_memory_upper: [("PROXY_LOAD_BALANCER_TYPE", "MEMORY")] => |c| c.load_balancer == LbType::Memory;
        redis_all: [("PROXY_REDIS_HOST", "redis.local"), ("PROXY_REDIS_PORT", "6380"), ("PROXY_REDIS_PASSWORD", "pw"),
                    ("PROXY_REDIS_DB", "3"), ("PROXY_REDIS_KEY_PREFIX", "px")]
            => |c| c.redis == RedisConfig { host: "redis.local".into(), port: 6380, password: Some("pw".into()), db: 3, key_prefix: "px".into(),
                sentinels: Vec::new(), sentinel_master: "mymaster".into(), sentinel_password: None };
        redis_sentinels: [("PROXY_REDIS_SENTINELS", "10.0.0.1:26379, s2:26380,[::1]:26381"), ("PROXY_REDIS_SENTINEL_MASTER", "m1"),
                    ("PROXY_REDIS_SENTINEL_PASSWORD", "spw")]
            => |c| c.redis.sentinels == vec![("10.0.0.1".to_string(), 26379), ("s2".to_string(), 26380), ("::1".to_string(), 26381)]
                && c.redis.sentinel_master == "m1" && c.redis.sentinel_password.as_deref() == Some("spw");
        static_custom: [("PROXY_STATIC_FILES", "/srv/www")] => |c| c.static_files == Some(PathBuf::from("/srv/www"));
        static_off: [("PROXY_STATIC_FILES", "off")] => |c| c.static_files.is_none();
        ttl_custom: [("PROXY_ORIGIN_SERVER_TTL", "45s")] => |c| c.origin_ttl == Duration::from_secs(45);
        ttl_compound: [("PROXY_ORIGIN_SERVER_TTL", "1m30s")] => |c| c.origin_ttl == Duration::from_secs(90);
        grace_zero: [("PROXY_GRACE_QUIT_TIMEOUT", "0")] => |c| c.grace_quit_timeout == Duration::ZERO;
        force_ms: [("PROXY_FORCE_QUIT_TIMEOUT", "500ms")] => |c| c.force_quit_timeout == Duration::from_millis(500);
        idle_set: [("PROXY_IDLE_TIMEOUT", "2m")] => |c| c.idle_timeout == Duration::from_secs(120);
        rtc_defaults: [] => |c| c.webrtc_candidate.is_empty() && c.webrtc_session_timeout == Duration::from_secs(30);
        rtc_candidates: [("PROXY_WEBRTC_CANDIDATE", "192.0.2.7, 2001:db8::1")]
            => |c| c.webrtc_candidate == ["192.0.2.7".parse::<std::net::IpAddr>().unwrap(), "2001:db8::1".parse().unwrap()];
        rtc_timeout: [("PROXY_WEBRTC_SESSION_TIMEOUT", "5s")] => |c| c.webrtc_session_timeout == Duration::from_secs(5);
        auth_on: [("PROXY_HTTP_API_AUTH_ENABLED", "on"), ("PROXY_HTTP_API_AUTH_TYPE", "bearer"), ("PROXY_HTTP_API_AUTH_TOKEN", "s3cret")]
            => |c| c.api_auth.as_deref() == Some("s3cret");
        auth_type_case: [("PROXY_HTTP_API_AUTH_ENABLED", "on"), ("PROXY_HTTP_API_AUTH_TYPE", "Bearer"), ("PROXY_HTTP_API_AUTH_TOKEN", "t")]
            => |c| c.api_auth.is_some();
        auth_off_ignores_rest: [("PROXY_HTTP_API_AUTH_ENABLED", "off"), ("PROXY_HTTP_API_AUTH_TYPE", "basic")] => |c| c.api_auth.is_none();
        workers_set: [("PROXY_WORKERS", "2")] => |c| c.workers == 2;
        workers_max: [("PROXY_WORKERS", "1024")] => |c| c.workers == 1024;
        pin_cores_default: [] => |c| c.pin_cores;
        pin_cores_off: [("PROXY_PIN_CORES", "off")] => |c| !c.pin_cores;
        pin_cores_on: [("PROXY_PIN_CORES", "on")] => |c| c.pin_cores;
        pprof_set: [("GO_PPROF", "localhost:6060")] => |c| c.go_pprof.as_deref() == Some("localhost:6060");
        allow_default_any: [] => |c| c.register_allow.is_empty() && c.allows_register("203.0.113.9".parse().unwrap());
        allow_cidrs: [("PROXY_REGISTER_ALLOW", "10.0.0.0/8, 127.0.0.1,fd00::/8")]
            => |c| c.allows_register("10.1.2.3".parse().unwrap()) && c.allows_register("127.0.0.1".parse().unwrap())
                && c.allows_register("fd00::5".parse().unwrap()) && !c.allows_register("127.0.0.2".parse().unwrap())
                && !c.allows_register("11.0.0.1".parse().unwrap());
        allow_v4_mapped: [("PROXY_REGISTER_ALLOW", "127.0.0.0/8")] => |c| c.allows_register("::ffff:127.0.0.1".parse().unwrap());
        log_json: [("PROXY_LOG_FORMAT", "json")] => |c| c.log_format == LogFormat::Json;
        log_text_default: [] => |c| c.log_format == LogFormat::Text;
    }

    /// One `#[test]` per bad value: (var, value) → error naming that variable
    /// with `reason`.
    macro_rules! bad {
        ($($name:ident: [$(($k:expr, $v:expr)),*] => ($var:expr, $reason:expr);)*) => {$(
            #[test]
            fn $name() {
                let e = config(&[$(($k, $v)),*]).unwrap_err();
                assert_eq!(e.var, $var, "{e}");
                assert!(e.reason.contains($reason), "{e}");
                let line = e.to_string();
                assert!(line.starts_with(&format!("{}=", $var)) && !line.contains('\n'), "{line}");
            }
        )*};
    }

    bad! {
        bad_listen_word: [("PROXY_RTMP_SERVER", "abc")] => ("PROXY_RTMP_SERVER", "not a port or ip:port");
        bad_listen_zero: [("PROXY_HTTP_SERVER", "0")] => ("PROXY_HTTP_SERVER", "1..=65535");
        bad_listen_big: [("PROXY_HTTP_API", "65536")] => ("PROXY_HTTP_API", "1..=65535");
        bad_listen_huge: [("PROXY_SYSTEM_API", "99999999999999999999")] => ("PROXY_SYSTEM_API", "1..=65535");
        bad_listen_negative: [("PROXY_SRT_SERVER", "-1")] => ("PROXY_SRT_SERVER", "not a port or ip:port");
        bad_listen_host_name: [("PROXY_WEBRTC_SERVER", "localhost:8000")] => ("PROXY_WEBRTC_SERVER", "not a port or ip:port");
        bad_listen_ip_port_zero: [("PROXY_RTMP_SERVER", "127.0.0.1:0")] => ("PROXY_RTMP_SERVER", "1..=65535");
        bad_listen_v6_unbracketed: [("PROXY_RTMP_SERVER", "::1:1935")] => ("PROXY_RTMP_SERVER", "not a port or ip:port");
        bad_rtc_candidate: [("PROXY_WEBRTC_CANDIDATE", "proxy.example.com")] => ("PROXY_WEBRTC_CANDIDATE", "not a list of IP addresses");
        bad_rtc_candidate_empty_item: [("PROXY_WEBRTC_CANDIDATE", "192.0.2.7,")] => ("PROXY_WEBRTC_CANDIDATE", "not a list of IP addresses");
        bad_rtc_timeout_zero: [("PROXY_WEBRTC_SESSION_TIMEOUT", "0")] => ("PROXY_WEBRTC_SESSION_TIMEOUT", "must be positive");
        bad_lb_type: [("PROXY_LOAD_BALANCER_TYPE", "etcd")] => ("PROXY_LOAD_BALANCER_TYPE", "must be memory or redis");
        bad_redis_port: [("PROXY_REDIS_PORT", "redis")] => ("PROXY_REDIS_PORT", "not a port");
        bad_redis_port_zero: [("PROXY_REDIS_PORT", "0")] => ("PROXY_REDIS_PORT", "1..=65535");
        bad_redis_port_big: [("PROXY_REDIS_PORT", "70000")] => ("PROXY_REDIS_PORT", "1..=65535");
        bad_allow_word: [("PROXY_REGISTER_ALLOW", "office")] => ("PROXY_REGISTER_ALLOW", "not an address or CIDR");
        bad_allow_prefix: [("PROXY_REGISTER_ALLOW", "10.0.0.0/33")] => ("PROXY_REGISTER_ALLOW", "not a CIDR");
        bad_allow_host_bits: [("PROXY_REGISTER_ALLOW", "10.0.0.1/8")] => ("PROXY_REGISTER_ALLOW", "host bits set");
        bad_allow_only_commas: [("PROXY_REGISTER_ALLOW", ",,")] => ("PROXY_REGISTER_ALLOW", "no network listed");
        bad_log_format: [("PROXY_LOG_FORMAT", "xml")] => ("PROXY_LOG_FORMAT", "must be text or json");
        bad_redis_db: [("PROXY_REDIS_DB", "one")] => ("PROXY_REDIS_DB", "not an integer");
        bad_redis_db_float: [("PROXY_REDIS_DB", "1.5")] => ("PROXY_REDIS_DB", "not an integer");
        bad_redis_db_negative: [("PROXY_REDIS_DB", "-1")] => ("PROXY_REDIS_DB", "must not be negative");
        bad_sentinel_no_port: [("PROXY_REDIS_SENTINELS", "s1")] => ("PROXY_REDIS_SENTINELS", "host:port");
        bad_sentinel_port: [("PROXY_REDIS_SENTINELS", "s1:99999")] => ("PROXY_REDIS_SENTINELS", "port");
        bad_sentinel_empty_host: [("PROXY_REDIS_SENTINELS", ":26379")] => ("PROXY_REDIS_SENTINELS", "host:port");
        bad_sentinel_only_commas: [("PROXY_REDIS_SENTINELS", ",,")] => ("PROXY_REDIS_SENTINELS", "no sentinel");
        bad_ttl_zero: [("PROXY_ORIGIN_SERVER_TTL", "0s")] => ("PROXY_ORIGIN_SERVER_TTL", "must be positive");
        bad_ttl_bare_zero: [("PROXY_ORIGIN_SERVER_TTL", "0")] => ("PROXY_ORIGIN_SERVER_TTL", "must be positive");
        bad_ttl_negative: [("PROXY_ORIGIN_SERVER_TTL", "-5m")] => ("PROXY_ORIGIN_SERVER_TTL", "must be positive");
        bad_ttl_no_unit: [("PROXY_ORIGIN_SERVER_TTL", "300")] => ("PROXY_ORIGIN_SERVER_TTL", "missing unit");
        bad_ttl_word: [("PROXY_ORIGIN_SERVER_TTL", "five minutes")] => ("PROXY_ORIGIN_SERVER_TTL", "invalid duration");
        bad_grace_unit: [("PROXY_GRACE_QUIT_TIMEOUT", "20sec")] => ("PROXY_GRACE_QUIT_TIMEOUT", "unknown unit");
        bad_grace_negative: [("PROXY_GRACE_QUIT_TIMEOUT", "-1s")] => ("PROXY_GRACE_QUIT_TIMEOUT", "must not be negative");
        bad_force: [("PROXY_FORCE_QUIT_TIMEOUT", "soon")] => ("PROXY_FORCE_QUIT_TIMEOUT", "invalid duration");
        bad_idle_zero: [("PROXY_IDLE_TIMEOUT", "0s")] => ("PROXY_IDLE_TIMEOUT", "positive");
        bad_auth_enabled: [("PROXY_HTTP_API_AUTH_ENABLED", "yes")] => ("PROXY_HTTP_API_AUTH_ENABLED", "must be on or off");
        bad_auth_no_type: [("PROXY_HTTP_API_AUTH_ENABLED", "on"), ("PROXY_HTTP_API_AUTH_TOKEN", "t")] => ("PROXY_HTTP_API_AUTH_TYPE", "only supports bearer");
        bad_auth_basic: [("PROXY_HTTP_API_AUTH_ENABLED", "on"), ("PROXY_HTTP_API_AUTH_TYPE", "basic"), ("PROXY_HTTP_API_AUTH_TOKEN", "t")] => ("PROXY_HTTP_API_AUTH_TYPE", "only supports bearer");
        bad_auth_no_token: [("PROXY_HTTP_API_AUTH_ENABLED", "on"), ("PROXY_HTTP_API_AUTH_TYPE", "bearer")] => ("PROXY_HTTP_API_AUTH_TOKEN", "required");
        bad_workers_zero: [("PROXY_WORKERS", "0")] => ("PROXY_WORKERS", "1..=1024");
        bad_workers_big: [("PROXY_WORKERS", "1025")] => ("PROXY_WORKERS", "1..=1024");
        bad_workers_word: [("PROXY_WORKERS", "all")] => ("PROXY_WORKERS", "1..=1024");
        bad_pin_cores: [("PROXY_PIN_CORES", "yes")] => ("PROXY_PIN_CORES", "on or off");
        bad_backend_ip: [("PROXY_DEFAULT_BACKEND_ENABLED", "on"), ("PROXY_DEFAULT_BACKEND_IP", "origin.local")] => ("PROXY_DEFAULT_BACKEND_IP", "not an IP address");
        bad_backend_rtmp: [("PROXY_DEFAULT_BACKEND_ENABLED", "on"), ("PROXY_DEFAULT_BACKEND_RTMP", "rtmp")] => ("PROXY_DEFAULT_BACKEND_RTMP", "not a number");
        bad_backend_http: [("PROXY_DEFAULT_BACKEND_ENABLED", "on"), ("PROXY_DEFAULT_BACKEND_HTTP", "80800")] => ("PROXY_DEFAULT_BACKEND_HTTP", "out of range");
        bad_backend_srt: [("PROXY_DEFAULT_BACKEND_ENABLED", "on"), ("PROXY_DEFAULT_BACKEND_SRT", "udp://[::]")] => ("PROXY_DEFAULT_BACKEND_SRT", "missing port");
    }

    #[test]
    fn bad_backend_values_ignored_when_disabled() {
        assert!(config(&[("PROXY_DEFAULT_BACKEND_RTMP", "rtmp")]).is_ok());
    }

    #[test]
    fn error_display_one_line() {
        let e = config(&[("PROXY_RTMP_SERVER", "abc")]).unwrap_err();
        assert_eq!(e.to_string(), "PROXY_RTMP_SERVER=abc: not a port or ip:port");
    }

    #[test]
    fn open_register_warning_when_public_and_unguarded() {
        assert!(config(&[]).unwrap().open_register_warning().is_some());
        for guarded in [
            vec![("PROXY_SYSTEM_API", "127.0.0.1:12025")],
            vec![("PROXY_SYSTEM_API", "[::1]:12025")],
            vec![("PROXY_REGISTER_ALLOW", "10.0.0.0/8")],
            vec![
                ("PROXY_HTTP_API_AUTH_ENABLED", "on"),
                ("PROXY_HTTP_API_AUTH_TYPE", "bearer"),
                ("PROXY_HTTP_API_AUTH_TOKEN", "t"),
            ],
        ] {
            assert_eq!(config(&guarded).unwrap().open_register_warning(), None, "{guarded:?}");
        }
    }

    #[test]
    fn every_variable_read_is_documented() {
        let seen = RefCell::new(BTreeSet::new());
        let all_on = |k: &str| {
            seen.borrow_mut().insert(k.to_owned());
            match k {
                "PROXY_DEFAULT_BACKEND_ENABLED" | "PROXY_HTTP_API_AUTH_ENABLED" => Some("on".into()),
                "PROXY_HTTP_API_AUTH_TYPE" => Some("bearer".into()),
                "PROXY_HTTP_API_AUTH_TOKEN" => Some("t".into()),
                _ => None,
            }
        };
        Config::from_lookup(&all_on, 2).unwrap();
        let documented: BTreeSet<String> = VARS.iter().map(|(_, n, _, _)| n.to_string()).collect();
        assert_eq!(*seen.borrow(), documented);
        let help = help_text();
        for (_, name, default, _) in VARS {
            let line = help.lines().find(|l| l.trim_start().starts_with(name)).unwrap();
            if !default.is_empty() {
                assert!(line.contains(&format!("default {default}:")), "{line}");
            }
        }
        // Every SRS Go variable (B§2.1, B§2.2) is there.
        for name in [
            "GO_PPROF",
            "PROXY_FORCE_QUIT_TIMEOUT",
            "PROXY_GRACE_QUIT_TIMEOUT",
            "PROXY_HTTP_API",
            "PROXY_HTTP_SERVER",
            "PROXY_RTMP_SERVER",
            "PROXY_WEBRTC_SERVER",
            "PROXY_SRT_SERVER",
            "PROXY_SYSTEM_API",
            "PROXY_STATIC_FILES",
            "PROXY_LOAD_BALANCER_TYPE",
            "PROXY_REDIS_HOST",
            "PROXY_REDIS_PORT",
            "PROXY_REDIS_PASSWORD",
            "PROXY_REDIS_DB",
            "PROXY_DEFAULT_BACKEND_ENABLED",
            "PROXY_DEFAULT_BACKEND_IP",
            "PROXY_DEFAULT_BACKEND_RTMP",
            "PROXY_DEFAULT_BACKEND_HTTP",
            "PROXY_DEFAULT_BACKEND_API",
            "PROXY_DEFAULT_BACKEND_RTC",
            "PROXY_DEFAULT_BACKEND_SRT",
            "PROXY_REDIS_KEY_PREFIX",
            "PROXY_ORIGIN_SERVER_TTL",
            "PROXY_HTTP_API_AUTH_ENABLED",
            "PROXY_HTTP_API_AUTH_TYPE",
            "PROXY_HTTP_API_AUTH_TOKEN",
        ] {
            assert!(documented.contains(name), "{name}");
        }
    }

    #[test]
    fn secrets_are_masked() {
        let c = config(&[
            ("PROXY_REDIS_PASSWORD", "redispw"),
            ("PROXY_REDIS_SENTINELS", "s1:26379"),
            ("PROXY_REDIS_SENTINEL_PASSWORD", "sentpw"),
            ("PROXY_LOAD_BALANCER_TYPE", "redis"),
            ("PROXY_HTTP_API_AUTH_ENABLED", "on"),
            ("PROXY_HTTP_API_AUTH_TYPE", "bearer"),
            ("PROXY_HTTP_API_AUTH_TOKEN", "tok3n"),
        ])
        .unwrap();
        for text in [format!("{c:?}"), c.summary()] {
            assert!(!text.contains("redispw") && !text.contains("tok3n") && !text.contains("sentpw"), "{text}");
        }
        assert!(c.summary().contains("rtmp=0.0.0.0:11935"));
        assert!(c.summary().contains("redis_sentinels=s1:26379"), "{}", c.summary());
    }

    /// One `#[test]` per Go duration string → nanoseconds or error prefix.
    macro_rules! dur {
        ($($name:ident: $s:expr => $want:expr;)*) => {$(
            #[test]
            fn $name() {
                let want: Result<i64, &str> = $want;
                match (parse_go_duration($s), want) {
                    (Ok(got), Ok(w)) => assert_eq!(got, w, "{:?}", $s),
                    (Err(got), Err(w)) => assert!(got.starts_with(w), "{:?}: {got}", $s),
                    (got, w) => panic!("{:?}: got {got:?}, want {w:?}", $s),
                }
            }
        )*};
    }

    const S: i64 = 1_000_000_000;
    dur! {
        dur_zero: "0" => Ok(0);
        dur_plus_zero: "+0" => Ok(0);
        dur_minus_zero: "-0" => Ok(0);
        dur_30s: "30s" => Ok(30 * S);
        dur_1m30s: "1m30s" => Ok(90 * S);
        dur_500ms: "500ms" => Ok(500_000_000);
        dur_1_5h: "1.5h" => Ok(5400 * S);
        dur_2h45m: "2h45m" => Ok((2 * 3600 + 45 * 60) * S);
        dur_ns: "1ns" => Ok(1);
        dur_us: "1us" => Ok(1_000);
        dur_micro_sign: "1µs" => Ok(1_000);
        dur_greek_mu: "1μs" => Ok(1_000);
        dur_leading_dot: ".5s" => Ok(S / 2);
        dur_trailing_dot: "5.s" => Ok(5 * S);
        dur_negative: "-1.5h" => Ok(-5400 * S);
        dur_plus: "+10s" => Ok(10 * S);
        dur_zero_with_unit: "0s" => Ok(0);
        dur_many_parts: "1h2m3s4ms5us6ns" => Ok(3723 * S + 4_005_006);
        dur_long_fraction: "1.0000000000000000000001s" => Ok(S);
        dur_max: "9223372036854775807ns" => Ok(i64::MAX);
        dur_min: "-9223372036854775808ns" => Ok(i64::MIN);
        dur_err_empty: "" => Err("time: invalid duration \"\"");
        dur_err_sign_only: "-" => Err("time: invalid duration");
        dur_err_no_unit: "300" => Err("time: missing unit in duration \"300\"");
        dur_err_no_unit_after: "1s2" => Err("time: missing unit");
        dur_err_unknown_unit: "3d" => Err("time: unknown unit \"d\" in duration \"3d\"");
        dur_err_space: "1 s" => Err("time: unknown unit \" s\"");
        dur_err_dot: ".s" => Err("time: invalid duration");
        dur_err_letters: "s" => Err("time: invalid duration");
        dur_err_double_sign: "--1s" => Err("time: invalid duration");
        dur_err_overflow: "9223372036854775808ns" => Err("time: invalid duration");
        dur_err_overflow_hours: "3000000h" => Err("time: invalid duration");
        dur_err_overflow_sum: "2562047h48m" => Err("time: invalid duration");
        dur_err_uppercase: "1S" => Err("time: unknown unit");
    }

    /// One `#[test]` per .env text → parsed pairs.
    macro_rules! dotenv {
        ($($name:ident: $text:expr => [$(($k:expr, $v:expr)),*];)*) => {$(
            #[test]
            fn $name() {
                let want: Vec<(String, String)> = vec![$(($k.to_string(), $v.to_string())),*];
                assert_eq!(parse_dotenv($text), want, "{:?}", $text);
            }
        )*};
    }

    dotenv! {
        env_basic: "FOO=bar\nHELLO=world\n" => [("FOO", "bar"), ("HELLO", "world")];
        env_comments_and_blanks: "# comment\n\nKEY=value\n\n  # indented comment\n" => [("KEY", "value")];
        env_export: "export PORT=8080\nexport   HOST=localhost\n" => [("PORT", "8080"), ("HOST", "localhost")];
        env_single_quoted_raw: "KEY='hello world'\nRAW='no\\nescaping'\n" => [("KEY", "hello world"), ("RAW", "no\\nescaping")];
        env_double_quoted: "KEY=\"hello world\"\nMSG=\"line1\\nline2\"\n" => [("KEY", "hello world"), ("MSG", "line1\nline2")];
        env_double_escapes: "KEY=\"say \\\"hi\\\"\"\nBS=\"back\\\\slash\"\nCR=\"a\\rb\"\n" => [("KEY", "say \"hi\""), ("BS", "back\\slash"), ("CR", "a\rb")];
        env_escaped_backslash_then_n: "P=\"c:\\\\new\"" => [("P", "c:\\new")];
        env_unknown_escape_kept: "P=\"a\\tb\"" => [("P", "a\\tb")];
        env_inline_comment: "KEY=value # this is a comment\nNUM=42 # the answer\n" => [("KEY", "value"), ("NUM", "42")];
        env_hash_without_space: "COLOR=#fff\nURL=http://h/#frag\n" => [("COLOR", "#fff"), ("URL", "http://h/#frag")];
        env_quoted_then_comment: "KEY=\"a # b\" # real comment\nS='x' #c\n" => [("KEY", "a # b"), ("S", "x")];
        env_quoted_hash_kept: "KEY='a # b'" => [("KEY", "a # b")];
        env_no_equals: "NOEQUALS\nKEY=value\n" => [("KEY", "value")];
        env_empty_value: "KEY=\n" => [("KEY", "")];
        env_empty_quotes: "A=\"\"\nB=''\n" => [("A", ""), ("B", "")];
        env_value_with_equals: "URL=postgres://host:5432/db?opt=val\n" => [("URL", "postgres://host:5432/db?opt=val")];
        env_whitespace: "  KEY  =  value  \n" => [("KEY", "value")];
        env_short_values: "A=x\nB=y\n" => [("A", "x"), ("B", "y")];
        env_crlf: "A=1\r\nB=2\r\n" => [("A", "1"), ("B", "2")];
        env_bom: "\u{feff}A=1\n" => [("A", "1")];
        env_unterminated_quote: "A=\"abc\nB='x\n" => [("A", "\"abc"), ("B", "'x")];
        env_junk_after_quote: "A=\"x\"y" => [("A", "\"x\"y")];
        env_empty_key_ignored: "=value\n" => [];
        env_later_wins_order_kept: "A=1\nA=2\n" => [("A", "1"), ("A", "2")];
        env_export_only_word: "export\nexporter=1\n" => [("exporter", "1")];
        env_unicode: "NAME=直播 # c\n" => [("NAME", "直播")];
    }

    #[test]
    fn env_wins_over_dotenv() {
        let dotenv = parse_dotenv(
            "PROXY_RTMP_SERVER=1936\nPROXY_HTTP_SERVER=8080\nPROXY_REDIS_DB=2\nPROXY_REDIS_DB=5\nPROXY_WORKERS=3\n",
        );
        let process = |k: &str| match k {
            "PROXY_RTMP_SERVER" => Some("1937".to_owned()),
            // Present but empty: hides .env, then means default.
            "PROXY_WORKERS" => Some(String::new()),
            _ => None,
        };
        let get = layered(&process, dotenv);
        let c = Config::from_lookup(&get, 6).unwrap();
        assert_eq!(c.rtmp_server.port(), 1937);
        assert_eq!(c.http_server.port(), 8080);
        assert_eq!(c.redis.db, 5, "the last .env line wins");
        assert_eq!(c.workers, 6);
    }

    #[test]
    fn help_lists_groups() {
        let h = help_text();
        for g in ["Listeners:", "Redis:", "Lifecycle:", "Register API auth:"] {
            assert!(h.contains(g), "{g}");
        }
        assert!(h.contains("PROXY_RTMP_SERVER") && h.contains("default 11935"));
    }
}
