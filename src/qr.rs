//! QR codes of a sign-in address: an SVG image for the HTML cards, Unicode
//! half blocks for streamed text (which a notebook shows while a cell waits).
//! Features `notebook` (both) and `cli` (the text, for a terminal).

#[cfg(feature = "notebook")]
use base64::Engine as _;
#[cfg(feature = "notebook")]
use qrcode::render::svg;
use qrcode::render::unicode;
use qrcode::{Color, EcLevel, QrCode};

/// The modules of light margin around a QR code that its standard asks for.
const QUIET_ZONE: usize = 4;
/// Select Graphic Rendition parameters of the 16-colour palette: dark and
/// light foreground and background. JupyterLab shows a stream's lines with
/// a gap of the theme's background between them, which cuts through the
/// dark modules (light theme) or the light ones (dark theme) and keeps zbar
/// from finding the finder patterns; it draws these palette backgrounds
/// (`.ansi-*-bg` in `@jupyterlab/rendermime`) with a vertical padding that
/// fills that gap, where an inline 256-colour or 24-bit background does
/// not. Their colours are the same in every theme (dark slate on light
/// grey there), so the code is dark on light in both; terminals have known
/// these colours longest.
const DARK_FG: u8 = 30;
const DARK_BG: u8 = 40;
const LIGHT_FG: u8 = 37;
const LIGHT_BG: u8 = 47;
const RESET: &str = "\x1b[0m";
/// The lower half block: its foreground is the lower module, its
/// background (with the padding above, which covers the gap to the line
/// above) the upper one.
const LOWER_HALF: char = '\u{2584}';

fn code(data: &str) -> Option<QrCode> {
    QrCode::with_error_correction_level(data, EcLevel::L).ok()
}

/// The QR code of `data` as an SVG document (the renderer's own, with its
/// XML declaration and a white background), or `None` when the data does
/// not fit in a QR code.
#[cfg(feature = "notebook")]
pub(crate) fn svg(data: &str) -> Option<String> {
    Some(
        code(data)?
            .render::<svg::Color<'_>>()
            .min_dimensions(200, 200)
            .dark_color(svg::Color("#000"))
            .light_color(svg::Color("#fff"))
            .build(),
    )
}

/// [`svg`] as a `data:` URI for an `<img>`, with its side in CSS pixels
/// (the SVG's own width and height), or `None` when the data does not fit
/// in a QR code. JupyterLab's sanitizer drops an inline `<svg>` from a
/// notebook reopened untrusted, and keeps an image whose source is a
/// `data:` URI (its scheme check covers `href`, not `src`). An SVG shown as
/// an image runs nothing and fetches nothing.
#[cfg(feature = "notebook")]
pub(crate) fn svg_image(data: &str) -> Option<(String, u32)> {
    let svg = svg(data)?;
    let side = svg
        .split_once("<svg ")?
        .1
        .split_once("width=\"")?
        .1
        .split_once('"')?
        .0
        .parse()
        .ok()?;
    let uri = format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    );
    Some((uri, side))
}

