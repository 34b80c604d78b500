//! Maps in a real browser: the HTML of `Map::to_html` in a page themed
//! like JupyterLab (light, dark), loaded by headless Chromium with deck.gl
//! and @deck.gl/carto served locally (installed by `scripts/test`), drawing
//! from the fake Maps API. A probe in the page waits for the map's own
//! report, then reads the canvas: the layers' colours at the features'
//! places and the theme's background elsewhere. Every instantiation, data
//! and tile request carried the scoped token. The failures are said in the
//! map: a Maps API SQL error, an expired token, and scripts that cannot be
//! loaded.
//! Screenshots of the canvas go to `target/screenshots/`.
//!
//! Nothing is skipped: without Chromium or the npm packages this fails.

mod support;

use carto_auth::{Basemap, CartoAuth, ColorBy, Layer, Map, json};
use serde_json::Value;
use support::FakeCarto;
use support::map_site::{MapSite, Sample, assert_colors};
use support::maps_api::{self, FakeMaps, H3_CELLS};

const RED: [u8; 3] = [230, 20, 20];
const BLUE: [u8; 3] = [20, 20, 230];
const ORANGE: [u8; 3] = [240, 160, 0];
/// `ColorBy::range` at 1000 of 0..2000, from [255, 255, 204] to [20, 120, 20].
const H3_GREEN: [u8; 3] = [138, 188, 112];

/// What to read, and the colour each place must have (`None`: the
/// theme's background).
fn samples() -> Vec<Sample> {
    let mut s = vec![
        Sample::new("Madrid", -3.7038, 40.4168, Some(RED)),
        Sample::new("Barcelona", 2.1734, 41.3851, Some(BLUE)),
        Sample::new("Valencia area", -0.7, 39.45, Some(ORANGE)),
        Sample::new("between the cities", -1.5, 41.0, None),
        Sample::new("the sea", 1.2, 39.6, None),
    ];
    // The cells away from Madrid's point, which is drawn over them.
    for (cell, lon, lat) in &H3_CELLS[1..] {
        s.push(Sample::new(
            format!("H3 cell {cell}"),
            *lon,
            *lat,
            Some(H3_GREEN),
        ));
    }
    s
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
        let found = site.load(&format!("map-{theme}"), &html, background, &samples());
        assert_colors(theme, &found, &samples(), rgb);
        assert_eq!(found["rootState"], "ready", "{theme}");
        // The tooltip's columns, for the point under the pointer.
        assert_eq!(
            found["samples"][0]["tooltip"],
            "name: Madrid\nkind: capital"
        );
        assert_eq!(
            found["samples"][3]["tooltip"],
            Value::Null,
            "{theme}: nothing there"
        );
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

/// A saved map opened after its token expired says so, and what to do.
#[test]
fn a_map_whose_token_expired_says_to_run_the_cell_again() {
    let carto = FakeCarto::start();
    let maps = FakeMaps::start(&carto);
    let site = MapSite::start();
    let (auth, _) = session(&carto, &maps);
    let html = drawn_map(&auth, &site).to_html().expect("a map");
    maps.expire_scoped_tokens();
    let found = site.load("map-token-expired", &html, "#ffffff", &[]);
    assert_eq!(found["state"], "error", "{found}");
    let text = found["frameText"].as_str().unwrap_or_default();
    let until = maps.scoped_tokens()[0].body["expiration_date"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        text.contains("401")
            && text.contains(&format!(
                "The token in this map was refused. It was valid until {until}"
            ))
            && text.contains("run the cell again"),
        "{text}"
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
    let found = site.load("map-sql-error", &bad_sql, "#ffffff", &[]);
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
    let found = site.load("map-no-scripts", &offline, "#111111", &[]);
    assert_eq!(found["state"], "error", "{found}");
    let text = found["frameText"].as_str().unwrap_or_default();
    assert!(
        text.contains("could not be loaded")
            && text.contains("CARTO_AUTH_JS_URL")
            && text.contains("deck.gl@9.4.0/dist.min.js"),
        "{text}"
    );
}
