//! The player pages (`players/`) served by the proxy's HTTP stream server,
//! the static-file rules (content types, index pages, 404s, no way out of the
//! folder), and a real browser playing through the proxy: headless Chromium
//! opens the shipped HTTP-FLV player against a node-media-server origin and
//! the HLS player against an nginx-rtmp origin, and the video's currentTime
//! must advance.
//!
//! The browser tests need what `scripts/install-players.sh` installs (it runs
//! from `scripts/install-peers.sh`): Debian's chromium, playwright-core in
//! `tests/browser/`, mpegts.js and hls.js in `players/vendor/`. Set
//! `SRS_PROXY_SCREENSHOTS=<dir>` to keep the screenshots (they are also
//! written to the test's temporary directory, removed when the test ends).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

// ---------------------------------------------------------------------------
// A copy of players/ with traps around it.

/// `<tmp>/www`: a copy of the repo's players/ (dot entries left out) plus a
/// few files of other types, a directory with an index page, and ways out:
/// `etc` → /etc, `leak.txt` → `<tmp>/secret.txt`, `up` → `<tmp>`.
struct Site {
    _tmp: TempDir,
    root: PathBuf,
    /// What `<tmp>/secret.txt` (outside the folder) holds.
    secret: String,
    /// What `www/docs/index.html` holds.
    docs_marker: String,
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display())) {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue; // players/.npm: the npm install, not served
        }
        let ty = entry.file_type().unwrap();
        if ty.is_dir() {
            copy_tree(&entry.path(), &to.join(&name));
        } else if ty.is_file() {
            fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

fn site() -> Site {
    let tmp = TempDir::new("players-site");
    let root = tmp.join("www");
    copy_tree(&players_dir(), &root);
    for page in ["index.html", "flv.html", "hls.html", "players.css", "players.js"] {
        assert!(root.join(page).is_file(), "players/{page} missing");
    }
    let nonce = format!("{:016x}", Rng::new(u64::from(std::process::id()) << 16 | 7).next_u64());
    let secret = format!("SRS-PROXY-SECRET-{nonce}");
    fs::write(tmp.join("secret.txt"), &secret).unwrap();
    let docs_marker = format!("docs-index-{nonce}");
    fs::create_dir_all(root.join("docs")).unwrap();
    fs::write(root.join("docs/index.html"), format!("<!doctype html><p>{docs_marker}</p>")).unwrap();
    fs::write(root.join("data.json"), "{\"ok\":true}").unwrap();
    fs::write(root.join("readme.txt"), "plain text").unwrap();
    std::os::unix::fs::symlink("/etc", root.join("etc")).unwrap();
    std::os::unix::fs::symlink(tmp.join("secret.txt"), root.join("leak.txt")).unwrap();
    std::os::unix::fs::symlink(tmp.path(), root.join("up")).unwrap();
    // The traps are real: through the file system they do lead out.
    assert_eq!(fs::read_to_string(root.join("leak.txt")).unwrap(), secret);
    assert_eq!(fs::read_to_string(root.join("up/secret.txt")).unwrap(), secret);
    assert!(fs::read_to_string(root.join("etc/passwd")).unwrap().contains("root:"));
    Site { _tmp: tmp, root, secret, docs_marker }
}

fn static_proxy(site: &Site) -> Proxy {
    Proxy::start(&[("PROXY_STATIC_FILES", &site.root.display().to_string())])
}

fn http_addr(proxy: &Proxy) -> String {
    format!("127.0.0.1:{}", proxy.http_server_port)
}

fn get(proxy: &Proxy, path: &str) -> HttpResponse {
    http("GET", &http_addr(proxy), path, &[], b"")
        .unwrap_or_else(|e| panic!("GET {path:?} on the HTTP server: {e}\n{}", proxy.log()))
}

// ---------------------------------------------------------------------------
// Static files.

#[test]
fn player_pages_are_served_with_their_content_types() {
    let site = site();
    let proxy = static_proxy(&site);
    let html = "text/html";
    // (path, Content-Type it must start with, text the body must hold)
    let table: Vec<(&str, &str, &str)> = vec![
        ("/", html, "flv.html"),
        ("/", html, "hls.html"),
        ("/index.html", html, "flv.html"),
        ("/index.html", html, "hls.html"),
        ("/flv.html", html, "vendor/mpegts.js"),
        ("/flv.html?url=/live/livestream.flv", html, "<video"),
        ("/flv.html?app=live&stream=livestream", html, "players.js"),
        ("/hls.html", html, "vendor/hls.min.js"),
        ("/hls.html?url=/live/livestream.m3u8", html, "<video"),
        ("/players.css", "text/css", "video"),
        ("/players.js", "text/javascript", "SrsPlayers"),
        ("/data.json", "application/json", "\"ok\""),
        ("/readme.txt", "text/plain", "plain text"),
        ("/docs/", html, site.docs_marker.as_str()),
        ("/docs/index.html", html, site.docs_marker.as_str()),
    ];
    for (path, ctype, needle) in &table {
        let r = get(&proxy, path);
        assert_eq!(r.status, 200, "GET {path}: {} {:?}", r.status, r.text());
        let got = r.header("content-type").unwrap_or("");
        assert!(got.starts_with(ctype), "GET {path}: Content-Type {got:?}, want {ctype}");
        assert!(r.text().contains(needle), "GET {path}: body lacks {needle:?}");
    }
    // A directory named without its slash: its index page, or a redirect to
    // the slashed name.
    let r = get(&proxy, "/docs");
    match r.status {
        200 => assert!(r.text().contains(&site.docs_marker), "GET /docs: {:?}", r.text()),
        301 | 302 | 307 | 308 => {
            let loc = r.header("location").unwrap_or("");
            assert!(loc.ends_with("/docs/"), "GET /docs redirects to {loc:?}");
        }
        s => panic!("GET /docs: {s} {:?}", r.text()),
    }
    // The pages load their libraries from the proxy itself, never a CDN.
    for page in ["/index.html", "/flv.html", "/hls.html"] {
        let body = get(&proxy, page).text();
        for bad in ["src=\"http:", "src=\"https:", "src=\"//", "href=\"//"] {
            assert!(!body.contains(bad), "{page} loads something from elsewhere ({bad})");
        }
    }
    // The libraries themselves, when scripts/install-players.sh has run.
    for lib in ["mpegts.js", "hls.min.js"] {
        if site.root.join("vendor").join(lib).exists() {
            let r = get(&proxy, &format!("/vendor/{lib}"));
            assert_eq!(r.status, 200, "GET /vendor/{lib}");
            let got = r.header("content-type").unwrap_or("");
            assert!(got.starts_with("text/javascript"), "/vendor/{lib}: Content-Type {got:?}");
            assert_eq!(r.body.len() as u64, fs::metadata(site.root.join("vendor").join(lib)).unwrap().len());
        }
    }
}

#[test]
fn missing_files_are_404() {
    let site = site();
    let proxy = static_proxy(&site);
    for path in
        ["/nope.html", "/vendor/nope.js", "/nodir/", "/nodir/x.css", "/docs/nope.html", "/index.html/x", "/favicon.ico"]
    {
        let r = get(&proxy, path);
        assert_eq!(r.status, 404, "GET {path}: {} {:?}", r.status, r.text());
    }
    // The server is still there and serving.
    assert_eq!(get(&proxy, "/index.html").status, 200);
}

#[test]
fn static_files_never_leave_the_folder() {
    let site = site();
    let proxy = static_proxy(&site);
    assert_eq!(get(&proxy, "/index.html").status, 200, "static files are off?");
    // (request target, whether closing the connection without an answer is
    // acceptable: only for targets with raw bytes a parser may reject)
    let table: &[(&str, bool)] = &[
        // `..` segments
        ("/../secret.txt", false),
        ("/../../../../../../etc/passwd", false),
        ("/vendor/../../secret.txt", false),
        ("/docs/../../secret.txt", false),
        ("/./../secret.txt", false),
        ("/docs/./../../secret.txt", false),
        ("/....//secret.txt", false),
        // percent-encoded dots and slashes
        ("/%2e%2e/secret.txt", false),
        ("/%2E%2E/secret.txt", false),
        ("/%2e%2E/%2E%2e/%2e%2e/etc/passwd", false),
        ("/.%2e/secret.txt", false),
        ("/%2e./secret.txt", false),
        ("/..%2fsecret.txt", false),
        ("/..%2Fsecret.txt", false),
        ("/%2e%2e%2fsecret.txt", false),
        ("/%2e%2e%2F%2e%2e%2F%2e%2e%2Fetc%2Fpasswd", false),
        ("/docs%2f..%2f..%2fsecret.txt", false),
        ("/%252e%252e/secret.txt", false),
        ("/%c0%ae%c0%ae/secret.txt", false),
        ("/%2e%2e", false),
        ("/%", false),
        ("/%zz/../secret.txt", false),
        // absolute-looking paths
        ("//etc/passwd", false),
        ("///etc/passwd", false),
        ("/%2fetc%2fpasswd", false),
        ("/%2Fetc/passwd", false),
        ("http://127.0.0.1/../secret.txt", true),
        // backslashes
        ("/..\\secret.txt", true),
        ("/..%5csecret.txt", false),
        ("/%5c..%5csecret.txt", false),
        ("/..%5C..%5Cetc%5Cpasswd", false),
        // NUL
        ("/index.html%00", false),
        ("/%00/../secret.txt", false),
        ("/../secret.txt%00.html", false),
        ("/\0../secret.txt", true),
        // symlinks out of the folder
        ("/etc/passwd", false),
        ("/etc/hostname", false),
        ("/etc/", false),
        ("/etc", false),
        ("/leak.txt", false),
        ("/up/secret.txt", false),
        ("/up/", false),
        ("/up", false),
        // the secret's own name, from the root
        ("/secret.txt", false),
    ];
    let mut failures = Vec::new();
    for (target, may_close) in table {
        match http("GET", &http_addr(&proxy), target, &[], b"") {
            Ok(r) => {
                let body = r.text();
                if body.contains(&site.secret) || body.contains("root:") {
                    failures.push(format!("{target:?}: {} LEAKED a file outside the folder: {body:?}", r.status));
                } else if ![400, 403, 404].contains(&r.status) {
                    failures.push(format!("{target:?}: status {} (want 404, 400 or 403)", r.status));
                }
            }
            Err(e) if *may_close => {
                eprintln!("{target:?}: connection closed without an answer ({e}): accepted");
            }
            Err(e) => failures.push(format!("{target:?}: no answer: {e}")),
        }
    }
    assert!(failures.is_empty(), "refusals that went wrong:\n{}\n{}", failures.join("\n"), proxy.log());
    // Nothing of that disturbed the server.
    assert_eq!(get(&proxy, "/index.html").status, 200);
}

// ---------------------------------------------------------------------------
// A real browser.

/// Where a screenshot goes: the test's temp dir (and a copy in
/// `$SRS_PROXY_SCREENSHOTS` when set).
fn keep_screenshot(path: &Path) {
    println!("screenshot: {}", path.display());
    if let Some(dir) = std::env::var_os("SRS_PROXY_SCREENSHOTS") {
        let dir = PathBuf::from(dir);
        let _ = fs::create_dir_all(&dir);
        let to = dir.join(path.file_name().unwrap());
        match fs::copy(path, &to) {
            Ok(_) => println!("screenshot kept: {}", to.display()),
            Err(e) => println!("could not keep the screenshot in {}: {e}", to.display()),
        }
    }
}

/// Runs the browser check of `page` (a path on the proxy's HTTP server) and
/// asserts the video played the 320x240 test clip.
fn assert_browser_plays(proxy: &Proxy, page: &str, timeout: Duration, shot: &Path) {
    let url = format!("http://127.0.0.1:{}{page}", proxy.http_server_port);
    let result = browser_check(&url, timeout, 2.0, Some(shot));
    if shot.exists() {
        keep_screenshot(shot);
    }
    let v = result.unwrap_or_else(|e| panic!("{e}\n--- proxy log ---\n{}", proxy.log()));
    println!("browser: {v}");
    assert_eq!(v["videoWidth"], 320, "{v}");
    assert_eq!(v["videoHeight"], 240, "{v}");
    assert!(v["currentTime"].as_f64().unwrap_or(0.0) > 2.0, "{v}");
}

#[test]
fn browser_plays_http_flv_through_the_proxy() {
    require_browser();
    let shots = TempDir::new("players-flv-shots");
    let nms = Nms::start();
    let proxy = Proxy::start(&[("PROXY_STATIC_FILES", &players_dir().display().to_string())]);
    let _hb = Heartbeat::start(&proxy.sys_api(), nms.origin().register_body());
    let stream = "players-flv";
    let _publish = ffmpeg_publish(&proxy.rtmp_url(stream));
    // The publish went through the proxy and reached the origin.
    let mut last = String::new();
    let landed = wait_until(Duration::from_secs(30), || match ffprobe(&nms.flv_url(stream), Duration::from_secs(8)) {
        Ok(out) => {
            is_test_clip(&out) || {
                last = out;
                false
            }
        }
        Err(e) => {
            last = e;
            false
        }
    });
    assert!(landed, "the publish never reached node-media-server: {last}\n{}", proxy.log());

    // The page comes from the proxy, and its relative `?url=` makes the
    // player fetch the FLV from the proxy too.
    assert_browser_plays(
        &proxy,
        &format!("/flv.html?url=/live/{stream}.flv"),
        Duration::from_secs(30),
        &shots.join("flv-through-proxy.png"),
    );
}

#[test]
fn browser_plays_hls_through_the_proxy() {
    require_browser();
    let shots = TempDir::new("players-hls-shots");
    let nginx = NginxRtmp::start_live_hls(1);
    let proxy = Proxy::start(&[("PROXY_STATIC_FILES", &players_dir().display().to_string())]);
    let _hb = Heartbeat::start(&proxy.sys_api(), nginx.origin().register_body());
    let stream = "players-hls";
    let _publish = ffmpeg_publish(&proxy.rtmp_url(stream));
    // nginx-rtmp has cut a few segments (the clip has a key frame every 2 s).
    let ready = wait_until(Duration::from_secs(30), || nginx.hls_segments(stream).len() >= 3);
    assert!(
        ready,
        "nginx-rtmp made no playlist with 3 segments for {stream}: {:?}\n{}",
        nginx.hls_segments(stream),
        proxy.log()
    );

    assert_browser_plays(
        &proxy,
        &format!("/hls.html?url=/live/{stream}.m3u8"),
        Duration::from_secs(40),
        &shots.join("hls-through-proxy.png"),
    );
}

#[test]
fn head_answers_the_same_head_without_a_body() {
    use std::io::{Read, Write};
    let site = site();
    let proxy = static_proxy(&site);
    let size = fs::metadata(site.root.join("index.html")).unwrap().len();
    let mut s = std::net::TcpStream::connect(loopback(proxy.http_server_port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"HEAD /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    let text = String::from_utf8_lossy(&got);
    let (head, rest) = text.split_once("\r\n\r\n").expect("a complete head");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_ascii_lowercase().contains(&format!("content-length: {size}")), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: text/html"), "{head}");
    assert_eq!(rest, "", "HEAD must not carry a body");
    // Other methods are refused with the methods that work.
    let r = http("POST", &loopback(proxy.http_server_port).to_string(), "/index.html", &[], b"x").unwrap();
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
}
