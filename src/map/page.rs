//! The map's HTML: a self-contained page (deck.gl and @deck.gl/carto from
//! a CDN or a mirror, the configuration as JSON, the script in `map.js`)
//! inside an `<iframe srcdoc>`, with a caption about its token. Pure
//! functions of their inputs. Feature `notebook`.

use serde_json::Value;

use crate::html::{CARD, MUTED, escape};

/// Where the scripts come from unless `Map::js_url` or
/// `CARTO_AUTH_JS_URL` says otherwise: a public npm CDN, in the layout
/// `{base}/{package}@{version}/{path}`.
pub const DEFAULT_JS_URL: &str = "https://cdn.jsdelivr.net/npm";

/// The scripts, in the order they must run: `@deck.gl/carto` extends
/// classes of `deck.gl` ("Class extends value undefined" otherwise), and
/// the MVT loader is what tiles are parsed with while workers are off.
pub(crate) const SCRIPTS: [(&str, &str, &str); 4] = [
    ("h3-js", "4.4.0", "dist/h3-js.umd.js"),
    ("deck.gl", "9.4.0", "dist.min.js"),
    ("@deck.gl/carto", "9.4.0", "dist.min.js"),
    ("@loaders.gl/mvt", "4.4.3", "dist/dist.min.js"),
];

/// CARTO's raster basemaps and their attribution.
const BASEMAP_HOSTS: [&str; 4] = ["a", "b", "c", "d"];
const ATTRIBUTION: &str = "© <a href=\"https://www.openstreetmap.org/copyright\" target=\"_blank\" \
    rel=\"noopener\">OpenStreetMap</a> contributors © <a href=\"https://carto.com/attributions\" \
    target=\"_blank\" rel=\"noopener\">CARTO</a>";

/// The map's script: read `map.js` for what it does.
const MAP_JS: &str = include_str!("map.js");

const PAGE_STYLE: &str = "html,body{margin:0;height:100%;overflow:hidden;background:transparent}\
    #carto-auth-map{position:absolute;inset:0}\
    #carto-auth-map-message{position:absolute;left:12px;top:12px;right:12px;z-index:2;\
    max-height:calc(100% - 24px);overflow:auto;box-sizing:border-box;padding:10px 12px;\
    border-radius:6px;border:1px solid #e0a040;background:#fff4e5;color:#3b2300;\
    font:13px/1.45 system-ui,sans-serif;white-space:pre-wrap}\
    #carto-auth-map-attribution{position:absolute;right:0;bottom:0;z-index:1;padding:1px 6px;\
    background:rgba(255,255,255,.75);color:#333;font:11px/1.4 system-ui,sans-serif}\
    #carto-auth-map-attribution a{color:inherit}";

/// The script addresses under `base`.
pub(crate) fn script_urls(base: &str) -> Vec<String> {
    let base = base.trim_end_matches('/');
    SCRIPTS
        .iter()
        .map(|(package, version, path)| format!("{base}/{package}@{version}/{path}"))
        .collect()
}

/// What the page says when its scripts did not load.
pub(crate) fn scripts_error(base: &str) -> String {
    let packages: Vec<String> = SCRIPTS
        .iter()
        .map(|(package, version, _)| format!("{package}@{version}"))
        .collect();
    format!(
        "The map's scripts could not be loaded from {base}. Without internet access (or with \
         that site blocked), serve the npm packages {} from a server of your own, in the layout \
         {{base}}/{{package}}@{{version}}/{{path}}, and point the map at it: set \
         CARTO_AUTH_JS_URL to its address, or call .js_url(\"...\") on the map.",
        packages.join(", ")
    )
}

/// The basemap tiles (`{z}/{x}/{y}` templates, one per host).
pub(crate) fn basemap_tiles(style: &str) -> Vec<String> {
    BASEMAP_HOSTS
        .iter()
        .map(|h| format!("https://{h}.basemaps.cartocdn.com/{style}/{{z}}/{{x}}/{{y}}@2x.png"))
        .collect()
}

