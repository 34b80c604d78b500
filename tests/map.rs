//! Maps against the fake Maps API (tests/support/maps_api.rs): the token a
//! map's page carries is one scoped to the map's sources, asked for with
//! the body CARTO expects, and never the session's own; a refusal says so
//! and names the opt-in; the opt-in says when the embedded token expires;
//! no secret reaches an error, a `Debug` or a log line.

mod support;

use std::sync::{Mutex, OnceLock};

use carto_auth::{Basemap, CartoAuth, ColorBy, Error, Layer, Map, json};
use support::FakeCarto;
use support::maps_api::{self, FakeMaps};

/// Every log line of this test binary (a capturing logger at trace level).
fn logged() -> &'static Mutex<Vec<String>> {
    static LINES: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    LINES.get_or_init(Mutex::default)
}

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        logged().lock().unwrap().push(record.args().to_string());
    }
    fn flush(&self) {}
}

fn capture_logs() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        log::set_logger(&Capture).unwrap();
        log::set_max_level(log::LevelFilter::Trace);
    });
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A session whose API is the fake Maps API, and its token.
fn session(carto: &FakeCarto, maps: &FakeMaps) -> (CartoAuth, String) {
    let token = carto.mint_token(&support::jwt::Subject::user(support::USER_ANA), 3600);
    (CartoAuth::from_token(token.clone(), &maps.base), token)
}

fn places_layer() -> Layer {
    Layer::vector_query(maps_api::CONNECTION, maps_api::PLACES_SQL)
        .query_parameters(json!({"skip": "none"}))
        .fill_color([230, 20, 20])
        .point_radius(8.0)
        .tooltip(["name"])
}

fn h3_layer() -> Layer {
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
}

fn map(auth: &CartoAuth) -> Map {
    auth.map()
        .basemap(Basemap::None)
        .layer(places_layer())
        .layer(h3_layer())
}

#[test]
fn a_map_carries_a_token_scoped_to_its_sources_never_the_sessions() {
    capture_logs();
    let carto = FakeCarto::start();
    let maps = FakeMaps::start(&carto);
    let (auth, session_token) = session(&carto, &maps);
    let before = now_unix();
    let html = map(&auth).to_html().expect("a map");
    let after = now_unix();

    let scoped = maps.scoped_tokens();
    assert_eq!(scoped.len(), 1, "one token request");
    let token = &scoped[0];
    assert_eq!(
        token.body["grants"],
        json!([
            {"connection_name": "carto_dw", "source": maps_api::PLACES_SQL},
            {"connection_name": "carto_dw", "source": maps_api::H3_SQL},
        ])
    );
    assert_eq!(token.body["allowed_apis"], json!(["maps"]));
    assert_eq!(token.body["referers"], json!([]));
    let date = token.body["expiration_date"].as_str().unwrap();
    assert!(
        date.len() == 20 && date.ends_with('Z'),
        "ISO 8601 UTC to the second: {date}"
    );
    assert!(
        (before + 86_400..=after + 86_400).contains(&token.expires),
        "24 h from now: {date}"
    );
    let request = maps
        .requests()
        .into_iter()
        .find(|r| r.path == "/v3/tokens")
        .unwrap();
    assert_eq!(request.bearer(), Some(session_token.as_str()));
    assert!(
        request
            .content_type()
            .is_some_and(|t| t.starts_with("application/json"))
    );

    assert!(
        html.contains(&token.token),
        "the scoped token is in the page"
    );
    assert!(
        !html.contains(&session_token),
        "the session's token is not in the page"
    );
    assert!(html.contains(date), "the caption says until when: {html}");
    assert!(html.contains("<iframe srcdoc=\""));

    // Nothing the crate logged or shows in Debug holds either token.
    let debug = format!("{:?}", map(&auth));
    for secret in [&token.token, &session_token] {
        assert!(!debug.contains(secret.as_str()), "{debug}");
        for line in logged().lock().unwrap().iter() {
            assert!(!line.contains(secret.as_str()), "logged: {line}");
        }
    }
    assert!(
        logged()
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("created a map token for 2 source(s)")),
        "the logger heard the crate"
    );
}

