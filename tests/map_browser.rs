//! Maps in a real browser: the HTML of `Map::to_html` in a page themed
//! like JupyterLab (light, dark), loaded by headless Chromium with deck.gl
//! and @deck.gl/carto served locally (installed by `scripts/test`), drawing
//! from the fake Maps API. A probe in the page waits for the map's own
//! report, then reads the canvas: the layers' colours at the features'
//! places and the theme's background elsewhere. Every instantiation, data
//! and tile request carried the scoped token. The failures are said in the
//! map: a Maps API SQL error, and scripts that cannot be loaded.
//! Screenshots of the canvas go to `target/screenshots/`.
//!
//! Nothing is skipped: without Chromium or the npm packages this fails.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use carto_auth::{Basemap, CartoAuth, ColorBy, Layer, Map, json};
use serde_json::Value;
use support::FakeCarto;
use support::headless::Browser;
use support::map_site::MapSite;
use support::maps_api::{self, FakeMaps, H3_CELLS};

/// A bound on a map's drawing, not a wait: the page reports when it is done.
const DRAWN_WITHIN: Duration = Duration::from_secs(120);

const RED: [u8; 3] = [230, 20, 20];
const BLUE: [u8; 3] = [20, 20, 230];
const ORANGE: [u8; 3] = [240, 160, 0];
/// `ColorBy::range` at 1000 of 0..2000, from [255, 255, 204] to [20, 120, 20].
const H3_GREEN: [u8; 3] = [138, 188, 112];

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
      return { name: s.name, x, y, rgb: [px[0], px[1], px[2]] };
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

/// What to read, and the colour each place must have (`None`: the
/// theme's background).
fn samples() -> Vec<(String, f64, f64, Option<[u8; 3]>)> {
    let mut s = vec![
        ("Madrid".to_string(), -3.7038, 40.4168, Some(RED)),
        ("Barcelona".into(), 2.1734, 41.3851, Some(BLUE)),
        ("Valencia area".into(), -0.7, 39.45, Some(ORANGE)),
        ("between the cities".into(), -1.5, 41.0, None),
        ("the sea".into(), 1.2, 39.6, None),
    ];
    // The cells away from Madrid's point, which is drawn over them.
    for (cell, lon, lat) in &H3_CELLS[1..] {
        s.push((format!("H3 cell {cell}"), *lon, *lat, Some(H3_GREEN)));
    }
    s
}

fn page(cell: &str, background: &str) -> String {
    let samples: Vec<Value> = samples()
        .iter()
        .map(|(name, lon, lat, _)| json!({"name": name, "lon": lon, "lat": lat}))
        .collect();
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>map</title><script>\
         const SAMPLES = {}; const BACKGROUND = '{background}';{PROBE}</script></head>\
         <body style=\"margin:0;padding:16px;background:{background}\">\
         <div style=\"width:800px\">{cell}</div></body></html>",
        Value::Array(samples)
    )
}

fn screenshots_dir() -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map_or_else(|| PathBuf::from("target"), Path::to_path_buf);
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).expect("create target/screenshots");
    dir
}

