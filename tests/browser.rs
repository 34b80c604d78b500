//! The login cards (paste flow and device flow), the status card and a
//! query table in a real browser (headless Chromium), in pages that imitate
//! JupyterLab's light and dark themes: the sign-in link is what a click at
//! its centre hits and points at the right address, the QR code has a real
//! size, the device code is large, the table shows 20 rows with numbers on
//! the right and NULL set apart, the text has contrast in both themes,
//! nothing is fetched. Screenshots go to `target/screenshots/` for people
//! to look at.
//!
//! Nothing is skipped: without Chromium this fails (`scripts/test` installs it).

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
const code = card.querySelector('[aria-label="sign-in code"]');
if (code) {
  const r = code.getBoundingClientRect();
  Object.assign(out, { codeText: code.textContent, codeFontPx: parseFloat(getComputedStyle(code).fontSize),
    codeHeight: r.height, codeWidth: r.width, codeContrast: textContrast(code) });
}
const data = card.querySelector('tbody td') ? card.querySelector('tbody').closest('table') : null;
if (data && data.querySelector('thead')) {
  out.tableRows = data.querySelectorAll('tbody tr').length;
  out.headers = [...data.querySelectorAll('thead th')].map(th => th.innerText.replace(/\s+/g, ' ').trim());
  out.firstRow = [...data.querySelectorAll('tbody tr:first-child td')].map(td => {
    const span = td.querySelector('span');
    return { text: td.innerText, align: getComputedStyle(td).textAlign,
      italic: span ? getComputedStyle(span).fontStyle === 'italic' : false,
      title: td.querySelector('[title]') ? td.querySelector('[title]').getAttribute('title') : null };
  });
  out.cellsByRow = [...data.querySelectorAll('tbody tr')].map(tr => [...tr.querySelectorAll('td')].map(td => {
    const span = td.querySelector('span');
    return { text: td.innerText, italic: span ? getComputedStyle(span).fontStyle === 'italic' : false,
      title: td.querySelector('[title]') ? td.querySelector('[title]').getAttribute('title') : null };
  }));
  out.tableWidth = data.getBoundingClientRect().width;
}
const qr = card.querySelector('img[src^="data:image/svg+xml"]');
if (qr) {
  const r = qr.getBoundingClientRect();
  // An <img> with a text alternative has the role img.
  Object.assign(out, { qrWidth: r.width, qrHeight: r.height, qrLabel: qr.alt, qrRole: qr.getAttribute('role') || (qr.alt ? 'img' : 'none') });
}
out.textContrast = Math.min(...[card, ...card.querySelectorAll('th,td,li,strong')].map(textContrast));
out.cardWidth = card.getBoundingClientRect().width;
out.text = card.innerText;
document.getElementById('results').textContent = JSON.stringify(out);
"#;

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
    let mut child = Command::new(support::tools::chromium())
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

/// The device flow's card: the code large enough to read at a glance, the
/// button to the verification page clickable, the QR code, the time left.
#[test]
fn the_device_card_shows_a_large_code_and_a_clickable_link() {
    let fake = FakeCarto::start();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let login = CartoAuth::oauth()
        .device_flow(true)
        .open_browser(false)
        .endpoints(fake.endpoints())
        .cache_filepath(dir.path().join("token_oauth.json"))
        .begin()
        .expect("begin a device login");
    let code = login.user_code().expect("a device code");
    let html = login.to_html();
    for (theme, found) in render("device-card", &html) {
        assert_eq!(
            found["codeText"].as_str(),
            Some(code.as_str()),
            "{theme}: {found}"
        );
        assert!(
            number(&found, "codeFontPx") >= 28.0,
            "{theme}: a small code: {found}"
        );
        assert!(number(&found, "codeContrast") >= 4.5, "{theme}: {found}");
        assert_eq!(
            found["href"].as_str(),
            Some(login.authorize_url()),
            "{theme}"
        );
        assert_eq!(
            found["hit"], true,
            "{theme}: the link's centre is covered: {found}"
        );
        assert_eq!(found["linkText"], "Open the sign-in page", "{theme}");
        assert!(number(&found, "linkContrast") >= 4.5, "{theme}: {found}");
        assert!(number(&found, "qrWidth") >= 150.0, "{theme}: {found}");
        assert!(number(&found, "textContrast") >= 4.5, "{theme}: {found}");
        assert_eq!(found["resources"], Value::Array(vec![]), "{theme}");
        let text = found["text"].as_str().unwrap_or_default();
        assert!(
            text.contains("The code expires in") && text.contains("login.wait()?"),
            "{theme}: {text}"
        );
    }
}

