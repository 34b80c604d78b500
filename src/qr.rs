//! QR codes of a sign-in address: SVG for the HTML cards, Unicode half
//! blocks for streamed text (which a notebook shows while a cell waits).
//! Features `notebook` and `cli`.

#[cfg(feature = "notebook")]
use qrcode::render::svg;
use qrcode::render::unicode;
use qrcode::{EcLevel, QrCode};

/// The QR code of `data` as an SVG document (the renderer's own, with its
/// XML declaration), or `None` when the data does not fit in a QR code.
/// Feature `notebook` (the HTML cards).
#[cfg(feature = "notebook")]
pub(crate) fn svg(data: &str) -> Option<String> {
    let code = QrCode::with_error_correction_level(data, EcLevel::L).ok()?;
    Some(
        code.render::<svg::Color<'_>>()
            .min_dimensions(200, 200)
            .dark_color(svg::Color("#000"))
            .light_color(svg::Color("#fff"))
            .build(),
    )
}

/// The QR code of `data` in Unicode half blocks (two modules a character),
/// with its quiet zone, or `None` when the data does not fit in a QR code.
/// `ansi`: for a terminal or JupyterLab, in explicit colours (not yet: plain
/// blocks either way).
pub(crate) fn text(data: &str, ansi: bool) -> Option<String> {
    let _ = ansi;
    let code = QrCode::with_error_correction_level(data, EcLevel::L).ok()?;
    Some(code.render::<unicode::Dense1x2>().quiet_zone(true).build())
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://auth.carto.com/authorize?client_id=abc&response_type=code&scope=None\
        &audience=carto-cloud-native-api&redirect_uri=https%3A%2F%2Fapp.carto.com%2Fauth%2Ftoken\
        &code_challenge_method=S256&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn the_text_qr_code_is_a_square_of_half_blocks() {
        let rendered = text(URL, false).unwrap();
        let code = QrCode::with_error_correction_level(URL, EcLevel::L).unwrap();
        let side = code.width() + 8; // with the 4-module quiet zone
        let lines: Vec<&str> = rendered.lines().collect();
        assert_eq!(lines.len(), side.div_ceil(2));
        assert!(
            lines.iter().all(|l| l.chars().count() == side),
            "{rendered}"
        );
        assert!(
            rendered
                .chars()
                .all(|c| matches!(c, ' ' | '\u{2580}' | '\u{2584}' | '\u{2588}' | '\n'))
        );
        // The top-left finder pattern: a solid 7-module run after the quiet zone.
        assert!(
            lines[2]
                .chars()
                .skip(4)
                .take(7)
                .all(|c| c == '\u{2588}' || c == '\u{2580}' || c == '\u{2584}'),
            "{}",
            lines[2]
        );
    }

    #[cfg(feature = "notebook")]
    #[test]
    fn the_svg_is_the_renderers_document_at_a_scannable_size() {
        let doc = svg(URL).unwrap();
        assert!(doc.contains("<svg ") && doc.contains("<path fill=\"#000\""));
    }

    #[test]
    fn data_too_long_for_a_qr_code_gives_none() {
        let long = format!("https://auth.carto.com/authorize?org={}", "x".repeat(8000));
        assert!(text(&long, false).is_none());
        #[cfg(feature = "notebook")]
        assert!(svg(&long).is_none());
    }
}