/// Loads `cell` in a page of `background` colour; the probe's findings.
fn load(site: &MapSite, name: &str, cell: &str, background: &str) -> Value {
    let url = site.put_page(name, page(cell, background));
    let browser = Browser::open(&url);
    let Some(results) = site.next_results(DRAWN_WITHIN) else {
        panic!(
            "{name}: the page reported nothing within {DRAWN_WITHIN:?}; Chromium's log:\n{}",
            browser
                .log()
                .lines()
                .filter(|l| l.contains("CONSOLE"))
                .collect::<Vec<_>>()
                .join("\n")
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

fn session(carto: &FakeCarto, maps: &FakeMaps) -> (CartoAuth, String) {
    let token = carto.mint_token(&support::jwt::Subject::user(support::USER_ANA), 3600);
    (CartoAuth::from_token(token.clone(), &maps.base), token)
}

fn drawn_map(auth: &CartoAuth, site: &MapSite) -> Map {
    auth.map()
        .basemap(Basemap::None)
        .js_url(site.js_url())
        .layer(
            Layer::h3_query(
                maps_api::CONNECTION,
                maps_api::H3_SQL,
                maps_api::H3_AGGREGATION,
            )
            .fill_color_by(ColorBy::range(
                "population",
                0.0,
                2000.0,
                [255, 255, 204],
                [20, 120, 20],
            ))
            .line_width(0.0),
        )
        .layer(
            Layer::vector_query(maps_api::CONNECTION, maps_api::PLACES_SQL)
                .query_parameters(json!({"skip": "none"}))
                .fill_color_by(ColorBy::category(
                    "kind",
                    [("capital", RED), ("city", BLUE), ("area", ORANGE)],
                    [128, 128, 128],
                ))
                .line_width(0.0)
                .point_radius(9.0)
                .tooltip(["name", "kind"]),
        )
}

fn close(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= 4)
}

#[test]
fn a_map_draws_its_layers_where_the_data_is_in_light_and_dark_pages() {
    let carto = FakeCarto::start();
    let maps = FakeMaps::start(&carto);
    let site = MapSite::start();
    let (auth, session_token) = session(&carto, &maps);
    for (theme, background, rgb) in [
        ("light", "#ffffff", [255, 255, 255]),
        ("dark", "#111111", [17, 17, 17]),
    ] {
        let html = drawn_map(&auth, &site).to_html().expect("a map");
        assert!(!html.contains(&session_token));
        let scoped = maps.scoped_tokens().last().unwrap().token.clone();
        let found = load(&site, &format!("map-{theme}"), &html, background);
        assert_eq!(found["state"], "ready", "{theme}: {}", found["message"]);
        assert_eq!(found["rootState"], "ready", "{theme}");
        for ((name, _, _, want), got) in samples().iter().zip(found["samples"].as_array().unwrap())
        {
            let got: [u8; 3] = serde_json::from_value(got["rgb"].clone()).unwrap();
            let want = want.unwrap_or(rgb);
            assert!(
                close(got, want),
                "{theme}: {name} is {got:?}, not {want:?} ({}; tiles {}; viewport {})",
                found["samples"],
                found["tiles"],
                found["viewport"]
            );
        }
        // Every request to the Maps API (the preflights aside) carried the
        // scoped token, and there were instantiations, TileJSONs and tiles.
        let api: Vec<_> = maps
            .requests()
            .into_iter()
            .filter(|r| r.method != "OPTIONS" && r.path.starts_with("/v3/maps/"))
            .collect();
        for r in &api {
            assert_ne!(
                r.bearer(),
                Some(session_token.as_str()),
                "{theme}: {}",
                r.path
            );
        }
        let with_scoped = |prefix: &str| {
            api.iter()
                .filter(|r| r.path.starts_with(prefix) && r.bearer() == Some(scoped.as_str()))
                .count()
        };
        assert_eq!(
            with_scoped("/v3/maps/carto_dw/query"),
            2,
            "{theme}: two instantiations"
        );
        assert_eq!(with_scoped("/v3/maps/data/"), 2, "{theme}: two TileJSONs");
        assert!(with_scoped("/v3/maps/tiles/") >= 2, "{theme}: tiles");
        let instantiation = api
            .iter()
            .find(|r| {
                r.query_value("q") == Some(maps_api::PLACES_SQL)
                    && r.bearer() == Some(scoped.as_str())
            })
            .unwrap();
        assert_eq!(instantiation.query_value("v"), Some("3.4"));
        assert_eq!(instantiation.query_value("client"), Some("deck-gl-carto"));
        assert!(
            maps.requests().iter().any(|r| r.method == "OPTIONS"),
            "{theme}: the browser sent a preflight"
        );
    }
    assert!(
        site.scripts()
            .iter()
            .any(|s| s == "/npm/@deck.gl/carto@9.4.0/dist.min.js"),
        "{:?}",
        site.scripts()
    );
}

#[test]
fn a_maps_api_error_and_unreachable_scripts_are_said_in_the_map() {
    let carto = FakeCarto::start();
    let maps = FakeMaps::start(&carto);
    let site = MapSite::start();
    let (auth, _) = session(&carto, &maps);

    let bad_sql = auth
        .map()
        .basemap(Basemap::None)
        .js_url(site.js_url())
        .layer(Layer::vector_query(maps_api::CONNECTION, maps_api::BAD_SQL))
        .to_html()
        .expect("a map");
    let found = load(&site, "map-sql-error", &bad_sql, "#ffffff");
    assert_eq!(found["state"], "error", "{found}");
    let text = found["frameText"].as_str().unwrap_or_default();
    assert!(
        text.contains("The map could not be drawn") && text.contains(maps_api::SYNTAX_ERROR),
        "{text}"
    );

    let offline = auth
        .map()
        .basemap(Basemap::None)
        .js_url(support::closed_port_url())
        .layer(Layer::vector_query(
            maps_api::CONNECTION,
            maps_api::PLACES_SQL,
        ))
        .to_html()
        .expect("a map");
    let found = load(&site, "map-no-scripts", &offline, "#111111");
    assert_eq!(found["state"], "error", "{found}");
    let text = found["frameText"].as_str().unwrap_or_default();
    assert!(
        text.contains("could not be loaded")
            && text.contains("CARTO_AUTH_JS_URL")
            && text.contains("deck.gl@9.4.0/dist.min.js"),
        "{text}"
    );
}