/// A query result as a table: 20 of 30 rows and how many more, types under
/// the names, numbers on the right, NULL set apart from the text "null",
/// everything escaped, long values shortened with the full text on hover.
#[test]
fn a_query_result_renders_as_a_readable_table() {
    let fake = FakeCarto::start();
    let _sql = support::sql_api::install(&fake);
    let token = fake.mint_token(&support::jwt::Subject::user(support::USER_ANA), 3600);
    let auth = CartoAuth::from_token(token, fake.api_base_url());
    let places = auth
        .sql_query(
            "carto_dw",
            "SELECT name, adm0name AS country, pop_max, ST_ASTEXT(geom) AS wkt FROM \
             `carto-demo-data.demo_tables.populated_places` ORDER BY pop_max DESC LIMIT 30",
        )
        .expect("a query");
    for (theme, found) in render("places-table", &places.to_html()) {
        assert_eq!(found["tableRows"], 20, "{theme}: {found}");
        assert_eq!(
            found["headers"],
            serde_json::json!([
                "name string",
                "country string",
                "pop_max number",
                "wkt string"
            ]),
            "{theme}"
        );
        let first = &found["firstRow"];
        assert_eq!(first[2]["text"], "38000000", "{theme}");
        assert_eq!(first[2]["align"], "right", "{theme}: numbers on the right");
        assert_eq!(first[0]["align"], "left", "{theme}");
        assert!(number(&found, "textContrast") >= 4.5, "{theme}: {found}");
        let text = found["text"].as_str().unwrap_or_default();
        assert!(
            text.contains("30 rows × 4 columns") && text.contains("10 more rows"),
            "{theme}: {text}"
        );
        assert_eq!(found["resources"], Value::Array(vec![]), "{theme}");
    }

    let types = auth
        .sql_query("carto_dw", support::sql_api::ALL_TYPES)
        .expect("a query");
    for (theme, found) in render("types-table", &types.to_html()) {
        let rows = found["cellsByRow"].as_array().cloned().unwrap_or_default();
        // Row 2: the text "null" (name) beside a NULL (population).
        assert_eq!(rows[1][1]["text"], "null", "{theme}");
        assert_eq!(rows[1][1]["italic"], false, "{theme}");
        assert_eq!(rows[1][2]["text"], "NULL", "{theme}");
        assert_eq!(rows[1][2]["italic"], true, "{theme}: NULL is set apart");
        // Row 3: escaped, shown as text.
        assert_eq!(rows[2][1]["text"], "Zürich \"quoted\" <b>&</b>", "{theme}");
        assert_eq!(found["scripts"], 0);
    }

    // A long value (a GeoJSON geometry, say) is shortened, the whole of it
    // on hover.
    let geojson = format!(
        r#"{{"type":"LineString","coordinates":[{}]}}"#,
        (0..40)
            .map(|i| format!("[{i}.5,{i}.25]"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let echoed = auth
        .sql_query_with(
            "carto_dw",
            support::sql_api::ECHO_PARAMETERS,
            serde_json::json!({ "geojson": geojson }),
        )
        .expect("a query");
    for (theme, found) in render("long-value-table", &echoed.to_html()) {
        let rows = found["cellsByRow"].as_array().cloned().unwrap_or_default();
        let cell = &rows[0][2];
        let shown = cell["text"].as_str().unwrap_or_default();
        let title = cell["title"].as_str().unwrap_or_default();
        assert!(
            shown.ends_with('…') && shown.chars().count() == 80,
            "{theme}: {cell}"
        );
        assert_eq!(title, geojson, "{theme}: the whole value on hover");
    }

    #[cfg(feature = "carto-dw")]
    {
        let bq = support::bigquery::FakeBigQuery::start_for(&fake);
        let dw = auth
            .get_carto_dw_client()
            .expect("a DW client")
            .bigquery_url(&bq.base)
            .expect("the fake's URL");
        let result = dw.query(support::bigquery::ALL_TYPES_SQL).expect("a query");
        for (theme, found) in render("bigquery-table", &result.to_html()) {
            assert_eq!(found["tableRows"], 5, "{theme}");
            let headers = found["headers"].as_array().cloned().unwrap_or_default();
            assert!(
                headers.iter().any(|h| h == "record_array ARRAY<RECORD>"),
                "{theme}: {headers:?}"
            );
            assert!(number(&found, "textContrast") >= 4.5, "{theme}: {found}");
        }
    }
}
