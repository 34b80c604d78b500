//! A loopback web site for map pages in a real browser: the npm packages
//! installed by `scripts/test` in the npm CDN layout
//! (`/npm/{package}@{version}/{path}`, the version checked against the
//! installed one), pages the test puts there, and `POST /results`, where a
//! page's probe sends what it measured; the test waits for that event.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use super::Recorded;
use super::headless::Browser;

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

/// A place to read on the map, and the colour it must have there (`None`:
/// the page's background).
pub struct Sample {
    pub name: String,
    pub lon: f64,
    pub lat: f64,
    pub want: Option<[u8; 3]>,
}

impl Sample {
    pub fn new(name: impl Into<String>, lon: f64, lat: f64, want: Option<[u8; 3]>) -> Sample {
        Sample {
            name: name.into(),
            lon,
            lat,
            want,
        }
    }
}

/// A bound on a map's drawing, not a wait: the page reports when it is done.
pub const DRAWN_WITHIN: Duration = Duration::from_secs(120);

/// Receives the map's report and measures the canvas; sends it all to
/// `/results`. `SAMPLES` (places to read) and `BACKGROUND` are set before.
const PROBE: &str = r#"
let reported = false;
window.addEventListener('message', (event) => {
  const data = event.data || {};
  if (!data.cartoAuthMap || reported) return;
  reported = true;
  const frame = document.querySelector('iframe');
  const doc = frame.contentDocument;
  const out = { state: data.cartoAuthMap, message: data.message,
    frameText: doc ? doc.body.innerText : null,
    rootState: doc ? doc.documentElement.getAttribute('data-map-state') : null };
  const map = frame.contentWindow.cartoAuthDeck;
  const canvas = doc && doc.querySelector('canvas');
  if (data.cartoAuthMap === 'ready' && map && canvas) {
    map.redraw(true);
    const [w, h] = [canvas.width, canvas.height];
    const shot = document.createElement('canvas');
    shot.width = w; shot.height = h;
    const ctx = shot.getContext('2d');
    ctx.fillStyle = BACKGROUND;
    ctx.fillRect(0, 0, w, h);
    ctx.drawImage(canvas, 0, 0);
    const scale = w / canvas.clientWidth;
    const viewport = map.getViewports()[0];
    out.samples = SAMPLES.map(s => {
      const [x, y] = viewport.project([s.lon, s.lat]);
      const px = ctx.getImageData(Math.round(x * scale), Math.round(y * scale), 1, 1).data;
      // What the pointer there would show.
      const info = map.pickObject({ x, y, radius: 1 });
      const tip = info && map.props.getTooltip ? map.props.getTooltip(info) : null;
      return { name: s.name, x, y, rgb: [px[0], px[1], px[2]], tooltip: tip ? tip.text : null };
    });
    out.size = [w, h];
    // For a failure's message: each tile layer's tiles, loaded or not.
    out.tiles = map.layerManager.getLayers().filter(l => l.state && l.state.tileset).map(l =>
      [l.id, l.isLoaded, l.state.tileset.selectedTiles.map(t => [t.id, t.isLoaded, !!t.content])]);
    out.viewport = [viewport.width, viewport.height, viewport.zoom];
    out.png = shot.toDataURL('image/png');
  }
  fetch('/results', { method: 'POST', body: JSON.stringify(out) });
});
"#;

/// `cell` (a map's HTML) in a page of `background` colour, with the probe.
fn page(cell: &str, background: &str, samples: &[Sample]) -> String {
    let samples: Vec<Value> = samples
        .iter()
        .map(|s| json!({"name": s.name, "lon": s.lon, "lat": s.lat}))
        .collect();
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>map</title><script>\
         const SAMPLES = {}; const BACKGROUND = '{background}';{PROBE}</script></head>\
         <body style=\"margin:0;padding:16px;background:{background}\">\
         <div style=\"width:800px\">{cell}</div></body></html>",
        Value::Array(samples)
    )
}

/// `target/screenshots/`, for people to look at.
pub fn screenshots_dir() -> PathBuf {
    // Set for integration tests only (the examples share this support).
    let target = option_env!("CARGO_TARGET_TMPDIR")
        .and_then(|tmp| Path::new(tmp).parent())
        .map_or_else(|| PathBuf::from("target"), Path::to_path_buf);
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).expect("create target/screenshots");
    dir
}

impl MapSite {
    /// Loads `cell` in headless Chromium, in a page of `background` colour
    /// (CSS hex), and returns the probe's findings once the map reported;
    /// the canvas goes to `target/screenshots/{name}.png`.
    pub fn load(&self, name: &str, cell: &str, background: &str, samples: &[Sample]) -> Value {
        let url = self.put_page(name, page(cell, background, samples));
        let browser = Browser::open(&url);
        let Some(results) = self.next_results(DRAWN_WITHIN) else {
            panic!(
                "{name}: the page reported nothing within {DRAWN_WITHIN:?}; Chromium's log:\n{}",
                browser.log()
            );
        };
        drop(browser);
        let results: Value = serde_json::from_str(&results).expect("the probe's JSON");
        if let Some(png) = results["png"].as_str() {
            let data = png.trim_start_matches("data:image/png;base64,");
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data)
                .expect("a PNG");
            std::fs::write(screenshots_dir().join(format!("{name}.png")), bytes).expect("save");
        }
        results
    }
}

/// Each sample has its colour (within 4 per channel), the background
/// being `background`.
pub fn assert_colors(what: &str, found: &Value, samples: &[Sample], background: [u8; 3]) {
    assert_eq!(found["state"], "ready", "{what}: {}", found["message"]);
    let got_all = found["samples"].as_array().cloned().unwrap_or_default();
    assert_eq!(got_all.len(), samples.len(), "{what}: {found}");
    for (sample, got) in samples.iter().zip(&got_all) {
        let got: [u8; 3] = serde_json::from_value(got["rgb"].clone()).unwrap();
        let want = sample.want.unwrap_or(background);
        assert!(
            got.iter().zip(want).all(|(x, y)| x.abs_diff(y) <= 4),
            "{what}: {} is {got:?}, not {want:?} ({}; tiles {}; viewport {})",
            sample.name,
            found["samples"],
            found["tiles"],
            found["viewport"]
        );
    }
}
