//! `srs-load`: the load generator of srs-proxy's benchmarks.
//!
//! One glommio executor per `--threads`, connections spread over them, one
//! reusable read buffer per connection, payload never copied on the read
//! path. Every mode prints one JSON object on stdout when it ends.
//!
//! ```text
//! srs-load publish  --url rtmp://h:p/app/stream [--streams N] [--bitrate 8000k] [--fps 30] --seconds S
//! srs-load play     --url rtmp://h:p/app/stream|http://h:p/app/stream.flv --clients M --seconds S
//! srs-load sessions --url rtmp://h:p/app/stream --rate R --seconds S
//! srs-load idle     --url rtmp://h:p/app/stream --clients K --hold S [--ready-file F]
//! srs-load copy     --listen h:p --to h:p
//! srs-load udp      --to h:p --echo-port P --sessions N --pps R --size B --seconds S [--http-api h:p --system-api h:p] [--ready-file F --go-file G]
//! ```

mod copy;
mod flv;
mod hist;
mod idle;
mod net;
mod play;
mod publish;
mod rtmp;
mod sessions;
mod udp;

use glommio::{LocalExecutorBuilder, Placement};
use std::collections::HashMap;
use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: srs-load <publish|play|sessions|idle> --url URL [options]

common:   --threads N (executors, default 1)  --pin (pin executor i to core i)
publish:  --url rtmp://h:p/app/stream --seconds S [--streams N] [--bitrate 8000k] [--fps 30] [--gop 2]
play:     --url rtmp://...|http://.../s.flv --clients M --seconds S [--streams N] [--warmup 2]
sessions: --url rtmp://... --rate R --seconds S [--timeout 10]
idle:     --url rtmp://... --clients K --hold S [--ready-file F] [--concurrency 64]
copy:     --listen H:P --to H:P [--seconds S]  (a bare glommio L4 relay, the runtime's floor)
udp:      --to H:P --echo-port P [--sessions 100] [--pps 50] [--size 1200] [--seconds 10]
          [--http-api H:P --system-api H:P --server NAME]  (WebRTC-shaped UDP through a relay;
          with the APIs each session is signalled through srs-proxy first)
          [--ready-file F --go-file G]  (write F when set up, start when G exists)
--streams N appends -i to the stream name (client i gets stream i mod N).
Durations are seconds, or end in ms/s/m. Rates take k/m suffixes.";

/// `--key value` options and `--flag`s after the subcommand.
pub struct Args {
    opts: HashMap<String, String>,
    flags: Vec<String>,
}

impl Args {
    fn parse(it: impl Iterator<Item = String>) -> Result<Args, String> {
        let mut opts = HashMap::new();
        let mut flags = Vec::new();
        let mut it = it.peekable();
        while let Some(a) = it.next() {
            let Some(k) = a.strip_prefix("--") else {
                return Err(format!("unexpected argument {a:?}"));
            };
            if let Some((k, v)) = k.split_once('=') {
                opts.insert(k.to_string(), v.to_string());
            } else if it.peek().is_some_and(|n| !n.starts_with("--")) {
                opts.insert(k.to_string(), it.next().unwrap_or_default());
            } else {
                flags.push(k.to_string());
            }
        }
        Ok(Args { opts, flags })
    }

    pub fn flag(&self, k: &str) -> bool {
        self.flags.iter().any(|f| f == k)
    }

    pub fn str(&self, k: &str) -> Result<String, String> {
        self.opts.get(k).cloned().ok_or_else(|| format!("--{k} is required"))
    }

    pub fn opt_str(&self, k: &str) -> Option<String> {
        self.opts.get(k).cloned()
    }

    /// A number with an optional k/m/g suffix (powers of 1000).
    pub fn num(&self, k: &str, default: Option<f64>) -> Result<f64, String> {
        let Some(v) = self.opts.get(k) else {
            return default.ok_or_else(|| format!("--{k} is required"));
        };
        let lower = v.to_ascii_lowercase();
        let (digits, mult) = match lower.as_bytes().last() {
            Some(b'k') => (&lower[..lower.len() - 1], 1e3),
            Some(b'm') => (&lower[..lower.len() - 1], 1e6),
            Some(b'g') => (&lower[..lower.len() - 1], 1e9),
            _ => (lower.as_str(), 1.0),
        };
        digits
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite() && *x >= 0.0)
            .map(|x| x * mult)
            .ok_or_else(|| format!("--{k} {v:?}: not a number"))
    }

    pub fn count(&self, k: &str, default: Option<usize>) -> Result<usize, String> {
        Ok(self.num(k, default.map(|d| d as f64))? as usize)
    }

    /// Seconds, or a number ending in ms, s or m.
    pub fn dur(&self, k: &str, default: Option<f64>) -> Result<Duration, String> {
        let Some(v) = self.opts.get(k) else {
            return default.map(Duration::from_secs_f64).ok_or_else(|| format!("--{k} is required"));
        };
        let (d, mult) = if let Some(x) = v.strip_suffix("ms") {
            (x, 1e-3)
        } else if let Some(x) = v.strip_suffix('s') {
            (x, 1.0)
        } else if let Some(x) = v.strip_suffix('m') {
            (x, 60.0)
        } else {
            (v.as_str(), 1.0)
        };
        d.parse::<f64>()
            .ok()
            .filter(|x| x.is_finite() && *x >= 0.0)
            .map(|x| Duration::from_secs_f64(x * mult))
            .ok_or_else(|| format!("--{k} {v:?}: not a duration"))
    }

    pub fn threads(&self) -> Result<usize, String> {
        Ok(self.count("threads", Some(1))?.max(1))
    }
}

