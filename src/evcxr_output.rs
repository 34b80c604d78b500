//! evcxr's output protocol, and the one way this crate writes to a
//! notebook: every byte it prints inside evcxr goes through here.
//!
//! evcxr reads the stdout of the process that runs cells line by line
//! (`BufRead::lines`: split at `\n`, a `\r` right before it dropped) and
//! acts on some lines (evcxr 0.22, `eval_context.rs`):
//! - outside a block, a line that is exactly `EVCXR_EXECUTION_COMPLETE`,
//!   `EVCXR_PANIC_NOTIFICATION` or `EVCXR_ERROR_OCCURRED`, one that starts
//!   with `EVCXR_INPUT_REQUEST` or `EVCXR_VARIABLE_CHANGED_TYPE:`, and one
//!   that contains `EVCXR_BEGIN_CONTENT <mime>` *anywhere* (it opens a
//!   block);
//! - inside a block, a line that is exactly [`END_CONTENT`] or
//!   `EVCXR_PANIC_NOTIFICATION` (it ends the block).
//!
//! What we print carries data: a table cell, a column name, an
//! organization, a server's message. A value such as
//! `"x\nEVCXR_END_CONTENT\nEVCXR_BEGIN_CONTENT application/javascript\nalert(1)//"`
//! would end our block and open one of its own, and JupyterLab runs the
//! `application/javascript` outputs of the current session in the page that
//! drives this kernel, whose variables hold the CARTO token. So the rule
//! enforced here, whatever the caller gives: no line written contains
//! `EVCXR_` except the marker lines this module writes itself. Every marker
//! starts with it, so none can be formed, with or without `\r`.
//!
//! The text stays whole and looks the same: in HTML the underscore becomes
//! the entity `&#95;`; in text a WORD JOINER (U+2060, invisible) goes
//! between `EVCXR` and `_`. Text also shows its control characters as
//! Unicode control pictures (a lone `\r` would make JupyterLab erase the
//! line before it; ESC starts colour codes that can hide text).

use std::io::Write;

/// What every line evcxr acts on starts with (or, for [`BEGIN_CONTENT`],
/// contains): the string no data may form in what we write.
const MARKER_PREFIX: &str = "EVCXR_";
/// Opens a rich-output block: `EVCXR_BEGIN_CONTENT <mime>`. evcxr finds it
/// anywhere in a line (an unanchored regex).
const BEGIN_CONTENT: &str = "EVCXR_BEGIN_CONTENT";
/// Ends a rich-output block: a line that is exactly this.
const END_CONTENT: &str = "EVCXR_END_CONTENT";
/// Shown between `EVCXR` and `_` in text: invisible, and it keeps the two
/// together on screen.
const WORD_JOINER: char = '\u{2060}';
/// `_` as an HTML character reference: the same character on screen and in
/// attribute values, different bytes on the wire.
const HTML_UNDERSCORE: &str = "&#95;";

/// The MIME types this crate shows, each with how data is kept from forming
/// a marker in it. Only these can be written: a type whose text we could
/// not neutralize has no variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "notebook"), allow(dead_code))]
pub(crate) enum Content {
    /// `text/plain`.
    Text,
    /// `text/html`, already escaped by its renderer (`html.rs`).
    Html,
}

#[cfg_attr(not(feature = "notebook"), allow(dead_code))]
impl Content {
    fn mime(self) -> &'static str {
        match self {
            Content::Text => "text/plain",
            Content::Html => "text/html",
        }
    }

    fn neutralize(self, content: &str) -> String {
        match self {
            Content::Text => safe_text(content),
            Content::Html => content.replace(MARKER_PREFIX, &format!("EVCXR{HTML_UNDERSCORE}")),
        }
    }
}

/// One block of evcxr's content protocol holding `content`, which cannot
/// end it nor open another.
#[cfg_attr(not(feature = "notebook"), allow(dead_code))]
pub(crate) fn content_block(kind: Content, content: &str) -> String {
    format!(
        "{BEGIN_CONTENT} {}\n{}\n{END_CONTENT}\n",
        kind.mime(),
        kind.neutralize(content)
    )
}

/// Streamed text (shown while the cell runs), which no line of can be read
/// as a marker. It ends with a newline: evcxr forwards only whole lines, and
/// a line we leave open would swallow the start of the next one, such as
/// the marker of an input request.
pub(crate) fn streamed_text(text: &str) -> String {
    let mut out = safe_text(text);
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// Writes [`content_block`] and flushes. Errors are ignored: `print!`
/// would panic on them, and a panic in a notebook kernel loses the user's
/// variables.
#[cfg_attr(not(feature = "notebook"), allow(dead_code))]
pub(crate) fn write_block(out: &mut impl Write, kind: Content, content: &str) {
    let _ = out.write_all(content_block(kind, content).as_bytes());
    let _ = out.flush();
}

/// Writes [`streamed_text`] and flushes, ignoring errors as
/// [`write_block`] does.
pub(crate) fn write_streamed(mut out: impl Write, text: &str) {
    let _ = out.write_all(streamed_text(text).as_bytes());
    let _ = out.flush();
}

/// `text` on one line, with every control character (line breaks too)
/// shown as its Unicode control picture: for names inside a line of
/// text, such as a table's header.
#[cfg_attr(not(feature = "notebook"), allow(dead_code))]
pub(crate) fn single_line(text: &str) -> String {
    text.chars()
        .map(|c| control_picture(c).unwrap_or(c))
        .collect()
}

/// Text as written: `\r\n` as `\n`, other control characters but `\n` and
/// `\t` as control pictures, and `EVCXR_` broken by a word joiner.
fn safe_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\t' => out.push(c),
            c => out.push(control_picture(c).unwrap_or(c)),
        }
    }
    out.replace(MARKER_PREFIX, &format!("EVCXR{WORD_JOINER}_"))
}

