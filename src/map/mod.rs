//! Maps: CARTO layers drawn by deck.gl in a notebook cell, with a token
//! scoped to the map in the page instead of the session's own. Feature
//! `notebook`.
//!
//! The parts: [`layer`] (what is drawn), [`style`] (how it looks), [`scoped`] (the
//! token the page carries), [`page`] (the HTML and its script); this file
//! holds the builder and puts them together.

mod layer;
mod page;
mod scoped;
mod style;

use std::time::Duration;

use serde_json::{Value, json};

use crate::auth::CartoAuth;
use crate::background::run;
use crate::clock::{NO_EXPIRY, describe_expiry, now_unix};
use crate::error::{Error, Result};
use crate::secret::AccessToken;

pub use layer::Layer;
pub use page::DEFAULT_JS_URL;
pub use style::{Color, ColorBy};

/// How long a map's token stays valid unless
/// [`Map::token_lifetime`] says otherwise.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// The variable that points maps at another host of their scripts.
const JS_URL_VAR: &str = "CARTO_AUTH_JS_URL";

/// The bounds of a token's lifetime: long enough to open the map, short
/// enough that a forgotten notebook does not hold a key for a year.
const MIN_LIFETIME: Duration = Duration::from_secs(60);
const MAX_LIFETIME: Duration = Duration::from_secs(366 * 24 * 3600);

/// The map's background: CARTO's raster basemaps, or nothing (the page
/// around the map shows through).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Basemap {
    /// CARTO's Positron (`light_all`), the default.
    #[default]
    Light,
    /// CARTO's Dark Matter (`dark_all`).
    Dark,
    /// No basemap: only the layers.
    None,
}

/// A deck.gl map of CARTO layers, shown when it ends a notebook cell, or
/// written to a file with [`to_html`](Self::to_html). Made by
/// [`CartoAuth::map`].
///
/// The page does not carry the session's token: each rendering creates a
/// CARTO API Access Token that can only read this map's sources through
/// the Maps API and that expires after [`DEFAULT_TOKEN_LIFETIME`], so a
/// saved notebook or an exported page leaks nothing that outlives the map
/// or reaches beyond it.
///
/// ```no_run
/// use carto_auth::{CartoAuth, Layer};
/// let auth = CartoAuth::from_oauth()?;
/// let map = auth.map().layer(Layer::vector_table("carto_dw", "carto-demo-data.demo_tables.populated_places"));
/// std::fs::write("places.html", map.to_html()?)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Map {
    auth: CartoAuth,
    layers: Vec<Layer>,
    view: Option<[f64; 3]>,
    basemap: Basemap,
    embed_session_token: bool,
    token_lifetime: Duration,
    js_url: Option<String>,
    height: u32,
}

impl CartoAuth {
    /// A map drawn with this session's access: add layers with
    /// [`Map::layer`], end the cell with it. Feature `notebook`.
    ///
    /// ```no_run
    /// use carto_auth::{CartoAuth, Layer};
    /// let auth = CartoAuth::from_oauth()?;
    /// let map = auth.map().layer(Layer::vector_query("carto_dw", "SELECT geom, name FROM `carto-demo-data.demo_tables.populated_places`"));
    /// # Ok::<(), carto_auth::Error>(())
    /// ```
    pub fn map(&self) -> Map {
        Map {
            auth: self.clone(),
            layers: Vec::new(),
            view: None,
            basemap: Basemap::default(),
            embed_session_token: false,
            token_lifetime: DEFAULT_TOKEN_LIFETIME,
            js_url: None,
            height: 500,
        }
    }
}

impl Map {
    /// Adds a layer, drawn above those added before.
    pub fn layer(mut self, layer: Layer) -> Map {
        self.layers.push(layer);
        self
    }

    /// The initial view: centre and zoom (0 the world, about 10 a city).
    /// Without it the view fits the data's bounds.
    pub fn view(mut self, longitude: f64, latitude: f64, zoom: f64) -> Map {
        self.view = Some([longitude, latitude, zoom]);
        self
    }

    /// The basemap: [`Basemap::Light`] (the default), `Dark` or `None`.
    pub fn basemap(mut self, basemap: Basemap) -> Map {
        self.basemap = basemap;
        self
    }

    /// Puts the session's own token in the page instead of a scoped one,
    /// for roles that may not create API Access Tokens. The token is then
    /// saved with the notebook and in any exported page, and reaches
    /// everything the session can until it expires; the cell says when.
    pub fn embed_session_token(mut self, embed: bool) -> Map {
        self.embed_session_token = embed;
        self
    }

    /// How long the map's scoped token stays valid: 24 hours by default,
    /// from one minute to a year. Reopening a saved map after that shows
    /// that its token was refused; running the cell again makes a new one.
    pub fn token_lifetime(mut self, lifetime: Duration) -> Map {
        self.token_lifetime = lifetime;
        self
    }

