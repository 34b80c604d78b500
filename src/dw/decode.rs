//! BigQuery's JSON rows decoded by their schema: every scalar comes as a
//! string (or null), RECORD cells as nested `{"f": [...]}`, REPEATED cells
//! as arrays of `{"v": ...}`. Pure functions.

use serde_json::{Map, Number, Value};
use tz::UtcDateTime;

use crate::query::Column;

/// A field of a result's schema: what decoding needs of BigQuery's
/// `TableFieldSchema`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Field {
    pub(crate) name: String,
    /// `INT64`, `STRING`, `RECORD`... (BigQuery's legacy names too:
    /// `INTEGER`, `FLOAT`, `BOOLEAN`, `STRUCT`).
    pub(crate) kind: String,
    pub(crate) repeated: bool,
    pub(crate) fields: Vec<Field>,
}

impl Field {
    /// The column a top-level field makes: `ARRAY<type>` when repeated.
    pub(crate) fn column(&self) -> Column {
        let kind = if self.repeated {
            format!("ARRAY<{}>", self.kind)
        } else {
            self.kind.clone()
        };
        Column::new(self.name.clone(), kind)
    }
}

/// One row's cell values (each `row.f[i].v`), decoded in schema order; a
/// missing cell is null.
pub(crate) fn decode_row<'a>(
    fields: &[Field],
    cells: impl IntoIterator<Item = Option<&'a Value>>,
) -> Vec<Value> {
    let mut cells = cells.into_iter();
    fields
        .iter()
        .map(|field| decode_cell(field, cells.next().flatten()))
        .collect()
}

/// A cell `{"v": x}` as its `x`.
fn cell_value(cell: &Value) -> &Value {
    cell.get("v").unwrap_or(&Value::Null)
}

/// A field's value: REPEATED as an array, RECORD as an object, scalars by
/// type.
fn decode_cell(field: &Field, value: Option<&Value>) -> Value {
    let value = value.unwrap_or(&Value::Null);
    if field.repeated {
        return match value {
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|item| decode_one(field, cell_value(item)))
                    .collect(),
            ),
            // An empty REPEATED field may come as null: an empty array.
            Value::Null => Value::Array(Vec::new()),
            other => decode_one(field, other),
        };
    }
    decode_one(field, value)
}

fn decode_one(field: &Field, value: &Value) -> Value {
    match value {
        Value::Null => Value::Null,
        Value::Object(record) if is_record(&field.kind) => {
            let cells = record
                .get("f")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice);
            let mut object = Map::new();
            for (i, sub) in field.fields.iter().enumerate() {
                object.insert(
                    sub.name.clone(),
                    decode_cell(sub, cells.get(i).map(cell_value)),
                );
            }
            Value::Object(object)
        }
        Value::String(text) => decode_scalar(&field.kind, text),
        // Not BigQuery's wire format, but nothing is lost by keeping it.
        other => other.clone(),
    }
}

fn is_record(kind: &str) -> bool {
    kind.eq_ignore_ascii_case("RECORD") || kind.eq_ignore_ascii_case("STRUCT")
}

/// A scalar by its type: INT64 an integer, FLOAT64 a number (NaN and the
/// infinities, which JSON has no number for, stay strings), BOOL a bool,
/// TIMESTAMP an RFC 3339 UTC string, JSON the parsed value; NUMERIC and
/// BIGNUMERIC stay strings (exact), as do STRING, GEOGRAPHY (WKT), DATE,
/// TIME, DATETIME, BYTES (base64) and anything unknown.
fn decode_scalar(kind: &str, text: &str) -> Value {
    match kind.to_ascii_uppercase().as_str() {
        "INT64" | "INTEGER" => text
            .parse::<i64>()
            .map_or_else(|_| Value::String(text.into()), Value::from),
        "FLOAT64" | "FLOAT" => text
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map_or_else(|| Value::String(text.into()), Value::Number),
        "BOOL" | "BOOLEAN" => match text {
            "true" | "TRUE" => Value::Bool(true),
            "false" | "FALSE" => Value::Bool(false),
            _ => Value::String(text.into()),
        },
        "TIMESTAMP" => timestamp(text).map_or_else(|| Value::String(text.into()), Value::String),
        "JSON" => serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.into())),
        _ => Value::String(text.into()),
    }
}