#[test]
fn a_refused_token_request_says_so_and_names_the_opt_in() {
    let carto = FakeCarto::start();
    let maps = FakeMaps::start(&carto);
    let (auth, session_token) = session(&carto, &maps);
    maps.refuse_tokens(403, "Forbidden: the role may not create API Access Tokens");
    let err = map(&auth).to_html().unwrap_err();
    assert!(
        matches!(err, Error::MapTokenRefused { status: 403, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("refused to create a token scoped to this map")
            && text.contains(".embed_session_token(true)")
            && text.contains("may not create API Access Tokens"),
        "{text}"
    );
    assert!(!text.contains(&session_token) && !format!("{err:?}").contains(&session_token));
    assert!(maps.scoped_tokens().is_empty());

    // The opt-in draws with the session's own token, and says until when.
    let html = map(&auth)
        .embed_session_token(true)
        .to_html()
        .expect("a map");
    assert!(html.contains(&session_token));
    assert!(
        html.contains("embeds your session&#39;s own CARTO token")
            && html.contains("expires in ")
            && html.contains("(at 20")
            && html.contains("Z)."),
        "{html}"
    );
}

#[test]
fn a_request_the_fake_would_refuse_is_an_error_naming_the_endpoint() {
    let carto = FakeCarto::start();
    let maps = FakeMaps::start(&carto);
    // A token the fake never issued: the token request is a 401.
    let auth = CartoAuth::from_token("not-a-token-of-the-fake-0123456789", &maps.base);
    let err = map(&auth).to_html().unwrap_err();
    assert!(
        matches!(err, Error::MapTokenRefused { status: 401, .. }),
        "{err:?}"
    );
    // A server error is the endpoint's, with its hint.
    maps.refuse_tokens(500, "internal");
    let (auth, _) = session(&carto, &maps);
    let err = map(&auth).to_html().unwrap_err().to_string();
    assert!(
        err.contains("API Access Tokens endpoint")
            && err.contains("HTTP 500")
            && err.contains(".embed_session_token(true)"),
        "{err}"
    );
}

/// The fake itself checks what CARTO checks: a scoped token reads only
/// the sources it grants, the instantiation needs `v=3.4` and `client`,
/// and a browser's preflight is answered.
#[test]
fn the_fake_maps_api_checks_grants_and_parameters() {
    let carto = FakeCarto::start();
    let maps = FakeMaps::start(&carto);
    let (auth, _) = session(&carto, &maps);
    auth.map()
        .basemap(Basemap::None)
        .layer(places_layer())
        .to_html()
        .expect("a map");
    let bearer = format!("Bearer {}", maps.scoped_tokens()[0].token);
    let get = |query: &[(&str, &str)]| {
        let url =
            url::Url::parse_with_params(&format!("{}/v3/maps/carto_dw/query", maps.base), query)
                .unwrap();
        support::http_request_with("GET", url.as_str(), &[("Authorization", &bearer)])
    };
    let ok = [
        ("v", "3.4"),
        ("client", "deck-gl-carto"),
        ("q", maps_api::PLACES_SQL),
        ("spatialDataType", "geo"),
        ("queryParameters", r#"{"skip":"none"}"#),
    ];
    let (status, _, body) = get(&ok);
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(answer["tilejson"]["url"][0].is_string(), "{answer}");
    assert_eq!(get(&ok[1..]).0, 400, "v=3.4 is required");
    let other = [
        ("v", "3.4"),
        ("client", "deck-gl-carto"),
        ("q", maps_api::H3_SQL),
        ("spatialDataType", "h3"),
        ("aggregationExp", maps_api::H3_AGGREGATION),
    ];
    assert_eq!(get(&other).0, 403, "no grant for this source");
    let (status, headers, _) = support::http_request_with(
        "OPTIONS",
        &format!("{}/v3/maps/carto_dw/query", maps.base),
        &[
            ("Origin", "null"),
            ("Access-Control-Request-Headers", "authorization"),
        ],
    );
    assert_eq!(status, 204);
    assert_eq!(
        support::header(&headers, "access-control-allow-origin").as_deref(),
        Some("*")
    );
}
