//! The HTML that the cards and tables share: inline styles, escaping, safe
//! links. Feature `notebook`.
//!
//! The HTML is self-contained (inline styles only: JupyterLab may drop
//! `<style>` blocks from untrusted outputs, and no fonts, images or scripts
//! are fetched), every interpolated value is escaped, and colours come from
//! JupyterLab's theme variables with fallbacks, or are inherited, so it
//! reads in light and dark themes.

// Inline styles. A fixed blue with white text keeps the button's contrast
// above 4.5:1 in both themes; everything else inherits the theme's colours.
pub(crate) const CARD: &str = "font-family:var(--jp-ui-font-family,system-ui,sans-serif);\
    color:var(--jp-content-font-color1,inherit);\
    border:1px solid var(--jp-border-color1,rgba(128,128,128,.45));border-radius:8px;\
    padding:14px 16px;margin:4px 0;max-width:720px;line-height:1.45;box-sizing:border-box";
pub(crate) const TITLE: &str = "font-size:1.15em;font-weight:600;margin:0 0 6px 0";
pub(crate) const MUTED: &str = "opacity:.75;font-size:.92em;margin:4px 0";
pub(crate) const BUTTON: &str = "display:inline-block;padding:8px 18px;border-radius:6px;\
    background:#1565c0;color:#fff;text-decoration:none;font-weight:600;\
    border:1px solid #0d47a1;cursor:pointer";
pub(crate) const CODE: &str = "font-family:var(--jp-code-font-family,monospace);font-size:.92em;\
    background:var(--jp-layout-color2,rgba(128,128,128,.15));color:inherit;\
    padding:1px 4px;border-radius:3px;word-break:break-all";
pub(crate) const CELL: &str = "text-align:left;vertical-align:top;padding:3px 14px 3px 0;\
    border:none;background:transparent;color:inherit";

/// Escapes text for HTML element content and quoted attribute values.
/// Line breaks too: an attribute (a tooltip) keeps them as `&#10;`, and
/// the HTML we write stays on one line whatever the data (evcxr reads its
/// protocol line by line; `evcxr_output.rs` is what guards it).
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

/// The URL as an `href`, only when it is `http(s)`: the endpoints are public
/// fields, and a `javascript:` address must never become a clickable link.
pub(crate) fn safe_href(url: &str) -> Option<String> {
    let lower = url.trim_start().to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://")).then(|| escape(url))
}

/// `text` in a `<code>` span.
pub(crate) fn code(text: &str) -> String {
    format!("<code style=\"{CODE}\">{}</code>", escape(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_the_html_specials_and_line_breaks() {
        assert_eq!(
            escape(r#"<a href="x">Tom & 'Jerry'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;"
        );
        assert_eq!(escape("plain"), "plain");
        assert_eq!(escape("a\r\nb"), "a&#13;&#10;b");
    }

    #[test]
    fn only_web_addresses_become_links() {
        assert_eq!(
            safe_href("HTTPS://auth.carto.com/a?b=1&c=2").as_deref(),
            Some("HTTPS://auth.carto.com/a?b=1&amp;c=2")
        );
        assert_eq!(safe_href("javascript:alert(1)//https://"), None);
    }
}
