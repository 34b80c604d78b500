//! A query result as a notebook table. Feature `notebook`.

use serde_json::Value;

use crate::evcxr_output::single_line;
use crate::html::{CARD, MUTED, escape};
use crate::query::{Column, QueryResult};

/// Rows shown; the rest are counted.
pub(crate) const SHOWN_ROWS: usize = 20;
/// Characters of a value shown in its cell; the rest is in its tooltip.
const CELL_CHARS: usize = 80;
/// Characters of a value in its tooltip (a WKT geometry can be megabytes).
const TOOLTIP_CHARS: usize = 4000;

const TABLE: &str = "border-collapse:collapse;font-size:.9em;color:inherit;background:transparent";
const HEAD: &str = "padding:4px 10px;border-bottom:2px solid var(--jp-border-color1,rgba(128,128,128,.6));\
    background:var(--jp-layout-color2,rgba(128,128,128,.12));color:inherit;vertical-align:bottom;\
    white-space:nowrap";
const TYPE: &str = "display:block;font-weight:400;font-size:.8em;opacity:.7;\
    font-family:var(--jp-code-font-family,monospace)";
const DATA: &str = "padding:3px 10px;border-bottom:1px solid var(--jp-border-color2,rgba(128,128,128,.25));\
    color:inherit;background:transparent;vertical-align:top;max-width:36em;overflow-wrap:anywhere";
const NULL: &str = "font-style:italic;opacity:.55";

/// The table: a header of names and types, the first [`SHOWN_ROWS`] rows,
/// and how many more there are.
pub(crate) fn table(result: &QueryResult) -> String {
    let columns = result.columns();
    let mut html = format!(
        "<div role=\"region\" aria-label=\"Query result\" style=\"{CARD};max-width:100%;overflow-x:auto\">"
    );
    html.push_str(&format!(
        "<div style=\"{MUTED}\">{} × {}</div>",
        count(result.len(), "row"),
        count(columns.len(), "column")
    ));
    html.push_str(&format!("<table style=\"{TABLE}\"><thead><tr>"));
    for column in columns {
        html.push_str(&format!(
            "<th scope=\"col\" style=\"{HEAD};text-align:{}\">{}<span style=\"{TYPE}\">{}</span></th>",
            align(column),
            escape(column.name()),
            escape(column.type_name())
        ));
    }
    html.push_str("</tr></thead><tbody>");
    for row in result.rows().iter().take(SHOWN_ROWS) {
        html.push_str("<tr>");
        for (column, value) in columns.iter().zip(row.values()) {
            html.push_str(&format!(
                "<td style=\"{DATA};text-align:{}\">{}</td>",
                align(column),
                cell(value)
            ));
        }
        html.push_str("</tr>");
    }
    html.push_str("</tbody></table>");
    if result.len() > SHOWN_ROWS {
        html.push_str(&format!(
            "<div style=\"{MUTED}\">{} more {} (<code>result.rows()</code> has them all)</div>",
            result.len() - SHOWN_ROWS,
            if result.len() - SHOWN_ROWS == 1 {
                "row"
            } else {
                "rows"
            }
        ));
    }
    html.push_str("</div>");
    html
}

fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

fn align(column: &Column) -> &'static str {
    if column.is_numeric() { "right" } else { "left" }
}

