//! A loopback web site for map pages in a real browser: the npm packages
//! installed by `scripts/test` in the npm CDN layout
//! (`/npm/{package}@{version}/{path}`, the version checked against the
//! installed one), pages the test puts there, and `POST /results`, where a
//! page's probe sends what it measured; the test waits for that event.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::Recorded;

pub struct MapSite {
    pub base: String,
    server: Arc<tiny_http::Server>,
    pages: Arc<Mutex<HashMap<String, String>>>,
    results: Mutex<Receiver<String>>,
    /// Every request for a script, as `/npm/...` paths.
    scripts: Arc<Mutex<Vec<String>>>,
}

impl MapSite {
    pub fn start() -> MapSite {
        let modules = super::tools::map_js();
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind the map site"));
        let port = server.server_addr().to_ip().unwrap().port();
        let pages: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let scripts: Arc<Mutex<Vec<String>>> = Arc::default();
        let (tx, rx) = channel();
        let (srv, p, s) = (server.clone(), pages.clone(), scripts.clone());
        std::thread::spawn(move || {
            for mut request in srv.incoming_requests() {
                let (modules, p, s, tx) = (modules.clone(), p.clone(), s.clone(), tx.clone());
                std::thread::spawn(move || {
                    let r = Recorded::from_request(&mut request);
                    let (status, body, content_type) = answer(&r, &modules, &p, &s, &tx);
                    let mut response =
                        tiny_http::Response::from_data(body).with_status_code(status);
                    response.add_header(
                        tiny_http::Header::from_bytes("Content-Type", content_type).unwrap(),
                    );
                    let _ = request.respond(response);
                });
            }
        });
        MapSite {
            base: format!("http://127.0.0.1:{port}"),
            server,
            pages,
            results: Mutex::new(rx),
            scripts,
        }
    }

    /// The scripts' base, for `Map::js_url`.
    pub fn js_url(&self) -> String {
        format!("{}/npm", self.base)
    }

    /// Serves `html` at `/page/{name}.html`; returns its address.
    pub fn put_page(&self, name: &str, html: String) -> String {
        let path = format!("/page/{name}.html");
        self.pages.lock().unwrap().insert(path.clone(), html);
        format!("{}{path}", self.base)
    }

    /// The next results a probe sent, or `None` after `timeout` (a bound,
    /// not a wait: results come as an event).
    pub fn next_results(&self, timeout: Duration) -> Option<String> {
        self.results.lock().unwrap().recv_timeout(timeout).ok()
    }

    pub fn scripts(&self) -> Vec<String> {
        self.scripts.lock().unwrap().clone()
    }
}

impl Drop for MapSite {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

fn answer(
    r: &Recorded,
    modules: &std::path::Path,
    pages: &Mutex<HashMap<String, String>>,
    scripts: &Mutex<Vec<String>>,
    results: &Sender<String>,
) -> (u16, Vec<u8>, &'static str) {
    if r.method == "POST" && r.path == "/results" {
        let _ = results.send(r.body.clone());
        return (204, Vec::new(), "text/plain");
    }
    if let Some(page) = pages.lock().unwrap().get(&r.path) {
        return (200, page.clone().into_bytes(), "text/html; charset=utf-8");
    }
    if let Some(rest) = r.path.strip_prefix("/npm/") {
        scripts.lock().unwrap().push(r.path.clone());
        return match npm_file(modules, rest) {
            Ok(path) => match std::fs::read(&path) {
                Ok(body) => (200, body, "application/javascript"),
                Err(e) => (
                    404,
                    format!("{}: {e}", path.display()).into_bytes(),
                    "text/plain",
                ),
            },
            Err(why) => (404, why.into_bytes(), "text/plain"),
        };
    }
    (404, b"not found".to_vec(), "text/plain")
}

/// `{package}@{version}/{path}` in `node_modules`, when that version is
/// the one installed.
fn npm_file(modules: &std::path::Path, rest: &str) -> Result<PathBuf, String> {
    let at = rest[1..].find('@').map(|i| i + 1).ok_or("no @version")?;
    let package = &rest[..at];
    let (version, path) = rest[at + 1..].split_once('/').ok_or("no path")?;
    let dir = modules.join(package);
    let manifest: serde_json::Value = std::fs::read_to_string(dir.join("package.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .ok_or_else(|| format!("{package} is not installed in {}", modules.display()))?;
    if manifest["version"] != version {
        return Err(format!(
            "{package}@{version} was asked for, {} is installed",
            manifest["version"]
        ));
    }
    if path.split('/').any(|p| p == "..") {
        return Err("no ..".into());
    }
    Ok(dir.join(path))
}
