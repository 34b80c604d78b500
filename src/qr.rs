//! QR codes of a sign-in address: an SVG image for the HTML cards, Unicode
//! half blocks for streamed text (which a notebook shows while a cell waits).
//! Feature `notebook`.

use base64::Engine as _;
use qrcode::render::{svg, unicode};
use qrcode::{Color, EcLevel, QrCode};

/// The modules of light margin around a QR code that its standard asks for.
const QUIET_ZONE: usize = 4;
/// Black on white in the 256-colour palette (16 and 231: the ends of its
/// colour cube), set at the start of each line of a text QR code, and the
/// reset at its end. A terminal or JupyterLab theme would otherwise draw it
/// with its own colours: light on dark in a dark theme, which a phone reads
/// inverted or not at all. JupyterLab turns both into inline `rgb()`
/// colours (`@jupyterlab/rendermime`'s `ansiSpan`), the same in every
/// theme; terminals have known the palette far longer than 24-bit colour.
const DARK_ON_LIGHT: &str = "\x1b[38;5;16;48;5;231m";
const RESET: &str = "\x1b[0m";

fn code(data: &str) -> Option<QrCode> {
    QrCode::with_error_correction_level(data, EcLevel::L).ok()
}

/// The QR code of `data` as an SVG document (the renderer's own, with its
/// XML declaration and a white background), or `None` when the data does
/// not fit in a QR code.
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

/// The QR code of `data` in Unicode blocks with its quiet zone, or `None`
/// when the data does not fit in a QR code.
///
/// Without `ansi`: half blocks, two modules a character one above the
/// other, as a terminal shows best (its lines touch). With `ansi`: one line
/// per row of modules, one full block per dark module, each line coloured
/// black on white (see [`DARK_ON_LIGHT`]), for JupyterLab, whose stream
/// output leaves a thin gap of the theme's background between lines: with
/// half blocks that gap cuts through the middle of the finder patterns and
/// zbar reads some codes and not others; with a line per row each gap lies
/// on a row boundary, and zbar reads the code from a screenshot in the light
/// and the dark theme (tests/jupyterlab.rs). It is twice as tall as wide in
/// a terminal, which a phone reads as well.
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
    let lines: Vec<String> = (0..side)
        .map(|y| {
            let row: String = (0..side)
                .map(|x| if dark(x, y) { '\u{2588}' } else { ' ' })
                .collect();
            format!("{DARK_ON_LIGHT}{row}{RESET}")
        })
        .collect();
    Some(lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://auth.carto.com/authorize?client_id=abc&response_type=code&scope=None\
        &audience=carto-cloud-native-api&redirect_uri=https%3A%2F%2Fapp.carto.com%2Fauth%2Ftoken\
        &code_challenge_method=S256&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    /// The modules a text QR code draws, read back from its characters
    /// (escape sequences skipped; two rows a line with half blocks, one
    /// with `ansi`): `true` where dark.
    fn modules_of(rendered: &str, ansi: bool) -> Vec<Vec<bool>> {
        let mut rows = Vec::new();
        for line in rendered.lines() {
            let mut plain = String::new();
            let mut chars = line.chars();
            while let Some(c) = chars.next() {
                if c == '\x1b' {
                    // CSI: up to and including its final byte, a letter.
                    for c in chars.by_ref() {
                        if c.is_ascii_alphabetic() {
                            break;
                        }
                    }
                } else {
                    plain.push(c);
                }
            }
            if ansi {
                rows.push(plain.chars().map(|c| c == '\u{2588}').collect());
                assert!(
                    plain.chars().all(|c| c == ' ' || c == '\u{2588}'),
                    "{plain}"
                );
                continue;
            }
            let (top, bottom): (Vec<bool>, Vec<bool>) = plain
                .chars()
                .map(|c| match c {
                    ' ' => (false, false),
                    '\u{2580}' => (true, false),
                    '\u{2584}' => (false, true),
                    '\u{2588}' => (true, true),
                    other => panic!("{other:?} in a text QR code"),
                })
                .unzip();
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
        let plain = text(URL, false).unwrap();
        let mut drawn = modules_of(&plain, false);
        // An odd side: the last line's lower half is the margin below.
        assert_eq!(drawn.len(), expected.len() + 1);
        assert!(drawn.pop().unwrap().iter().all(|d| !d));
        assert_eq!(drawn, expected, "{plain}");
        let ansi = text(URL, true).unwrap();
        assert_eq!(modules_of(&ansi, true), expected, "{ansi}");
    }

    #[test]
    fn the_ansi_form_is_black_on_white_on_every_line_and_resets() {
        let rendered = text(URL, true).unwrap();
        let plain = text(URL, false).unwrap();
        // A line per row of modules: twice the half blocks' lines, less one.
        assert_eq!(rendered.lines().count(), 2 * plain.lines().count() - 1);
        for line in rendered.lines() {
            assert!(
                line.starts_with("\x1b[38;5;16;48;5;231m") && line.ends_with("\x1b[0m"),
                "{line:?}"
            );
            assert_eq!(line.matches('\x1b').count(), 2, "{line:?}");
        }
        assert!(!rendered.ends_with('\n'));
        assert!(!plain.contains('\x1b'), "{plain}");
    }

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
        assert!(svg(&long).is_none() && svg_image(&long).is_none());
        assert!(text(&long, false).is_none() && text(&long, true).is_none());
    }
}