/// JSON that can sit inside a `<script>` element: no `<` (so no
/// `</script>` nor `<!--`), no `>` or `&`, and no U+2028/U+2029, each
/// written as a JSON escape that parses back to itself.
pub(crate) fn script_json(value: &Value) -> String {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// The page that goes into the iframe: styles, the map's container and
/// message box, the configuration, the scripts in order (each saying when
/// it failed to load), then the map's script.
pub(crate) fn document(config: &Value, js_base: &str, attribution: bool) -> String {
    let mut html = String::from(
        "<!doctype html><html data-map-state=\"loading\"><head><meta charset=\"utf-8\">\
         <title>CARTO map</title>",
    );
    html.push_str(&format!("<style>{PAGE_STYLE}</style>"));
    html.push_str(
        "<script>window.cartoAuthFailedScripts=[];\
         function cartoAuthScriptFailed(s){window.cartoAuthFailedScripts.push(s.getAttribute('src'))}\
         </script></head><body>",
    );
    html.push_str("<div id=\"carto-auth-map\"></div>");
    html.push_str("<div id=\"carto-auth-map-message\" role=\"alert\" hidden></div>");
    if attribution {
        html.push_str(&format!(
            "<div id=\"carto-auth-map-attribution\">{ATTRIBUTION}</div>"
        ));
    }
    html.push_str(&format!(
        "<script type=\"application/json\" id=\"carto-auth-map-config\">{}</script>",
        script_json(config)
    ));
    for url in script_urls(js_base) {
        html.push_str(&format!(
            "<script src=\"{}\" onerror=\"cartoAuthScriptFailed(this)\"></script>",
            escape(&url)
        ));
    }
    html.push_str(&format!("<script>{MAP_JS}</script></body></html>"));
    html
}

/// The cell's HTML: the page in an `<iframe srcdoc>` (pydeck's way; it
/// keeps the page's scripts in order in JupyterLab, which re-creates each
/// `<script>` of a cell's HTML), and a caption about the token under it.
///
/// The iframe's `color-scheme` is the page's own (light): JupyterLab's dark
/// themes set `color-scheme: dark` on the body, and a browser paints an
/// opaque white backdrop behind a transparent page whose scheme differs
/// from its iframe's, hiding the notebook's background around the layers.
pub(crate) fn cell(document: &str, height: u32, caption: &str) -> String {
    format!(
        "<div class=\"carto-auth-map\" style=\"max-width:100%\">\
         <iframe srcdoc=\"{}\" title=\"CARTO map\" \
         style=\"width:100%;height:{height}px;border:0;display:block;color-scheme:light\"></iframe>\
         <div style=\"{MUTED}\">{}</div></div>",
        escape(document),
        escape(caption)
    )
}

/// A map that could not be made, said where the map would have been.
pub(crate) fn error_card(message: &str) -> String {
    format!(
        "<div role=\"alert\" style=\"{CARD}\"><div style=\"font-weight:600;margin:0 0 4px 0\">\
         The CARTO map could not be made</div><div>{}</div></div>",
        escape(message)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_in_a_script_cannot_close_it_and_reads_back_the_same() {
        let value = json!({"q": "SELECT '</script><script>alert(1)</script>' <!-- & \u{2028}"});
        let text = script_json(&value);
        assert!(!text.contains('<') && !text.contains('>') && !text.contains('&'));
        assert!(!text.contains('\u{2028}'));
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), value);
    }

    #[test]
    fn scripts_follow_the_npm_cdn_layout_in_their_order() {
        assert_eq!(
            script_urls("http://127.0.0.1:8/npm/"),
            [
                "http://127.0.0.1:8/npm/h3-js@4.4.0/dist/h3-js.umd.js",
                "http://127.0.0.1:8/npm/deck.gl@9.4.0/dist.min.js",
                "http://127.0.0.1:8/npm/@deck.gl/carto@9.4.0/dist.min.js",
                "http://127.0.0.1:8/npm/@loaders.gl/mvt@4.4.3/dist/dist.min.js",
            ]
        );
        let help = scripts_error("https://mirror.example/npm");
        assert!(help.contains("CARTO_AUTH_JS_URL") && help.contains(".js_url("));
        assert!(help.contains("deck.gl@9.4.0") && help.contains("https://mirror.example/npm"));
    }

    #[test]
    fn the_whole_page_is_escaped_into_the_srcdoc() {
        let config = json!({"layers": [{"options": {"sqlQuery": "SELECT \"a\" & '<b>'"}}]});
        let page = document(&config, "https://x/npm", false);
        let html = cell(&page, 400, "caption <i>");
        let srcdoc = html
            .split("srcdoc=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap();
        assert!(!srcdoc.contains('<') && !srcdoc.contains('>'));
        assert!(html.contains("caption &lt;i&gt;"));
        assert!(html.contains("height:400px"));
    }
}
