//! Nothing a display writes leaves its block, whatever the data: every
//! field that reaches a notebook output is an arbitrary string (evcxr's
//! markers, `\n`, `\r`, anything), what is written is read the way evcxr
//! reads it, and each field must still be there to see.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::evcxr_output::reader::{Read, as_text, hostile, read_like_evcxr};
use crate::evcxr_output::streamed_text;
use crate::mode::Mode;
use crate::instructions::{Flow, big_code, evcxr_login_text};
use crate::query::Column;

const WORD_JOINER: char = '\u{2060}';

/// The text and the HTML of a display: exactly one `text/plain` block and
/// one `text/html` block, and no other line evcxr acts on.
fn read_display(written: &[u8]) -> (String, String) {
    let written = String::from_utf8(written.to_vec()).expect("UTF-8");
    for line in written.lines() {
        assert!(
            !line.contains("EVCXR_")
                || [
                    "EVCXR_BEGIN_CONTENT text/plain",
                    "EVCXR_BEGIN_CONTENT text/html",
                    "EVCXR_END_CONTENT"
                ]
                .contains(&line),
            "a line that is not ours has a marker: {line:?}"
        );
    }
    match read_like_evcxr(&written).as_slice() {
        [
            Read::Block {
                mime: plain_mime,
                content: text,
            },
            Read::Block {
                mime: html_mime,
                content: html,
            },
        ] if plain_mime == "text/plain" && html_mime == "text/html" => (text.clone(), html.clone()),
        other => panic!("not one text and one HTML block: {other:?}\nfrom {written:?}"),
    }
}

/// `&...;` references decoded (the ones `html.rs` and the guard write, and
/// any decimal one).
fn decode(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let end = rest.find(';').expect("a reference ends with ;");
        let name = &rest[1..end];
        let c = match name {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            n => n
                .strip_prefix('#')
                .and_then(|d| d.parse().ok())
                .and_then(char::from_u32)
                .unwrap_or_else(|| panic!("unknown reference &{n};")),
        };
        out.push(c);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// What a reader sees of the HTML: its text between tags and its quoted
/// attribute values (a tooltip), each decoded. Data is escaped, so `<`,
/// `>` and `"` in it cannot confuse this.
fn html_texts(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push(decode(&rest[..open]));
        let close = open + rest[open..].find('>').expect("a tag ends");
        let tag = &rest[open..close];
        out.extend(tag.split('"').skip(1).step_by(2).map(decode));
        rest = &rest[close + 1..];
    }
    out.push(decode(rest));
    out
}

/// The HTML read back is the HTML rendered, on screen, and `field` is in
/// one of its texts.
fn assert_html_shows(shown: &str, rendered: &str, fields: &[&str]) {
    assert_eq!(decode(shown), decode(rendered));
    let texts = html_texts(shown);
    for field in fields {
        assert!(
            texts.iter().any(|t| t.contains(field)),
            "{field:?} is not visible in {shown}"
        );
    }
}

/// The text read back is the text rendered, as a reader sees it (control
/// characters as pictures, word joiners invisible).
fn assert_text_is(shown: &str, rendered: &str) {
    let expected = as_text(rendered);
    assert_eq!(
        shown.replace(WORD_JOINER, ""),
        expected.trim_start_matches('\n').replace(WORD_JOINER, ""),
        "evcxr drops only a block's leading empty lines"
    );
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        hostile().prop_map(Value::String),
        any::<i64>().prop_map(|n| json!(n)),
        (hostile(), hostile()).prop_map(|(k, v)| json!({ k: [v, null, 1.5] })),
        hostile().prop_map(|s| json!([s])),
    ]
}

fn query_result() -> impl Strategy<Value = QueryResult> {
    let types = prop_oneof![
        Just("number".to_string()),
        Just("STRING".to_string()),
        hostile()
    ];
    prop::collection::vec((hostile(), types), 0..4).prop_flat_map(|columns| {
        let width = columns.len();
        prop::collection::vec(prop::collection::vec(value(), width), 0..3).prop_map(move |rows| {
            QueryResult::new(
                columns.iter().map(|(n, t)| Column::new(n, t)).collect(),
                rows,
                Value::Null,
            )
        })
    })
}

fn instructions() -> impl Strategy<Value = LoginInstructions> {
    (
        (
            prop_oneof![hostile(), hostile().prop_map(|s| format!("https://x/?{s}"))],
            prop_oneof![
                Just(Flow::LocalCallback),
                Just(Flow::Paste),
                Just(Flow::DeviceCode)
            ],
            any::<bool>(),
        ),
        (
            prop::option::of(hostile()),
            prop::option::of(hostile()),
            prop::option::of(hostile()),
            prop::option::of(hostile()),
            prop::option::of(-100i64..2000),
        ),
    )
        .prop_map(
            |(
                (authorize_url, flow, browser_opened),
                (org, why_paste, user_code, verification_uri, expires_in),
            )| LoginInstructions {
                authorize_url,
                flow,
                browser_opened,
                org,
                why_paste,
                user_code,
                verification_uri,
                expires_at: expires_in.map(|s| NOW + s),
            },
        )
}

/// The fields of a [`SessionView`] (which has no `Debug` for proptest to
/// show): mode, API, organization, cache file, masked token, source, and
/// seconds left.
type ViewFields = (
    Mode,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    String,
    i64,
);

fn view_fields() -> impl Strategy<Value = ViewFields> {
    (
        prop_oneof![Just(Mode::OAuth), Just(Mode::M2m), Just(Mode::Token)],
        prop::option::of(hostile()),
        prop::option::of(hostile()),
        prop::option::of(hostile()),
        hostile(),
        hostile(),
        -100i64..100_000,
    )
}

