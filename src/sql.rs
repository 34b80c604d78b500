//! CARTO's SQL API: one query call for every connection of the
//! organization (the CARTO Data Warehouse is `carto_dw`).

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::api_base_url::endpoint;
use crate::auth::CartoAuth;
use crate::background::run;
use crate::error::{Error, Result, Service};
use crate::http::{describe_body, describe_json};
use crate::query::{Column, QueryResult};

/// Synchronous queries run for up to about a minute at CARTO; a request
/// must outlast that to see the answer (or CARTO's own timeout error).
const SQL_TIMEOUT: Duration = Duration::from_secs(75);

impl CartoAuth {
    /// Runs a query through CARTO's SQL API on one of the organization's
    /// connections (`"carto_dw"` for the CARTO Data Warehouse), renewing
    /// the token first when it has expired.
    ///
    /// The query is POSTed, so the result is fresh: CARTO caches the answers
    /// of `GET` queries for up to a year. Synchronous queries stop after
    /// about a minute and 200,000 rows.
    ///
    /// ```no_run
    /// let auth = carto_auth::CartoAuth::from_oauth()?;
    /// let result = auth.sql_query("carto_dw", "SELECT 1 AS one")?;
    /// assert_eq!(result.rows()[0]["one"], 1);
    /// # Ok::<(), carto_auth::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Sql`] quoting CARTO's `error` and naming the connection (a
    /// 404 for an unknown connection; 401/403 to log in again or check the
    /// connection's permissions); [`Error::NoApiBaseUrl`]; the token's.
    pub fn sql_query(&self, connection: &str, sql: &str) -> Result<QueryResult> {
        self.sql_query_with(connection, sql, Value::Null)
    }

    /// [`sql_query`](Self::sql_query) for async programs, on any executor.
    pub async fn sql_query_async(&self, connection: &str, sql: &str) -> Result<QueryResult> {
        self.sql_query_with_async(connection, sql, Value::Null)
            .await
    }

    /// [`sql_query`](Self::sql_query) with CARTO's `queryParameters`: a
    /// JSON object for named parameters (`@name` on BigQuery and the CARTO
    /// Data Warehouse, `:name` on others), or an array for positional ones
    /// (`?`, `$1`). [`json!`](crate::json) is re-exported for them.
    ///
    /// ```no_run
    /// use carto_auth::json;
    /// let auth = carto_auth::CartoAuth::from_oauth()?;
    /// let big = auth.sql_query_with(
    ///     "carto_dw",
    ///     "SELECT name FROM `carto-demo-data.demo_tables.populated_places` WHERE pop_max > @min",
    ///     json!({"min": 10_000_000}),
    /// )?;
    /// # Ok::<(), carto_auth::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`sql_query`](Self::sql_query).
    pub fn sql_query_with(
        &self,
        connection: &str,
        sql: &str,
        params: Value,
    ) -> Result<QueryResult> {
        let base = self.api_base_url_or_error()?;
        let url = query_url(base, connection)?;
        let token = self.token()?;
        let mut body = json!({"q": sql});
        if !params.is_null() {
            body["queryParameters"] = params;
        }
        let http = self.http().at_least(SQL_TIMEOUT);
        let (status, answer) = http.post_json_raw(Service::SqlApi, &url, &token, &body)?;
        if !(200..300).contains(&status) {
            return Err(sql_error(connection, status, &answer));
        }
        parse_answer(&url, &answer)
    }

    /// [`sql_query_with`](Self::sql_query_with) for async programs, on any
    /// executor.
    pub async fn sql_query_with_async(
        &self,
        connection: &str,
        sql: &str,
        params: Value,
    ) -> Result<QueryResult> {
        let (auth, connection, sql) = (self.clone(), connection.to_string(), sql.to_string());
        run(move || auth.sql_query_with(&connection, &sql, params)).await
    }
}

/// `{api}/v3/sql/{connection}/query`.
fn query_url(api_base_url: &str, connection: &str) -> Result<String> {
    endpoint(api_base_url, &["v3", "sql", connection, "query"])
}

/// CARTO's error answer, quoted, with the connection and what to check.
fn sql_error(connection: &str, status: u16, body: &[u8]) -> Error {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let message = json.as_ref().and_then(|j| match j.get("error") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        Some(other) => Some(other.to_string()),
        None => j.get("message").and_then(Value::as_str).map(str::to_string),
    });
    // JSON without an error text is described by its keys, not as text.
    let shape = || {
        json.as_ref()
            .map_or_else(|| describe_body(body), describe_json)
    };
    Error::Sql {
        connection: connection.to_string(),
        status,
        message: Some(message.map_or_else(shape, |m| m.chars().take(500).collect())),
    }
}