/// One value: NULL set apart from the text "null", numbers as written,
/// strings as they are, nested values as compact JSON; long ones shortened
/// with the full text on hover. Everything escaped.
fn cell(value: &Value) -> String {
    let text = match value {
        Value::Null => return format!("<span style=\"{NULL}\">NULL</span>"),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let chars = text.chars().count();
    if chars <= CELL_CHARS {
        return escape(&text);
    }
    let shown: String = text.chars().take(CELL_CHARS - 1).collect();
    let mut tooltip: String = text.chars().take(TOOLTIP_CHARS).collect();
    if chars > TOOLTIP_CHARS {
        tooltip.push_str(&format!("… ({chars} characters)"));
    }
    format!(
        "<span title=\"{}\">{}…</span>",
        escape(&tooltip),
        escape(&shown)
    )
}

/// The plain-text alternative: the shape and the first rows as JSON lines.
/// Names and types in the header show their control characters (a line
/// break in a column name must not start a line that looks like a row);
/// the JSON of the rows escapes its own.
pub(crate) fn text(result: &QueryResult) -> String {
    let mut out = format!(
        "{} × {}: {}\n",
        count(result.len(), "row"),
        count(result.columns().len(), "column"),
        result
            .columns()
            .iter()
            .map(|c| format!("{} {}", single_line(c.name()), single_line(c.type_name())))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for row in result.rows().iter().take(SHOWN_ROWS) {
        out.push_str(&serde_json::to_string(row).unwrap_or_default());
        out.push('\n');
    }
    if result.len() > SHOWN_ROWS {
        out.push_str(&format!("... {} more\n", result.len() - SHOWN_ROWS));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn result(rows: usize) -> QueryResult {
        QueryResult::new(
            vec![
                Column::new("name", "STRING"),
                Column::new("pop", "INT64"),
                Column::new("note", "string"),
            ],
            (0..rows)
                .map(|i| vec![json!(format!("city {i}")), json!(i * 1000), Value::Null])
                .collect(),
            Value::Null,
        )
    }

    #[test]
    fn twenty_rows_are_shown_and_the_rest_counted() {
        let html = table(&result(25));
        assert_eq!(html.matches("<tr>").count(), 1 + SHOWN_ROWS);
        assert!(html.contains("5 more rows"), "{html}");
        assert!(html.contains("25 rows × 3 columns"));
        assert!(html.contains(">city 19<") && !html.contains(">city 20<"));
        let small = table(&result(1));
        assert!(!small.contains("more row") && small.contains("1 row × 3 columns"));
    }

    #[test]
    fn headers_have_types_and_numbers_align_right() {
        let html = table(&result(1));
        assert!(html.contains("pop<span style=\"display:block"), "{html}");
        assert!(html.contains(">INT64</span>"));
        assert!(html.contains("text-align:right\">0</td>"), "{html}");
        assert!(html.contains("text-align:left\">city 0</td>"), "{html}");
    }

    #[test]
    fn null_is_not_the_text_null_and_everything_is_escaped() {
        let r = QueryResult::new(
            vec![
                Column::new("a", "STRING"),
                Column::new("b", "STRING"),
                Column::new("<x>", "T\""),
            ],
            vec![vec![
                Value::Null,
                json!("null"),
                json!("<script>alert(1)</script>"),
            ]],
            Value::Null,
        );
        let html = table(&r);
        assert!(
            html.contains("font-style:italic;opacity:.55\">NULL</span>"),
            "{html}"
        );
        assert!(html.contains(">null</td>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("&lt;x&gt;") && html.contains("T&quot;"));
        assert!(!html.contains("<script"));
    }

    #[test]
    fn long_values_are_shortened_with_the_full_text_on_hover() {
        let wkt = format!("POLYGON(({}))", "1 2, ".repeat(30));
        let r = QueryResult::new(
            vec![
                Column::new("geom", "GEOGRAPHY"),
                Column::new("nested", "RECORD"),
            ],
            vec![vec![json!(wkt), json!({"k": "<v>".repeat(30)})]],
            Value::Null,
        );
        let html = table(&r);
        assert!(html.contains(&format!("title=\"{wkt}\"")), "{html}");
        assert!(
            html.contains(&format!(">{}…</span>", &wkt[..CELL_CHARS - 1])),
            "{html}"
        );
        assert!(
            html.contains("title=\"{&quot;k&quot;:&quot;&lt;v&gt;"),
            "{html}"
        );
        let huge = "x".repeat(TOOLTIP_CHARS * 3);
        let html = table(&QueryResult::new(
            vec![Column::new("h", "STRING")],
            vec![vec![json!(huge)]],
            Value::Null,
        ));
        assert!(html.contains(&format!("… ({} characters)", TOOLTIP_CHARS * 3)));
        assert!(html.len() < TOOLTIP_CHARS * 2);
    }

    #[test]
    fn the_text_alternative_has_the_shape_and_rows_in_column_order() {
        let t = text(&result(22));
        assert!(
            t.starts_with("22 rows × 3 columns: name STRING, pop INT64, note string\n"),
            "{t}"
        );
        assert!(
            t.contains("{\"name\":\"city 0\",\"pop\":0,\"note\":null}\n"),
            "{t}"
        );
        assert!(t.ends_with("... 2 more\n"));
    }
}
