//! How a layer looks: colours, constant or taken from a column (a
//! category, a range, classes), as the page's script reads them
//! (`paint` in `map.js`). Feature `notebook`.

use serde_json::{Value, json};

/// A colour, red, green, blue and alpha from 0 to 255.
///
/// ```
/// use carto_auth::Color;
/// assert_eq!(Color::rgb(255, 0, 0), Color::from([255, 0, 0]));
/// assert_eq!(Color::rgba(0, 0, 0, 128), Color::from([0, 0, 0, 128]));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Color(pub [u8; 4]);

impl Color {
    /// An opaque colour.
    pub const fn rgb(r: u8, g: u8, b: u8) -> Color {
        Color([r, g, b, 255])
    }

    /// A colour with its opacity (alpha, 0 transparent to 255 opaque).
    pub const fn rgba(r: u8, g: u8, b: u8, a: u8) -> Color {
        Color([r, g, b, a])
    }

    pub(crate) fn json(self) -> Value {
        json!(self.0)
    }
}

impl From<[u8; 3]> for Color {
    fn from([r, g, b]: [u8; 3]) -> Color {
        Color::rgb(r, g, b)
    }
}

impl From<[u8; 4]> for Color {
    fn from(rgba: [u8; 4]) -> Color {
        Color(rgba)
    }
}

/// A colour taken from a column of each feature (or cell).
///
/// ```
/// use carto_auth::{Color, ColorBy};
/// let by_type = ColorBy::category("kind", [("park", [0, 160, 0]), ("lake", [0, 90, 200])], [128, 128, 128]);
/// let by_population = ColorBy::range("pop", 0.0, 1e6, [255, 255, 204], [189, 0, 38]);
/// let in_bins = ColorBy::bins("pop", [1e4, 1e5], [[255, 255, 204], [253, 141, 60], [189, 0, 38]]);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ColorBy(pub(crate) Value);

impl ColorBy {
    /// One colour per value of `column` (compared as text), `others` for
    /// any other value.
    pub fn category<V, C>(
        column: impl Into<String>,
        colors: impl IntoIterator<Item = (V, C)>,
        others: impl Into<Color>,
    ) -> ColorBy
    where
        V: Into<String>,
        C: Into<Color>,
    {
        let pairs: Vec<Value> = colors
            .into_iter()
            .map(|(v, c)| json!([v.into(), c.into().json()]))
            .collect();
        ColorBy(json!({
            "by": "category", "column": column.into(), "colors": pairs,
            "others": others.into().json(),
        }))
    }

    /// A colour between `from` (at `min` and below) and `to` (at `max` and
    /// above), in proportion to the numeric value of `column`. Features
    /// without a number there are transparent.
    pub fn range(
        column: impl Into<String>,
        min: f64,
        max: f64,
        from: impl Into<Color>,
        to: impl Into<Color>,
    ) -> ColorBy {
        ColorBy(json!({
            "by": "range", "column": column.into(), "min": min, "max": max,
            "from": from.into().json(), "to": to.into().json(),
        }))
    }

    /// Classes of the numeric value of `column`: below `breaks[0]` the
    /// first colour, from `breaks[i-1]` up to `breaks[i]` colour `i`, from
    /// the last break on the last colour (one colour more than breaks).
    pub fn bins<C: Into<Color>>(
        column: impl Into<String>,
        breaks: impl IntoIterator<Item = f64>,
        colors: impl IntoIterator<Item = C>,
    ) -> ColorBy {
        let breaks: Vec<f64> = breaks.into_iter().collect();
        let colors: Vec<Value> = colors.into_iter().map(|c| c.into().json()).collect();
        ColorBy(json!({
            "by": "bins", "column": column.into(), "breaks": breaks, "colors": colors,
        }))
    }

    pub(crate) fn check(&self) -> std::result::Result<(), &'static str> {
        match self.0["by"].as_str() {
            Some("bins") => {
                let breaks = self.0["breaks"].as_array().map_or(0, Vec::len);
                let colors = self.0["colors"].as_array().map_or(0, Vec::len);
                if colors != breaks + 1 {
                    return Err("ColorBy::bins takes one colour more than breaks");
                }
            }
            Some("range") => match (self.0["min"].as_f64(), self.0["max"].as_f64()) {
                (Some(min), Some(max)) if min < max => {}
                _ => return Err("ColorBy::range needs min below max (both finite)"),
            },
            _ => {}
        }
        Ok(())
    }
}

/// A constant colour or one by a column.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Paint {
    Constant(Color),
    By(ColorBy),
}

impl Paint {
    pub(crate) fn json(&self) -> Value {
        match self {
            Paint::Constant(c) => json!({"by": "constant", "color": c.json()}),
            Paint::By(by) => by.0.clone(),
        }
    }
}