/// Runs `make(i)` on `threads` glommio executors and returns their results
/// in order.
pub fn run_threads<T, G, F>(threads: usize, pin: bool, make: G) -> Result<Vec<T>, String>
where
    T: Send + 'static,
    G: Fn(usize) -> F + Send + Clone + 'static,
    F: Future<Output = T> + 'static,
{
    let cpus = core_affinity::get_core_ids().unwrap_or_default();
    let mut handles = Vec::with_capacity(threads);
    for i in 0..threads {
        let make = make.clone();
        let cpu = if pin && !cpus.is_empty() { Some(cpus[i % cpus.len()]) } else { None };
        let h = LocalExecutorBuilder::new(Placement::Unbound)
            .name(&format!("load{i}"))
            .io_memory(1 << 20)
            .ring_depth(1024)
            .spawn(move || async move {
                if let Some(c) = cpu {
                    core_affinity::set_for_current(c);
                }
                make(i).await
            })
            .map_err(|e| format!("cannot start executor {i}: {e}"))?;
        handles.push(h);
    }
    handles.into_iter().map(|h| h.join().map_err(|e| format!("executor failed: {e}"))).collect()
}

/// Keeps the first few distinct error messages.
pub fn note_error(samples: &mut Vec<String>, e: String) {
    if samples.len() < 5 && !samples.contains(&e) {
        samples.push(e);
    }
}

/// This process's user + system CPU time so far, from /proc/self/stat
/// (so a run can show the loader was not the bottleneck).
fn own_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields after the command: state is field 3, utime 14, stime 15.
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn main() -> ExitCode {
    let mut argv = std::env::args().skip(1);
    let Some(mode) = argv.next() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    if mode == "-h" || mode == "--help" {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let args = match Args::parse(argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("srs-load: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let res = match mode.as_str() {
        "publish" => publish::run(&args),
        "play" => play::run(&args),
        "sessions" => sessions::run(&args),
        "idle" => idle::run(&args),
        "copy" => copy::run(&args),
        "udp" => udp::run(&args),
        _ => Err(format!("unknown mode {mode:?}\n{USAGE}")),
    };
    match res {
        Ok(mut v) => {
            if let (Some(o), Some(cpu)) = (v.as_object_mut(), own_cpu_seconds()) {
                o.insert("loader_cpu_seconds".into(), cpu.into());
            }
            println!("{v}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("srs-load {mode}: {e}");
            ExitCode::FAILURE
        }
    }
}