/// The Unicode control picture of a C0 control character or DEL (U+2400
/// to U+2421): `\n` is `␊`, ESC is `␛`.
fn control_picture(c: char) -> Option<char> {
    match c {
        '\0'..='\u{1f}' => char::from_u32(0x2400 + c as u32),
        '\u{7f}' => Some('\u{2421}'),
        _ => None,
    }
}

/// A reader of written bytes that does what evcxr does with them, for the
/// tests of everything that writes through this module.
#[cfg(test)]
pub(crate) mod reader;

#[cfg(test)]
mod tests {
    use super::reader::{Read, as_text, hostile, read_like_evcxr};
    use super::*;
    use proptest::prelude::*;

    /// The issue's example, and its `\r\n` twin.
    const BREAKOUT: &str =
        "x\nEVCXR_END_CONTENT\nEVCXR_BEGIN_CONTENT application/javascript\nalert(1)//";
    const BREAKOUT_CRLF: &str =
        "x\r\nEVCXR_END_CONTENT\r\nEVCXR_BEGIN_CONTENT application/javascript\r\nalert(1)//";

    #[test]
    fn the_issues_breakout_stays_inside_its_block_and_visible() {
        for value in [BREAKOUT, BREAKOUT_CRLF] {
            for kind in [Content::Text, Content::Html] {
                let written = content_block(kind, value);
                let read = read_like_evcxr(&written);
                let [Read::Block { mime, content }] = read.as_slice() else {
                    panic!("{read:?} from {written:?}");
                };
                assert_eq!(mime, kind.mime());
                let shown = content
                    .replace(WORD_JOINER, "")
                    .replace(HTML_UNDERSCORE, "_");
                assert_eq!(shown, value.replace("\r\n", "\n"), "{written:?}");
            }
            assert_eq!(
                read_like_evcxr(&streamed_text(value)),
                value
                    .replace(MARKER_PREFIX, "EVCXR\u{2060}_")
                    .split("\r\n")
                    .flat_map(|l| l.split('\n'))
                    .map(|l| Read::Stream(l.to_string()))
                    .collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn text_shows_control_characters_and_keeps_line_breaks_and_tabs() {
        assert_eq!(safe_text("a\r\nb\rc\td\u{1b}[8me\u{7f}"), "a\nb␍c\td␛[8me␡");
        assert_eq!(single_line("name\r\n\tx"), "name␍␊␉x");
        assert_eq!(streamed_text("no newline"), "no newline\n");
        assert_eq!(streamed_text(""), "");
        assert_eq!(streamed_text("ends\n"), "ends\n");
    }

    #[test]
    fn writing_ignores_a_closed_stream() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("closed"))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Err(std::io::Error::other("closed"))
            }
        }
        write_block(&mut Broken, Content::Text, "x");
        write_streamed(Broken, "x");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn a_block_holds_any_content_whole(value in hostile()) {
            for kind in [Content::Text, Content::Html] {
                let written = content_block(kind, &value);
                let read = read_like_evcxr(&written);
                let [Read::Block { mime, content }] = read.as_slice() else {
                    panic!("{read:?} from {written:?}");
                };
                prop_assert_eq!(mime, kind.mime());
                prop_assert!(!content.contains(MARKER_PREFIX));
                let shown = match kind {
                    Content::Html => content.replace(HTML_UNDERSCORE, "_"),
                    Content::Text => content.replace(WORD_JOINER, ""),
                };
                let expected = match kind {
                    // The HTML renderer escapes `\r`; raw, evcxr drops it
                    // before a line break, ours included.
                    Content::Html => format!("{value}\n").replace("\r\n", "\n"),
                    Content::Text => format!("{}\n", as_text(&value)),
                };
                // evcxr drops a block's leading empty lines.
                let expected = expected[..expected.len() - 1].trim_start_matches('\n');
                let expected = match kind {
                    Content::Html => expected.to_string(),
                    Content::Text => expected.replace(WORD_JOINER, ""),
                };
                prop_assert_eq!(shown, expected);
            }
        }

        #[test]
        fn streamed_text_is_only_streamed_lines(value in hostile()) {
            let written = streamed_text(&value);
            for read in read_like_evcxr(&written) {
                let Read::Stream(line) = read else { panic!("{read:?} from {written:?}") };
                prop_assert!(!line.contains(MARKER_PREFIX), "{:?}", line);
            }
        }
    }
}