/// BigQuery's TIMESTAMP as RFC 3339 UTC: microseconds since the epoch (what
/// `formatOptions.useInt64Timestamp` asks for, exact), or seconds as a
/// float (`"1.7E9"`, the API's default).
fn timestamp(text: &str) -> Option<String> {
    let micros = match text.parse::<i64>() {
        Ok(micros) => micros,
        Err(_) => {
            let seconds = text.parse::<f64>().ok().filter(|s| s.is_finite())?;
            (seconds * 1e6).round() as i64
        }
    };
    let at = UtcDateTime::from_total_nanoseconds(i128::from(micros) * 1000).ok()?;
    // BigQuery's range; anything else is not a TIMESTAMP and stays as sent.
    if !(1..=9999).contains(&at.year()) {
        return None;
    }
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        at.year(),
        at.month(),
        at.month_day(),
        at.hour(),
        at.minute(),
        at.second()
    );
    let fraction = at.nanoseconds() / 1000;
    if fraction != 0 {
        let digits = format!("{fraction:06}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    out.push('Z');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(name: &str, kind: &str) -> Field {
        Field {
            name: name.into(),
            kind: kind.into(),
            repeated: false,
            fields: Vec::new(),
        }
    }

    fn row(fields: &[Field], values: Vec<Value>) -> Vec<Value> {
        decode_row(fields, values.iter().map(Some))
    }

    #[test]
    fn every_scalar_type_decodes_as_the_issue_says() {
        let fields: Vec<Field> = [
            "INT64",
            "FLOAT64",
            "NUMERIC",
            "BIGNUMERIC",
            "BOOL",
            "STRING",
            "GEOGRAPHY",
            "DATE",
            "TIME",
            "DATETIME",
            "TIMESTAMP",
            "BYTES",
            "JSON",
            "INTEGER",
            "FLOAT",
            "BOOLEAN",
        ]
        .iter()
        .map(|k| field(&k.to_lowercase(), k))
        .collect();
        let row = row(
            &fields,
            vec![
                json!("-42"),
                json!("2.5"),
                json!("123456789012345678901234567890.123456789"),
                json!("1e40"),
                json!("true"),
                json!("null"),
                json!("POINT(-3.7 40.4)"),
                json!("2024-02-29"),
                json!("12:34:56.789"),
                json!("2024-02-29T12:34:56"),
                json!("1709209896123456"),
                json!("aGVsbG8="),
                json!("{\"a\":[1,{\"b\":null}]}"),
                json!("7"),
                json!("NaN"),
                json!("false"),
            ],
        );
        assert_eq!(
            row,
            vec![
                json!(-42),
                json!(2.5),
                json!("123456789012345678901234567890.123456789"),
                json!("1e40"),
                json!(true),
                json!("null"),
                json!("POINT(-3.7 40.4)"),
                json!("2024-02-29"),
                json!("12:34:56.789"),
                json!("2024-02-29T12:34:56"),
                json!("2024-02-29T12:31:36.123456Z"),
                json!("aGVsbG8="),
                json!({"a": [1, {"b": null}]}),
                json!(7),
                json!("NaN"),
                json!(false),
            ]
        );
    }

    #[test]
    fn timestamps_come_as_micros_or_float_seconds() {
        assert_eq!(timestamp("0").as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(timestamp("1.7E9").as_deref(), Some("2023-11-14T22:13:20Z"));
        assert_eq!(
            timestamp("1700000000.5").as_deref(),
            Some("2023-11-14T22:13:20.5Z")
        );
        assert_eq!(
            timestamp("-1").as_deref(),
            Some("1969-12-31T23:59:59.999999Z")
        );
        assert_eq!(
            timestamp("253402300799999999").as_deref(),
            Some("9999-12-31T23:59:59.999999Z")
        );
        assert_eq!(
            timestamp("-62135596800000000").as_deref(),
            Some("0001-01-01T00:00:00Z")
        );
        assert_eq!(timestamp("253402300800000000"), None);
        assert_eq!(timestamp("1e300"), None);
        assert_eq!(timestamp("soon"), None);
        assert_eq!(decode_scalar("TIMESTAMP", "soon"), json!("soon"));
    }

    #[test]
    fn nulls_records_and_repeated_fields() {
        let point = Field {
            name: "point".into(),
            kind: "RECORD".into(),
            repeated: false,
            fields: vec![
                field("x", "FLOAT64"),
                Field {
                    name: "tags".into(),
                    kind: "STRING".into(),
                    repeated: true,
                    fields: Vec::new(),
                },
                Field {
                    name: "inner".into(),
                    kind: "STRUCT".into(),
                    repeated: false,
                    fields: vec![field("n", "INT64")],
                },
            ],
        };
        let many = Field {
            repeated: true,
            ..field("ids", "INT64")
        };
        let points = Field {
            repeated: true,
            ..point.clone()
        };
        let fields = vec![point, many, points, field("nothing", "STRING")];
        let record = json!({"f": [{"v": "1.5"}, {"v": [{"v": "a"}, {"v": "b"}]}, {"v": {"f": [{"v": "3"}]}}]});
        let decoded_row = row(
            &fields,
            vec![
                record.clone(),
                json!([{"v": "1"}, {"v": "2"}]),
                json!([{"v": record}]),
                Value::Null,
            ],
        );
        let decoded = json!({"x": 1.5, "tags": ["a", "b"], "inner": {"n": 3}});
        assert_eq!(
            decoded_row,
            vec![
                decoded.clone(),
                json!([1, 2]),
                json!([decoded]),
                Value::Null
            ]
        );
        // A short row (or a null REPEATED) does not panic.
        assert_eq!(
            decode_row(&fields, std::iter::empty()),
            vec![Value::Null, json!([]), json!([]), Value::Null]
        );
        assert_eq!(fields[1].column().type_name(), "ARRAY<INT64>");
    }
}
