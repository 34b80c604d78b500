//! The login card and the status card in a real browser (headless
//! Chromium), in pages that imitate JupyterLab's light and dark themes: the
//! sign-in link is what a click at its centre hits and points at the
//! authorize URL, the QR code has a real size, the text has contrast in both
//! themes, nothing is fetched. Screenshots go to `target/screenshots/` for
//! people to look at.
//!
//! Nothing is skipped: without Chromium this fails (`.ci/run` installs it).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use carto_auth::CartoAuth;
use serde_json::Value;
use support::FakeCarto;

/// JupyterLab's theme variables that the cards use, with the values of its
/// light and dark themes, and the page colours that go with them.
const THEMES: [(&str, &str); 2] = [
    (
        "light",
        "--jp-layout-color0:#fff;--jp-layout-color1:#fff;--jp-layout-color2:#eee;\
         --jp-content-font-color1:rgba(0,0,0,.87);--jp-border-color1:#bdbdbd;\
         --jp-warn-color0:#e65100;--jp-ui-font-family:system-ui,sans-serif;\
         --jp-code-font-family:monospace;background:#fff;color:rgba(0,0,0,.87)",
    ),
    (
        "dark",
        "--jp-layout-color0:#111;--jp-layout-color1:#212121;--jp-layout-color2:#424242;\
         --jp-content-font-color1:rgba(255,255,255,1);--jp-border-color1:#616161;\
         --jp-warn-color0:#ffb74d;--jp-ui-font-family:system-ui,sans-serif;\
         --jp-code-font-family:monospace;background:#111;color:rgba(255,255,255,1)",
    ),
];

/// Runs in the wrapping page only (the cards have no script): measures what
/// a person would check and writes it as JSON into `#results`.
const PROBE: &str = r#"
function rgba(s) { const m = s.match(/[\d.]+/g).map(Number); return [m[0], m[1], m[2], m.length > 3 ? m[3] : 1]; }
function over(fg, bg) { const a = fg[3]; return [0, 1, 2].map(i => fg[i] * a + bg[i] * (1 - a)).concat([1]); }
function lum(c) { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }; return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); }
function contrast(a, b) { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); }
function background(el) {
  for (let e = el; e; e = e.parentElement) { const c = rgba(getComputedStyle(e).backgroundColor); if (c[3] > 0) return c; }
  return [255, 255, 255, 1];
}
function textContrast(el) { const bg = background(el); return contrast(over(rgba(getComputedStyle(el).color), bg), bg); }
const card = document.getElementById('card').firstElementChild;
const out = { resources: performance.getEntriesByType('resource').map(r => r.name), scripts: card.querySelectorAll('script').length };
const link = card.querySelector('a');
if (link) {
  const r = link.getBoundingClientRect();
  const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  Object.assign(out, { href: link.href, target: link.target, rel: link.rel, linkText: link.textContent,
    linkWidth: r.width, linkHeight: r.height, hit: hit === link || link.contains(hit), linkContrast: textContrast(link) });
}
const svg = card.querySelector('svg');
if (svg) {
  const r = svg.getBoundingClientRect();
  Object.assign(out, { qrWidth: r.width, qrHeight: r.height, qrLabel: svg.getAttribute('aria-label'), qrRole: svg.getAttribute('role') });
}
out.textContrast = Math.min(...[card, ...card.querySelectorAll('th,td,li,strong')].map(textContrast));
out.cardWidth = card.getBoundingClientRect().width;
out.text = card.innerText;
document.getElementById('results').textContent = JSON.stringify(out);
"#;

fn chromium() -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("Chromium is not installed: run .ci/run, or apt-get install -y chromium")
        })
}

/// The card in a page themed like JupyterLab, with the probe after it.
fn page(card: &str, theme_style: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>card</title></head>\
         <body style=\"margin:0;padding:24px;{theme_style}\"><div id=\"card\">{card}</div>\
         <pre id=\"results\" style=\"display:none\"></pre><script>{PROBE}</script></body></html>"
    )
}