/// `{"rows": [{...}], "schema": [{"name", "type"}], "meta": {...}}` as a
/// result: columns in the schema's order, each row's values in that order.
fn parse_answer(url: &str, body: &[u8]) -> Result<QueryResult> {
    let invalid = |got: String| Error::InvalidResponse {
        service: Service::SqlApi,
        url: url.to_string(),
        expected: "JSON with rows and schema",
        got,
    };
    let mut answer: Value = serde_json::from_slice(body)
        .map_err(|_| invalid(format!("HTTP 200 and {}", describe_body(body))))?;
    let Some(schema) = answer
        .get("schema")
        .and_then(Value::as_array)
        .filter(|_| answer.get("rows").is_some_and(Value::is_array))
    else {
        return Err(invalid(describe_json(&answer)));
    };
    let mut columns: Vec<Column> = schema
        .iter()
        .filter_map(|field| {
            let name = field.get("name")?.as_str()?;
            let type_name = field.get("type").and_then(Value::as_str).unwrap_or("");
            Some(Column::new(name, type_name))
        })
        .collect();
    // The rows are moved out of the answer, not copied: a result can hold
    // 200,000 of them.
    let rows = match answer.get_mut("rows").map(Value::take) {
        Some(Value::Array(rows)) => rows,
        _ => Vec::new(),
    };
    // A row key the schema does not list (an old server, say) still shows.
    let mut extra: Vec<String> = Vec::new();
    {
        let listed: HashSet<&str> = columns.iter().map(Column::name).collect();
        for row in rows.iter().filter_map(Value::as_object) {
            for key in row.keys() {
                if !listed.contains(key.as_str()) && !extra.contains(key) {
                    extra.push(key.clone());
                }
            }
        }
    }
    columns.extend(extra.into_iter().map(|name| Column::new(name, "")));
    let mut values = Vec::with_capacity(rows.len());
    for (i, row) in rows.into_iter().enumerate() {
        let Value::Object(mut row) = row else {
            return Err(invalid(format!(
                "a row (row {i}) that is not a JSON object"
            )));
        };
        values.push(
            columns
                .iter()
                .map(|c| row.remove(c.name()).unwrap_or(Value::Null))
                .collect(),
        );
    }
    Ok(QueryResult::new(
        columns,
        values,
        answer.get_mut("meta").map_or(Value::Null, Value::take),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_is_one_encoded_path_segment() {
        assert_eq!(
            query_url("https://gcp-us-east1.api.carto.com", "carto_dw").unwrap(),
            "https://gcp-us-east1.api.carto.com/v3/sql/carto_dw/query"
        );
        assert_eq!(
            query_url("http://127.0.0.1:9/api/", "my conn/../x?y#z").unwrap(),
            "http://127.0.0.1:9/api/v3/sql/my%20conn%2F..%2Fx%3Fy%23z/query"
        );
        assert!(query_url("not a url", "c").is_err());
    }

    #[test]
    fn an_answer_becomes_columns_in_schema_order_and_rows_in_that_order() {
        let body = br#"{"rows": [{"b": 2, "a": "x"}, {"a": null}],
            "schema": [{"name": "a", "type": "string"}, {"name": "b", "type": "number"}],
            "meta": {"cacheHit": true, "totalBytesProcessed": "10"}}"#;
        let r = parse_answer("u", body).unwrap();
        let names: Vec<&str> = r.columns().iter().map(Column::name).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(r.rows()[0].values(), [Value::from("x"), Value::from(2)]);
        assert_eq!(r.rows()[1].values(), [Value::Null, Value::Null]);
        assert_eq!(r.meta()["cacheHit"], true);
        assert!(matches!(
            parse_answer("u", b"{}"),
            Err(Error::InvalidResponse { .. })
        ));
        assert!(matches!(
            parse_answer("u", b"<html>"),
            Err(Error::InvalidResponse { .. })
        ));
    }

    #[test]
    fn errors_quote_carto_and_name_the_connection() {
        let e = sql_error(
            "carto_dw",
            400,
            br#"{"error": "Syntax error: Unexpected keyword FORM at [1:10]"}"#,
        );
        let msg = e.to_string();
        assert!(
            msg.contains("\"carto_dw\"") && msg.contains("Unexpected keyword FORM"),
            "{msg}"
        );
        let msg = sql_error("nope", 404, br#"{"error": "Connection not found"}"#).to_string();
        assert!(msg.contains("no connection named \"nope\""), "{msg}");
        let msg = sql_error("c", 502, b"<html>bad gateway</html>").to_string();
        assert!(msg.contains("HTTP 502") && msg.contains("HTML"), "{msg}");
    }
}