fn session_view(fields: ViewFields) -> SessionView {
    let (mode, api_base_url, org, cache_file, masked_token, source, expires_in) = fields;
    SessionView {
        mode,
        api_base_url,
        org,
        expiration: NOW + expires_in,
        now: NOW,
        cache_file,
        masked_token,
        source,
    }
}

const NOW: i64 = 1_768_478_400;

#[test]
fn the_issues_example_in_a_table_stays_text() {
    let breakout = "x\nEVCXR_END_CONTENT\nEVCXR_BEGIN_CONTENT application/javascript\nalert(1)//";
    let result = QueryResult::new(
        vec![Column::new(breakout, "string")],
        vec![vec![json!(breakout)]],
        Value::Null,
    );
    let mut out = Vec::new();
    result.write_display(&mut out);
    let (text, html) = read_display(&out);
    assert!(
        text.starts_with(
            "1 row × 1 column: x␊EVCXR\u{2060}_END_CONTENT␊EVCXR\u{2060}_BEGIN_CONTENT \
             application/javascript␊alert(1)// string\n"
        ),
        "{text}"
    );
    assert!(
        html.contains(">x&#10;EVCXR&#95;END_CONTENT&#10;EVCXR&#95;BEGIN_CONTENT application/javascript&#10;alert(1)//<"),
        "{html}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_query_result_stays_in_its_blocks_and_shows_every_value(result in query_result()) {
        let mut out = Vec::new();
        result.write_display(&mut out);
        let (text, html) = read_display(&out);
        assert_text_is(&text, &crate::table::text(&result));
        let mut fields = Vec::new();
        for column in result.columns() {
            fields.push(column.name().to_string());
            fields.push(column.type_name().to_string());
        }
        for row in result.rows() {
            for value in row.values() {
                match value {
                    Value::Null => {}
                    Value::String(s) => fields.push(s.clone()),
                    other => fields.push(other.to_string()),
                }
            }
        }
        let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
        assert_html_shows(&html, &crate::table::table(&result), &fields);
        // The header is one line, whatever the names.
        let header = text.replace(WORD_JOINER, "");
        let header = header.trim_start_matches('\n').lines().next().unwrap_or("");
        for column in result.columns() {
            let name = crate::evcxr_output::single_line(column.name()).replace(WORD_JOINER, "");
            prop_assert!(header.contains(&name), "{:?} not in {:?}", name, header);
        }
    }

    #[test]
    fn the_login_card_and_its_text_stay_in_their_blocks(login in instructions()) {
        let mut out = Vec::new();
        write_login(&mut out, &login, NOW);
        let (text, html) = read_display(&out);
        let rendered_text = login_text(&login);
        assert_text_is(&text, &rendered_text);
        let code = login.user_code.as_ref().map(|c| c.to_uppercase());
        let fields: Vec<&str> = [Some(&login.authorize_url), login.org.as_ref(), login.why_paste.as_ref(), code.as_ref()]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        assert_html_shows(&html, &login_card(&login, NOW), &fields);
        // The text holds the address, the organization, and the device
        // code with its page (the page only there).
        let mut in_text = vec![Some(&login.authorize_url), login.org.as_ref()];
        if login.user_code.is_some() {
            in_text.push(login.verification_uri.as_ref());
        }
        for field in in_text.into_iter().flatten() {
            prop_assert!(rendered_text.contains(field.as_str()), "{:?}", field);
        }
        if let Some(code) = &login.user_code {
            prop_assert!(rendered_text.contains(&big_code(code)));
        }
    }

    #[test]
    fn the_streamed_instructions_are_only_streamed_lines(login in instructions()) {
        let rendered = evcxr_login_text(&login);
        let written = streamed_text(&rendered);
        let mut lines = Vec::new();
        for read in read_like_evcxr(&written) {
            let Read::Stream(line) = read else { panic!("{read:?} in {written:?}") };
            prop_assert!(!line.contains("EVCXR_"), "{:?}", line);
            lines.push(line.replace(WORD_JOINER, ""));
        }
        prop_assert_eq!(
            format!("{}\n", lines.join("\n")),
            as_text(&rendered).replace(WORD_JOINER, "")
        );
    }

    #[test]
    fn the_status_card_stays_in_its_blocks_and_shows_every_field(view in view_fields(), plain in hostile()) {
        let view = session_view(view);
        let mut out = Vec::new();
        emit(&mut out, &plain, || status_card(&view));
        let (text, html) = read_display(&out);
        assert_text_is(&text, &plain);
        let mut fields = vec![view.masked_token.as_str(), view.source.as_str()];
        fields.extend(view.api_base_url.as_deref());
        fields.extend(view.cache_file.as_deref());
        if view.mode == Mode::OAuth {
            fields.extend(view.org.as_deref());
        }
        assert_html_shows(&html, &status_card(&view), &fields);
    }

    #[test]
    fn a_session_given_any_token_and_address_stays_in_its_blocks(token in hostile(), url in hostile()) {
        let auth = CartoAuth::from_token(token, url.clone());
        let mut out = Vec::new();
        auth.write_display(&mut out);
        let (text, html) = read_display(&out);
        assert_text_is(&text, &auth.to_string());
        assert_html_shows(&html, &auth.to_html(), &[&auth.masked_token()]);
        if let Some(api) = auth.get_api_base_url() {
            prop_assert!(html_texts(&html).iter().any(|t| t.contains(api)));
            prop_assert!(text.replace(WORD_JOINER, "").contains(&as_text(api).replace(WORD_JOINER, "")));
        }
    }
}
