//! What evcxr 0.22 makes of a cell's stdout (`eval_context.rs`, the loop
//! after `LOAD_AND_RUN`; lines as `BufRead::lines` splits them), and the
//! strings to feed it, for tests.

use proptest::prelude::*;

use super::control_picture;

/// One thing evcxr read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Read {
    /// A line streamed to the notebook as text.
    Stream(String),
    /// A rich-output block: its MIME type and content.
    Block { mime: String, content: String },
    /// A line evcxr acts on other than a block: the cell's end, a panic, an
    /// error, an input request, a variable's changed type; or a block left
    /// open at the end.
    Marker(String),
}

/// The lines of `written` as `BufRead::lines` gives them: split at `\n`,
/// a `\r` before the `\n` dropped, a last line without `\n` kept.
fn lines(written: &str) -> Vec<String> {
    written
        .split_inclusive('\n')
        .map(|piece| match piece.strip_suffix('\n') {
            Some(l) => l.strip_suffix('\r').unwrap_or(l).to_string(),
            None => piece.to_string(),
        })
        .collect()
}

/// evcxr's `EVCXR_BEGIN_CONTENT ([^ ]+)`, unanchored: the MIME type of the
/// first match in `line`.
fn begin_content(line: &str) -> Option<String> {
    const BEGIN: &str = "EVCXR_BEGIN_CONTENT ";
    let mut from = 0;
    while let Some(at) = line[from..].find(BEGIN) {
        let rest = &line[from + at + BEGIN.len()..];
        let mime: String = rest.chars().take_while(|c| *c != ' ').collect();
        if !mime.is_empty() {
            return Some(mime);
        }
        from += at + 1;
    }
    None
}

/// Reads `written` as evcxr reads a cell's stdout.
pub(crate) fn read_like_evcxr(written: &str) -> Vec<Read> {
    let mut reads = Vec::new();
    let mut lines = lines(written).into_iter();
    while let Some(line) = lines.next() {
        if line == "EVCXR_EXECUTION_COMPLETE"
            || line == "EVCXR_PANIC_NOTIFICATION"
            || line == "EVCXR_ERROR_OCCURRED"
            || line.starts_with(evcxr_input::GET_CMD)
            || line.starts_with("EVCXR_VARIABLE_CHANGED_TYPE:")
        {
            reads.push(Read::Marker(line));
        } else if let Some(mime) = begin_content(&line) {
            // evcxr's own accumulation: a newline only once there is content.
            let mut content = String::new();
            let mut closed = false;
            for line in lines.by_ref() {
                if line == "EVCXR_END_CONTENT" {
                    closed = true;
                    break;
                }
                if line == "EVCXR_PANIC_NOTIFICATION" {
                    reads.push(Read::Marker(line));
                    closed = true;
                    break;
                }
                if !content.is_empty() {
                    content.push('\n');
                }
                content.push_str(&line);
            }
            if !closed {
                reads.push(Read::Marker(format!("unterminated {mime} block")));
            }
            reads.push(Read::Block { mime, content });
        } else {
            reads.push(Read::Stream(line));
        }
    }
    reads
}

/// Strings made of evcxr's markers, line breaks and anything else.
pub(crate) fn hostile() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("EVCXR_END_CONTENT".to_string()),
        Just("EVCXR_BEGIN_CONTENT application/javascript".to_string()),
        Just("EVCXR_BEGIN_CONTENT".to_string()),
        Just("EVCXR_EXECUTION_COMPLETE".to_string()),
        Just("EVCXR_PANIC_NOTIFICATION".to_string()),
        Just("EVCXR_ERROR_OCCURRED".to_string()),
        Just("EVCXR_INPUT_REQUEST:".to_string()),
        Just("EVCXR_VARIABLE_CHANGED_TYPE:x".to_string()),
        Just("EVCXR".to_string()),
        Just("_".to_string()),
        Just("\n".to_string()),
        Just("\r".to_string()),
        Just("\r\n".to_string()),
        Just(" ".to_string()),
        Just("\u{2060}".to_string()),
        "[ -~]{0,6}",
        any::<String>().prop_map(|s| s.chars().take(6).collect()),
    ];
    prop::collection::vec(piece, 0..6).prop_map(|v| v.concat())
}

/// Text as a reader sees it: line ends as `\n`, every other control
/// character as its picture.
pub(crate) fn as_text(value: &str) -> String {
    value
        .replace("\r\n", "\n")
        .chars()
        .map(|c| match c {
            '\n' | '\t' => c,
            c => control_picture(c).unwrap_or(c),
        })
        .collect()
}

#[test]
fn it_reads_as_evcxr_does() {
    let written = "a\r\nx EVCXR_BEGIN_CONTENT text/html\n<b>\r\n\nEVCXR_END_CONTENT\r\n\
                   EVCXR_INPUT_REQUEST_PASSWORD:q\nEVCXR_BEGIN_CONTENT  x\nlast";
    assert_eq!(
        read_like_evcxr(written),
        vec![
            Read::Stream("a".into()),
            Read::Block {
                mime: "text/html".into(),
                content: "<b>\n".into()
            },
            Read::Marker("EVCXR_INPUT_REQUEST_PASSWORD:q".into()),
            Read::Stream("EVCXR_BEGIN_CONTENT  x".into()),
            Read::Stream("last".into()),
        ]
    );
}