/// The QR code of `data` in Unicode half blocks (two modules a character,
/// one above the other), with its quiet zone, or `None` when the data does
/// not fit in a QR code.
///
/// With `ansi`, each character is a lower half block coloured from the
/// 16-colour palette (see [`DARK_BG`]): dark on light whatever the theme or
/// terminal, and without gaps between lines in JupyterLab, where zbar reads
/// it from a screenshot in the light and the dark theme
/// (tests/jupyterlab.rs). The plain form, without escape sequences, is for
/// where they would show as text.
pub(crate) fn text(data: &str, ansi: bool) -> Option<String> {
    let code = code(data)?;
    if !ansi {
        return Some(code.render::<unicode::Dense1x2>().quiet_zone(true).build());
    }
    let width = code.width();
    let colors = code.to_colors();
    let side = width + 2 * QUIET_ZONE;
    // Module (x, y) of the code with its quiet zone; true where dark.
    let dark = |x: usize, y: usize| {
        let (x, y) = (x.wrapping_sub(QUIET_ZONE), y.wrapping_sub(QUIET_ZONE));
        x < width && y < width && colors[y * width + x] == Color::Dark
    };
    let mut lines = Vec::with_capacity(side.div_ceil(2));
    for top in (0..side).step_by(2) {
        let mut line = String::new();
        let mut current = None;
        for x in 0..side {
            let fg = if dark(x, top + 1) { DARK_FG } else { LIGHT_FG };
            let bg = if dark(x, top) { DARK_BG } else { LIGHT_BG };
            if current != Some((fg, bg)) {
                line.push_str(&format!("\x1b[{fg};{bg}m"));
                current = Some((fg, bg));
            }
            line.push(LOWER_HALF);
        }
        line.push_str(RESET);
        lines.push(line);
    }
    Some(lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://auth.carto.com/authorize?client_id=abc&response_type=code&scope=None\
        &audience=carto-cloud-native-api&redirect_uri=https%3A%2F%2Fapp.carto.com%2Fauth%2Ftoken\
        &code_challenge_method=S256&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    /// The modules a text QR code draws, read back from its characters
    /// (and, with `ansi`, its colours): `true` where dark, two rows a line.
    fn modules_of(rendered: &str, ansi: bool) -> Vec<Vec<bool>> {
        let mut rows = Vec::new();
        for line in rendered.lines() {
            let (mut top, mut bottom) = (Vec::new(), Vec::new());
            let mut chars = line.chars();
            let (mut fg, mut bg) = (0, 0);
            while let Some(c) = chars.next() {
                if c == '\x1b' {
                    let sgr: String = chars.by_ref().take_while(|&c| c != 'm').collect();
                    if sgr == "[0" {
                        continue;
                    }
                    let (f, b) = sgr[1..].split_once(';').expect("fg;bg");
                    (fg, bg) = (f.parse().unwrap(), b.parse().unwrap());
                    continue;
                }
                let (t, b) = match (ansi, c) {
                    (true, LOWER_HALF) => {
                        assert!(
                            [DARK_FG, LIGHT_FG].contains(&fg) && [DARK_BG, LIGHT_BG].contains(&bg)
                        );
                        (bg == DARK_BG, fg == DARK_FG)
                    }
                    (false, ' ') => (false, false),
                    (false, '\u{2580}') => (true, false),
                    (false, '\u{2584}') => (false, true),
                    (false, '\u{2588}') => (true, true),
                    other => panic!("{other:?} in a text QR code"),
                };
                top.push(t);
                bottom.push(b);
            }
            rows.push(top);
            rows.push(bottom);
        }
        rows
    }

    /// The modules of `data`'s code with its quiet zone.
    fn expected_modules(data: &str) -> Vec<Vec<bool>> {
        let code = code(data).unwrap();
        let width = code.width();
        let colors = code.to_colors();
        let side = width + 2 * QUIET_ZONE;
        (0..side)
            .map(|y| {
                (0..side)
                    .map(|x| {
                        let (x, y) = (x.wrapping_sub(QUIET_ZONE), y.wrapping_sub(QUIET_ZONE));
                        x < width && y < width && colors[y * width + x] == Color::Dark
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn both_text_forms_draw_exactly_the_codes_modules() {
        let expected = expected_modules(URL);
        for ansi in [false, true] {
            let rendered = text(URL, ansi).unwrap();
            let mut drawn = modules_of(&rendered, ansi);
            // An odd side: the last line's lower half is the margin below.
            assert_eq!(drawn.len(), expected.len() + 1, "ansi {ansi}");
            assert!(drawn.pop().unwrap().iter().all(|d| !d));
            assert_eq!(drawn, expected, "ansi {ansi}:\n{rendered}");
        }
    }

    #[test]
    fn the_ansi_form_uses_palette_colours_on_every_line_and_resets() {
        let rendered = text(URL, true).unwrap();
        let plain = text(URL, false).unwrap();
        assert_eq!(rendered.lines().count(), plain.lines().count());
        for line in rendered.lines() {
            // The quiet zone: light above and below.
            assert!(line.starts_with("\x1b[37;47m"), "{line:?}");
            assert!(line.ends_with(RESET), "{line:?}");
        }
        // Only the four palette pairs: no 256-colour or 24-bit colour,
        // whose backgrounds leave JupyterLab's line gaps open.
        for sgr in rendered.split('\x1b').skip(1) {
            let sgr = &sgr[..sgr.find('m').unwrap() + 1];
            assert!(
                ["[30;40m", "[30;47m", "[37;40m", "[37;47m", "[0m"].contains(&sgr),
                "{sgr:?}"
            );
        }
        assert!(!rendered.ends_with('\n'));
        assert!(!plain.contains('\x1b'), "{plain}");
    }

    #[cfg(feature = "notebook")]
    #[test]
    fn the_svg_is_the_renderers_document_at_a_scannable_size() {
        let doc = svg(URL).unwrap();
        assert!(doc.contains("<svg ") && doc.contains("<path fill=\"#000\""));
        let (uri, side) = svg_image(URL).unwrap();
        assert!((200..400).contains(&side), "{side}");
        assert!(
            doc.contains(&format!("width=\"{side}\" height=\"{side}\"")),
            "{doc}"
        );
        let encoded = uri.strip_prefix("data:image/svg+xml;base64,").unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), doc);
    }

    #[test]
    fn data_too_long_for_a_qr_code_gives_none() {
        let long = format!("https://auth.carto.com/authorize?org={}", "x".repeat(8000));
        #[cfg(feature = "notebook")]
        assert!(svg(&long).is_none() && svg_image(&long).is_none());
        assert!(text(&long, false).is_none() && text(&long, true).is_none());
    }
}
