//! The container files: the Dockerfile, the compose file and the Kubernetes
//! manifests are read and checked against what the proxy expects (its
//! variables parse, its ports are published with the right protocol, the
//! system API stays internal, the termination grace covers the drain). Then,
//! when a container engine is installed and can run containers on this
//! machine, the image is built and run and its API answers; where it
//! cannot, the test says why in its output.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use srs_proxy::config::{parse_go_duration, Config};
use yaml_rust2::{Yaml, YamlLoader};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load(path: &Path) -> Vec<Yaml> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()))
}

fn s<'a>(y: &'a Yaml, what: &str) -> &'a str {
    y.as_str().unwrap_or_else(|| panic!("{what}: not a string: {y:?}"))
}

/// A mapping with YAML's merge key (`<<: *anchor`) applied.
fn merged(y: &Yaml) -> BTreeMap<String, Yaml> {
    let mut out = BTreeMap::new();
    let Some(h) = y.as_hash() else { return out };
    if let Some(base) = h.get(&Yaml::String("<<".into())) {
        out.extend(merged(base));
    }
    for (k, v) in h {
        if let Some(k) = k.as_str().filter(|k| *k != "<<") {
            out.insert(k.to_string(), v.clone());
        }
    }
    out
}

/// The proxy's configuration from a set of PROXY_* values: each must parse.
fn config_from(env: &BTreeMap<String, String>, what: &str) -> Config {
    Config::from_lookup(&|k| env.get(k).cloned(), 2).unwrap_or_else(|e| panic!("{what}: {e}"))
}

fn secs(go: &str) -> f64 {
    parse_go_duration(go).unwrap() as f64 / 1e9
}