    /// Where the page loads its scripts from, in the npm CDN layout
    /// `{base}/{package}@{version}/{path}`: a mirror for a hub without
    /// internet. Overrides `CARTO_AUTH_JS_URL`; the default is
    /// [`DEFAULT_JS_URL`].
    pub fn js_url(mut self, base: impl Into<String>) -> Map {
        self.js_url = Some(base.into());
        self
    }

    /// The map's height in the cell, in pixels (500 by default).
    pub fn height(mut self, pixels: u32) -> Map {
        self.height = pixels;
        self
    }

    /// The map as self-contained HTML (the page in an `<iframe srcdoc>`, a
    /// caption about its token under it), for a file or another front end.
    /// Creates the map's scoped token first.
    ///
    /// # Errors
    /// [`Error::MapTokenRefused`] when CARTO does not let this session
    /// create the token (it names [`embed_session_token`](Self::embed_session_token));
    /// [`Error::InvalidSetting`] for a layer or setting CARTO would refuse;
    /// [`Error::NoApiBaseUrl`]; those of the session's token.
    pub fn to_html(&self) -> Result<String> {
        Ok(self.render()?.0)
    }

    /// [`to_html`](Self::to_html) for async programs, on any executor.
    pub async fn to_html_async(&self) -> Result<String> {
        let map = self.clone();
        run(move || map.to_html()).await
    }

    /// Shows the map as the value of an evcxr cell, with a text
    /// alternative; a map that cannot be made shows why instead. Never
    /// panics. Feature `notebook`.
    pub fn evcxr_display(&self) {
        self.display_to(&mut std::io::stdout().lock());
    }

    /// The display, written to `out` in evcxr's content protocol.
    fn display_to(&self, out: &mut impl std::io::Write) {
        let (plain, html) = match self.render() {
            Ok((html, caption)) => (format!("{}. {caption}", self.summary()), html),
            Err(e) => (
                format!("The CARTO map could not be made: {e}"),
                page::error_card(&e.to_string()),
            ),
        };
        crate::display::emit(out, &plain, move || html);
    }

    /// "CARTO map of 2 layers: vector query on carto_dw, H3 query on ...".
    fn summary(&self) -> String {
        let layers: Vec<String> = self.layers.iter().map(Layer::describe).collect();
        match layers.len() {
            0 => "CARTO map without layers".into(),
            1 => format!("CARTO map of 1 layer: {}", layers[0]),
            n => format!("CARTO map of {n} layers: {}", layers.join(", ")),
        }
    }

    /// The cell's HTML and the caption about the token.
    fn render(&self) -> Result<(String, String)> {
        for layer in &self.layers {
            layer.check()?;
        }
        let js_base = self.js_base()?;
        if !(MIN_LIFETIME..=MAX_LIFETIME).contains(&self.token_lifetime) {
            return Err(Error::InvalidSetting {
                what: "the map's token lifetime".into(),
                value: format!("{} s", self.token_lifetime.as_secs()),
                reason: "from one minute to a year (24 hours by default)",
            });
        }
        if let Some(view) = self.view
            && !view.iter().all(|v| v.is_finite())
        {
            return Err(Error::InvalidSetting {
                what: "the map's view".into(),
                value: format!("{view:?}"),
                reason: "longitude, latitude and zoom must be finite numbers",
            });
        }
        let api_base_url = self.auth.api_base_url_or_error()?;
        let (token, expires, caption) = self.token(api_base_url)?;
        let config = self.config(api_base_url, &token, expires.as_deref(), &js_base);
        let document = page::document(&config, &js_base, self.basemap != Basemap::None);
        Ok((page::cell(&document, self.height, &caption), caption))
    }

    /// The token for the page, when it expires (ISO 8601), and the caption
    /// that says what it is.
    fn token(&self, api_base_url: &str) -> Result<(AccessToken, Option<String>, String)> {
        if self.embed_session_token {
            let token = self.auth.token()?;
            let expiration = self.auth.expiration();
            let caption = if expiration == NO_EXPIRY {
                "This map embeds your session's own CARTO token, with no known expiry: it is \
                 saved with the notebook and in any exported page, and reaches everything your \
                 session can."
                    .to_string()
            } else {
                format!(
                    "This map embeds your session's own CARTO token: it is saved with the \
                     notebook and in any exported page, reaches everything your session can, \
                     and {} (at {}).",
                    describe_expiry(expiration, now_unix()),
                    scoped::expiration_date(expiration)
                )
            };
            let expires = (expiration != NO_EXPIRY).then(|| scoped::expiration_date(expiration));
            return Ok((token, expires, caption));
        }
        if self.layers.is_empty() {
            return Ok((
                AccessToken::new(""),
                None,
                "A map without layers carries no token.".into(),
            ));
        }
        let session = self.auth.token()?;
        let lifetime = i64::try_from(self.token_lifetime.as_secs()).unwrap_or(i64::MAX);
        let expires_at = now_unix().saturating_add(lifetime);
        let token = scoped::create(
            &self.auth.http(),
            api_base_url,
            &session,
            &self.layers,
            expires_at,
        )?;
        let date = scoped::expiration_date(expires_at);
        let sources = scoped::grants(&self.layers).len();
        let caption = format!(
            "The token in this map reads only its {sources} source{} through CARTO's Maps API \
             and is valid until {date}; run the cell again after that.",
            if sources == 1 { "" } else { "s" }
        );
        Ok((token, Some(date), caption))
    }