/// Runs headless Chromium on `file` with `args` (bounded), returning stdout.
fn run_chromium(file: &Path, args: &[String]) -> String {
    let profile = tempfile::tempdir().expect("a profile directory");
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
        ])
        .args([
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1000,760",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", file.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start Chromium");
    let mut stdout = child.stdout.take().expect("Chromium's stdout");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
        text
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(status) = child.try_wait().expect("wait for Chromium") {
            assert!(status.success(), "Chromium failed: {status}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("Chromium did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().unwrap_or_default()
}

/// Renders `card` in both themes: the probe's findings per theme, and a
/// screenshot of each.
fn render(name: &str, card: &str) -> Vec<(&'static str, Value)> {
    let dir = screenshots_dir();
    let work = tempfile::tempdir().expect("a temporary directory");
    let mut found = Vec::new();
    for (theme, style) in THEMES {
        let file = work.path().join(format!("{name}-{theme}.html"));
        std::fs::write(&file, page(card, style)).expect("write the page");
        let dom = run_chromium(&file, &["--dump-dom".to_string()]);
        let json = dom
            .split("<pre id=\"results\" style=\"display:none\">")
            .nth(1)
            .and_then(|rest| rest.split("</pre>").next())
            .unwrap_or_else(|| panic!("no results in the page: {dom}"));
        let json = json
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&");
        let results: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
        let shot = dir.join(format!("{name}-{theme}.png"));
        let _ = std::fs::remove_file(&shot);
        run_chromium(&file, &[format!("--screenshot={}", shot.display())]);
        let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
        assert!(
            size > 5_000,
            "{}: a screenshot of {size} bytes",
            shot.display()
        );
        found.push((theme, results));
    }
    found
}

fn screenshots_dir() -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map_or_else(|| PathBuf::from("target"), Path::to_path_buf);
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).expect("create target/screenshots");
    dir
}

fn number(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("no {key} in {v}"))
}

#[test]
fn the_cards_render_clickable_and_readable_in_light_and_dark_themes() {
    let fake = FakeCarto::start();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let cache = dir.path().join("token_oauth.json");
    let login = CartoAuth::oauth()
        .open_browser(false)
        .org("acme-sso")
        .endpoints(fake.endpoints())
        .cache_filepath(&cache)
        .begin()
        .expect("begin a login");
    let login_html = login.to_html();
    assert!(!login_html.contains("<script"));

    for (theme, found) in render("login-card", &login_html) {
        assert_eq!(
            found["href"].as_str(),
            Some(login.authorize_url()),
            "{theme}: {found}"
        );
        assert_eq!(
            found["hit"], true,
            "{theme}: the link's centre is covered: {found}"
        );
        assert_eq!(found["target"], "_blank", "{theme}");
        assert!(
            found["rel"]
                .as_str()
                .is_some_and(|r| r.contains("noopener")),
            "{theme}: {found}"
        );
        assert_eq!(found["linkText"], "Sign in to CARTO", "{theme}");
        assert!(
            number(&found, "linkWidth") >= 100.0 && number(&found, "linkHeight") >= 24.0,
            "{theme}: a small target: {found}"
        );
        assert!(number(&found, "linkContrast") >= 4.5, "{theme}: {found}");
        assert!(
            number(&found, "qrWidth") >= 150.0 && number(&found, "qrHeight") >= 150.0,
            "{theme}: {found}"
        );
        assert!(
            (number(&found, "qrWidth") - number(&found, "qrHeight")).abs() < 1.0,
            "{theme}: the QR code is square: {found}"
        );
        assert_eq!(found["qrRole"], "img", "{theme}");
        assert!(
            found["qrLabel"]
                .as_str()
                .is_some_and(|l| l.contains("QR code")),
            "{theme}"
        );
        assert!(
            number(&found, "textContrast") >= 4.5,
            "{theme}: low contrast: {found}"
        );
        assert_eq!(
            found["resources"],
            Value::Array(vec![]),
            "{theme}: the card fetched something"
        );
        assert_eq!(found["scripts"], 0);
        let text = found["text"].as_str().unwrap_or_default();
        assert!(
            text.contains("Organization: acme-sso") && text.contains("login.complete(\"...\")"),
            "{theme}: {text}"
        );
    }

    // Sign in, and show the session.
    let landed = fake.authorize(login.authorize_url());
    let auth = login.complete(&landed).expect("complete the login");
    let token = auth.get_access_token().expect("a token");
    let status_html = auth.to_html();
    assert!(!status_html.contains(&token));
    for (theme, found) in render("status-card", &status_html) {
        let text = found["text"].as_str().unwrap_or_default();
        assert!(
            text.contains(&fake.api_base_url()) && text.contains(&auth.masked_token()),
            "{theme}: {text}"
        );
        assert!(
            text.contains("expires in 2") && text.contains("acme-sso"),
            "{theme}: {text}"
        );
        assert!(
            text.contains(&cache.display().to_string()),
            "{theme}: {text}"
        );
        assert!(!text.contains(&token), "{theme}");
        assert!(
            number(&found, "textContrast") >= 4.5,
            "{theme}: low contrast: {found}"
        );
        assert!(number(&found, "cardWidth") <= 720.5, "{theme}: {found}");
        assert_eq!(found["resources"], Value::Array(vec![]), "{theme}");
    }
}