#[test]
fn kubernetes_manifests_fit_the_proxy() {
    let docs = load(&repo().join("deploy/k8s/srs-proxy.yaml"));
    let kind = |k: &str, name: &str| {
        docs.iter()
            .find(|d| d["kind"].as_str() == Some(k) && d["metadata"]["name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("no {k} {name} in srs-proxy.yaml"))
    };
    let dep = kind("Deployment", "srs-proxy");
    let pod = &dep["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(s(&c["name"], "container name"), "srs-proxy");

    let env: BTreeMap<String, String> = c["env"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|e| (s(&e["name"], "env name").to_string(), s(&e["value"], "env value").to_string()))
        .collect();
    let cfg = config_from(&env, "the Deployment's env");
    let grace = cfg.grace_quit_timeout.as_secs_f64();
    let force = cfg.force_quit_timeout.as_secs_f64();
    let term = pod["terminationGracePeriodSeconds"].as_i64().expect("terminationGracePeriodSeconds") as f64;
    assert!(grace <= force && force < term, "drain {grace}s <= force {force}s < termination grace {term}s");

    let ports: BTreeMap<String, (i64, String)> = c["ports"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|p| {
            (
                s(&p["name"], "port name").to_string(),
                (p["containerPort"].as_i64().unwrap(), s(&p["protocol"], "protocol").to_string()),
            )
        })
        .collect();
    let want = [
        ("rtmp", cfg.rtmp_server.port(), "TCP"),
        ("http", cfg.http_server.port(), "TCP"),
        ("http-api", cfg.http_api.port(), "TCP"),
        ("system-api", cfg.system_api.port(), "TCP"),
        ("webrtc", cfg.webrtc_server.port(), "UDP"),
        ("srt", cfg.srt_server.port(), "UDP"),
    ];
    for (name, port, proto) in want {
        assert_eq!(ports.get(name), Some(&(i64::from(port), proto.to_string())), "container port {name}");
    }
    for probe in ["readinessProbe", "livenessProbe"] {
        let g = &c[probe]["httpGet"];
        assert_eq!(s(&g["path"], probe), "/api/v1/versions", "{probe}");
        assert_eq!(s(&g["port"], probe), "system-api", "{probe}");
    }
    let sc = &c["securityContext"];
    assert_eq!(s(&sc["seccompProfile"]["type"], "seccomp"), "Unconfined", "io_uring needs it");
    assert!(sc["capabilities"]["add"].as_vec().unwrap().iter().any(|c| c.as_str() == Some("IPC_LOCK")));

    let public = kind("Service", "srs-proxy");
    let protos: BTreeSet<&str> =
        public["spec"]["ports"].as_vec().unwrap().iter().map(|p| s(&p["protocol"], "protocol")).collect();
    assert_eq!(protos, BTreeSet::from(["TCP", "UDP"]), "media on TCP and UDP");
    for p in public["spec"]["ports"].as_vec().unwrap() {
        let target = s(&p["targetPort"], "targetPort");
        assert_ne!(target, "system-api", "the public Service must not expose the system API");
        assert_eq!(ports[target].1, s(&p["protocol"], "protocol"), "{target}: protocol of the Service port");
    }
    let system = kind("Service", "srs-proxy-system");
    assert_eq!(s(&system["spec"]["type"], "type"), "ClusterIP", "the system API stays inside the cluster");
    assert_eq!(s(&system["spec"]["ports"][0]["targetPort"], "targetPort"), "system-api");

    let redis = load(&repo().join("deploy/k8s/redis.yaml"));
    let host = &env["PROXY_REDIS_HOST"];
    assert!(
        redis.iter().any(|d| d["kind"].as_str() == Some("Service") && d["metadata"]["name"].as_str() == Some(host)),
        "PROXY_REDIS_HOST={host} names no Service in redis.yaml"
    );
}

#[test]
fn the_compose_file_fits_the_proxy_and_its_origins() {
    let dir = repo().join("deploy/compose");
    let doc = &load(&dir.join("compose.yaml"))[0];
    let services = merged(&doc["services"]);
    for name in ["proxy", "redis", "origin1", "origin2", "origin3"] {
        assert!(services.contains_key(name), "no service {name}");
    }
    let proxy = merged(&services["proxy"]);
    let env: BTreeMap<String, String> = merged(&proxy["environment"])
        .into_iter()
        .map(|(k, v)| (k, v.as_str().map(String::from).unwrap_or_else(|| format!("{v:?}"))))
        .collect();
    let cfg = config_from(&env, "the proxy service's environment");
    assert_eq!(env["PROXY_REDIS_HOST"], "redis");
    let published: Vec<&str> = proxy["ports"].as_vec().unwrap().iter().map(|p| s(p, "port")).collect();
    for (port, proto) in [
        (cfg.rtmp_server.port(), "tcp"),
        (cfg.http_server.port(), "tcp"),
        (cfg.http_api.port(), "tcp"),
        (cfg.webrtc_server.port(), "udp"),
        (cfg.srt_server.port(), "udp"),
    ] {
        let want = format!("{port}:{port}/{proto}");
        assert!(published.contains(&want.as_str()), "{want} not published: {published:?}");
    }
    assert!(
        !published.iter().any(|p| p.starts_with(&format!("{}:", cfg.system_api.port()))),
        "the system API must not be published"
    );
    let stop = secs(s(&proxy["stop_grace_period"], "stop_grace_period"));
    assert!(stop > cfg.force_quit_timeout.as_secs_f64(), "stop_grace_period {stop}s covers the drain");

    let conf = std::fs::read_to_string(dir.join("origin.conf")).unwrap();
    let url = format!("http://proxy:{}/api/v1/srs/register", cfg.system_api.port());
    assert!(conf.contains(&format!("url             {url};")), "origin.conf heartbeat url is {url}");
    assert!(conf.contains("ports           on;"), "origins must report their ports");
    for n in 1..=3 {
        let o = merged(&services[&format!("origin{n}")]);
        assert!(o.contains_key("image"), "origin{n} has no image (merge key)");
        assert_eq!(s(&merged(&o["environment"])["SRS_HEARTBEAT_DEVICE_ID"], "device id"), format!("origin{n}"));
    }
}

#[test]
fn the_dockerfile_builds_a_small_runtime_that_publishes_every_port() {
    let text = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let froms = text.lines().filter(|l| l.starts_with("FROM ")).count();
    assert!(froms >= 2, "multi-stage: {froms} stages");
    let last = text.lines().rfind(|l| l.starts_with("FROM ")).unwrap();
    assert!(last.contains("RUNTIME_IMAGE") && last.ends_with("AS runtime"), "the last stage is the runtime: {last}");
    let expose: BTreeSet<&str> =
        text.lines().filter_map(|l| l.strip_prefix("EXPOSE ")).flat_map(str::split_whitespace).collect();
    let cfg = config_from(&BTreeMap::new(), "defaults");
    for (port, proto) in [
        (cfg.rtmp_server.port(), "tcp"),
        (cfg.http_server.port(), "tcp"),
        (cfg.http_api.port(), "tcp"),
        (cfg.system_api.port(), "tcp"),
        (cfg.webrtc_server.port(), "udp"),
        (cfg.srt_server.port(), "udp"),
    ] {
        assert!(expose.contains(format!("{port}/{proto}").as_str()), "EXPOSE lacks {port}/{proto}");
    }
    assert!(text.contains(r#"ENTRYPOINT ["/usr/local/bin/srs-proxy"]"#));
    for note in ["seccomp", "memlock", "io_uring_setup"] {
        assert!(text.contains(note), "the Dockerfile must say what io_uring needs ({note})");
    }
}

fn engine() -> Option<&'static str> {
    ["podman", "docker"]
        .into_iter()
        .find(|e| Command::new(e).arg("--version").output().is_ok_and(|o| o.status.success()))
}

/// Can this machine run a container at all? A static binary in an image
/// built from scratch (no registry needed) is run once.
fn can_run(engine: &str) -> Result<(), String> {
    let dir = common::TempDir::new("engine");
    std::fs::write(dir.join("true.c"), "int main(void){return 0;}").unwrap();
    let cc = Command::new("cc").args(["-static", "-o"]).arg(dir.join("true")).arg(dir.join("true.c")).output();
    if !cc.is_ok_and(|o| o.status.success()) {
        return Err("no static C compiler to make a registry-free test image".into());
    }
    std::fs::write(dir.join("Containerfile"), "FROM scratch\nCOPY true /true\nCMD [\"/true\"]\n").unwrap();
    let tag = format!("localhost/srs-proxy-engine-check:{}", std::process::id());
    let out = |o: std::process::Output| {
        format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
    };
    let b =
        Command::new(engine).args(["build", "-q", "-t", &tag]).arg(dir.path()).output().map_err(|e| e.to_string())?;
    if !b.status.success() {
        return Err(format!("{engine} build failed: {}", out(b)));
    }
    let r =
        Command::new(engine).args(["run", "--rm", "--network", "none", &tag]).output().map_err(|e| e.to_string())?;
    let _ = Command::new(engine).args(["rmi", "-f", &tag]).output();
    if r.status.success() {
        Ok(())
    } else {
        Err(format!("{engine} run failed: {}", out(r).trim()))
    }
}

#[test]
fn the_image_runs_where_an_engine_can_run_containers() {
    let Some(engine) = engine() else {
        println!("containers: no container engine (podman, docker) installed: manifests checked only");
        return;
    };
    if let Err(why) = can_run(engine) {
        println!("containers: {engine} cannot run containers on this machine ({why}): manifests checked only");
        return;
    }
    // The engine runs containers: build the real image (its base images come
    // from the registry it is configured with) and ask its API.
    let tag = format!("localhost/srs-proxy-test:{}", std::process::id());
    let b = Command::new("timeout").args(["900", engine, "build", "-t", &tag]).arg(repo()).output().unwrap();
    if !b.status.success() {
        let err = String::from_utf8_lossy(&b.stderr);
        println!(
            "containers: {engine} runs containers but cannot build the image here (no base image registry?): {}",
            err.trim()
        );
        return;
    }
    let port = common::free_port();
    let name = format!("srs-proxy-test-{}", std::process::id());
    let run = Command::new(engine)
        .args(["run", "-d", "--rm", "--name", &name, "--network", "host", "--security-opt", "seccomp=unconfined"])
        .args(["--ulimit", "memlock=-1:-1", "-e", &format!("PROXY_SYSTEM_API=127.0.0.1:{port}")])
        .arg(&tag)
        .output()
        .unwrap();
    assert!(run.status.success(), "{engine} run: {}", String::from_utf8_lossy(&run.stderr));
    let up = common::wait_until(Duration::from_secs(30), || {
        common::http("GET", &format!("127.0.0.1:{port}"), "/api/v1/versions", &[], b"").is_ok_and(|r| r.status == 200)
    });
    let logs =
        Command::new(engine).args(["logs", &name]).output().map(|o| String::from_utf8_lossy(&o.stderr).into_owned());
    let _ = Command::new(engine).args(["stop", "-t", "25", &name]).output();
    let _ = Command::new(engine).args(["rmi", "-f", &tag]).output();
    assert!(up, "the containerised proxy's system API never answered: {logs:?}");
}