    /// The script base: the builder's, else `CARTO_AUTH_JS_URL`, else the
    /// public CDN; an http(s) address or a path on the notebook's server.
    fn js_base(&self) -> Result<String> {
        let (what, base) = match &self.js_url {
            Some(url) => ("Map::js_url".to_string(), url.trim().to_string()),
            None => match crate::environment::var(JS_URL_VAR) {
                Some(url) => (JS_URL_VAR.to_string(), url),
                None => return Ok(DEFAULT_JS_URL.into()),
            },
        };
        let lower = base.to_ascii_lowercase();
        if !(lower.starts_with("https://") || lower.starts_with("http://") || base.starts_with('/'))
            || base.chars().any(|c| c.is_whitespace() || c == '"')
        {
            return Err(Error::InvalidSetting {
                what,
                value: base,
                reason: "an http(s) address or a path starting with /, in the npm CDN layout \
                         {base}/{package}@{version}/{path}",
            });
        }
        Ok(base.trim_end_matches('/').to_string())
    }

    /// What the page's script reads.
    fn config(
        &self,
        api_base_url: &str,
        token: &AccessToken,
        expires: Option<&str>,
        js_base: &str,
    ) -> Value {
        let layers: Vec<Value> = self
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| l.spec(i))
            .collect();
        let basemap = match self.basemap {
            Basemap::Light => json!({"tiles": page::basemap_tiles("light_all")}),
            Basemap::Dark => json!({"tiles": page::basemap_tiles("dark_all")}),
            Basemap::None => Value::Null,
        };
        let view = self
            .view
            .map_or(Value::Null, |[longitude, latitude, zoom]| {
                json!({"longitude": longitude, "latitude": latitude, "zoom": zoom})
            });
        json!({
            "apiBaseUrl": api_base_url,
            "accessToken": token.secret(),
            "tokenExpires": expires,
            "layers": layers,
            "view": view,
            "basemap": basemap,
            "scriptsError": page::scripts_error(js_base),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> CartoAuth {
        CartoAuth::from_token("session-token-ABCDEFGHIJKLMNOP", "http://127.0.0.1:9/api")
    }

    #[test]
    fn the_script_base_comes_from_the_builder_then_the_default() {
        let map = auth().map();
        assert_eq!(
            map.clone()
                .js_url("http://mirror:8/npm/")
                .js_base()
                .unwrap(),
            "http://mirror:8/npm"
        );
        assert_eq!(
            map.clone().js_url("/files/npm").js_base().unwrap(),
            "/files/npm"
        );
        let err = map.js_url("javascript:alert(1)").js_base().unwrap_err();
        assert!(err.to_string().contains("npm CDN layout"), "{err}");
    }

    #[test]
    fn the_page_of_an_embedded_session_token_says_so() {
        let map = auth()
            .map()
            .embed_session_token(true)
            .layer(Layer::vector_query("carto_dw", "SELECT 1"));
        let (html, caption) = map.render().unwrap();
        assert!(caption.contains("session's own CARTO token"), "{caption}");
        assert!(html.contains("session-token-ABCDEFGHIJKLMNOP"));
    }

    #[test]
    fn a_map_that_cannot_be_made_displays_why_in_text_and_html() {
        // No API base URL: the error says how to pass one.
        let auth = CartoAuth::from_token("session-token-ABCDEFGHIJKLMNOP", "");
        let mut out = Vec::new();
        auth.map()
            .layer(Layer::vector_query("carto_dw", "SELECT '<b>'"))
            .display_to(&mut out);
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.starts_with(
                "EVCXR_BEGIN_CONTENT text/plain\nThe CARTO map could not be made: this CARTO \
                 session has no API base URL"
            ),
            "{out}"
        );
        assert!(
            out.contains("EVCXR_BEGIN_CONTENT text/html\n<div role=\"alert\""),
            "{out}"
        );
        assert!(!out.contains("session-token-ABCDEFGHIJKLMNOP"));
    }

    #[test]
    fn a_bad_lifetime_or_view_is_refused_before_any_request() {
        let run = |map: Map| map.render().unwrap_err().to_string();
        assert!(run(auth().map().token_lifetime(Duration::from_secs(5))).contains("one minute"));
        assert!(run(auth().map().view(f64::NAN, 0.0, 1.0)).contains("finite"));
    }
}
