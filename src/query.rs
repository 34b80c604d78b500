//! Query results, one type for CARTO's SQL API and the CARTO Data Warehouse
//! client: columns with their types, rows in column order.

use std::ops::Index;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// A column: its name and the type the service gave it (`"string"`,
/// `"number"` from the SQL API; `"INT64"`, `"STRING"`, `"RECORD"` from
/// BigQuery; a repeated BigQuery field reads `"ARRAY<INT64>"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    name: String,
    type_name: String,
}

impl Column {
    pub(crate) fn new(name: impl Into<String>, type_name: impl Into<String>) -> Column {
        Column {
            name: name.into(),
            type_name: type_name.into(),
        }
    }

    /// The column's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The column's type, as the service named it.
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// Whether the values are numbers (to align them right), by the type.
    #[cfg(feature = "notebook")]
    pub(crate) fn is_numeric(&self) -> bool {
        let t = self.type_name.to_ascii_lowercase();
        matches!(
            t.as_str(),
            "number"
                | "int64"
                | "integer"
                | "float64"
                | "float"
                | "numeric"
                | "bignumeric"
                | "int"
                | "bigint"
                | "double"
                | "decimal"
        )
    }
}

/// One row: values in column order, reachable by column name or position.
///
/// ```
/// # use carto_auth::QueryResult;
/// # fn show(result: &QueryResult) {
/// let row = &result.rows()[0];
/// println!("{} has {}", row["name"], row["population"]);
/// for (column, value) in row.iter() {
///     println!("{column} = {value}");
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    columns: Arc<[Column]>,
    values: Vec<Value>,
}

/// What indexing by an unknown column gives, as `serde_json` does.
static NULL: Value = Value::Null;

impl Row {
    /// The value of `column`, if the result has that column.
    pub fn get(&self, column: &str) -> Option<&Value> {
        let at = self.columns.iter().position(|c| c.name == column)?;
        self.values.get(at)
    }

    /// The values, in column order.
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// `(column name, value)` pairs, in column order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.columns
            .iter()
            .map(|c| c.name.as_str())
            .zip(self.values.iter())
    }

    /// The row as a JSON object. (`serde_json::to_string(&row)` writes the
    /// columns in order; a `serde_json::Map` keeps them sorted by name
    /// unless serde_json's `preserve_order` feature is on.)
    pub fn to_object(&self) -> Map<String, Value> {
        self.iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }
}

impl Index<&str> for Row {
    type Output = Value;

    /// The value of a column; `Value::Null` for a column the result lacks.
    fn index(&self, column: &str) -> &Value {
        self.get(column).unwrap_or(&NULL)
    }
}

impl Index<usize> for Row {
    type Output = Value;

    /// The value at a position; `Value::Null` past the last column.
    fn index(&self, at: usize) -> &Value {
        self.values.get(at).unwrap_or(&NULL)
    }
}

impl Serialize for Row {
    /// A JSON object with the columns in order.
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.values.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// The result of a query: its columns and rows, and what the service said
/// about it.
///
/// ```no_run
/// # fn main() -> carto_auth::Result<()> {
/// let auth = carto_auth::CartoAuth::from_oauth()?;
/// let result = auth.sql_query("carto_dw", "SELECT 1 AS one, 'a' AS letter")?;
/// assert_eq!(result.columns()[0].name(), "one");
/// assert_eq!(result.rows()[0]["letter"], "a");
/// # Ok(()) }
/// ```
///
/// With feature `notebook`, a `QueryResult` at the end of a cell shows as a
/// table.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    columns: Arc<[Column]>,
    rows: Vec<Row>,
    meta: Value,
}

impl QueryResult {
    pub(crate) fn new(columns: Vec<Column>, rows: Vec<Vec<Value>>, meta: Value) -> QueryResult {
        let columns: Arc<[Column]> = columns.into();
        let rows = rows
            .into_iter()
            .map(|values| Row {
                columns: columns.clone(),
                values,
            })
            .collect();
        QueryResult {
            columns,
            rows,
            meta,
        }
    }

    /// The columns: name and type of each.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The rows, values in column order.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// How many rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// What the service said about the query: the SQL API's `meta`
    /// (`cacheHit`, `location`, `totalBytesProcessed`), or BigQuery's job
    /// (`jobId`, `location`, `totalBytesProcessed`, `cacheHit`).
    pub fn meta(&self) -> &Value {
        &self.meta
    }

    /// The rows as the user's own types, by column name.
    ///
    /// ```no_run
    /// # fn main() -> carto_auth::Result<()> {
    /// #[derive(serde::Deserialize)]
    /// struct City { name: String, population: i64 }
    /// let auth = carto_auth::CartoAuth::from_oauth()?;
    /// let cities: Vec<City> = auth
    ///     .sql_query("carto_dw", "SELECT name, population FROM cities")?
    ///     .deserialize()?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Deserialize`] naming the row and serde's complaint (a missing
    /// field, a type that does not fit).
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<Vec<T>> {
        self.rows
            .iter()
            .enumerate()
            .map(|(i, row)| {
                serde_json::from_value(Value::Object(row.to_object())).map_err(|e| {
                    Error::Deserialize {
                        message: format!("row {i}: {e}"),
                    }
                })
            })
            .collect()
    }

    /// The rows as a JSON array of objects, columns in order.
    pub fn to_json(&self) -> String {
        // Serializing JSON values cannot fail.
        serde_json::to_string(&self.rows).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn result() -> QueryResult {
        QueryResult::new(
            vec![Column::new("zeta", "STRING"), Column::new("alpha", "INT64")],
            vec![vec![json!("a"), json!(1)], vec![Value::Null, json!(2)]],
            json!({"cacheHit": false}),
        )
    }

    #[test]
    fn rows_keep_the_column_order_and_answer_by_name_and_position() {
        let r = result();
        assert_eq!((r.len(), r.is_empty()), (2, false));
        let row = &r.rows()[0];
        assert_eq!(
            (&row["zeta"], &row["alpha"], &row[1]),
            (&json!("a"), &json!(1), &json!(1))
        );
        assert_eq!(row["missing"], Value::Null);
        assert_eq!(row[9], Value::Null);
        assert_eq!(
            row.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            ["zeta", "alpha"]
        );
        assert_eq!(
            serde_json::to_string(row).unwrap(),
            r#"{"zeta":"a","alpha":1}"#
        );
        assert_eq!(
            r.to_json(),
            r#"[{"zeta":"a","alpha":1},{"zeta":null,"alpha":2}]"#
        );
        assert_eq!(r.meta()["cacheHit"], false);
    }

    #[test]
    fn rows_deserialize_into_the_users_types_or_say_which_row_does_not_fit() {
        #[derive(Debug, PartialEq, serde::Deserialize)]
        struct Both {
            zeta: Option<String>,
            alpha: i64,
        }
        let got: Vec<Both> = result().deserialize().unwrap();
        assert_eq!(
            got[1],
            Both {
                zeta: None,
                alpha: 2
            }
        );
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Strict {
            zeta: String,
        }
        let err = result().deserialize::<Strict>().unwrap_err().to_string();
        assert!(
            err.contains("row 1") && err.contains("invalid type: null"),
            "{err}"
        );
    }
}
