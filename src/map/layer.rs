//! What a map draws: a CARTO source (a query, a table or a tileset, as
//! vector features, H3 cells or quadbin cells) and how it looks.
//! Feature `notebook`.

use serde_json::{Map as JsonMap, Value, json};

use crate::error::{Error, Result};
use crate::map::style::{Color, ColorBy, Paint};

/// How a layer's data is kept at CARTO, and how deck.gl draws it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    VectorQuery,
    VectorTable,
    VectorTileset,
    H3Query,
    H3Table,
    QuadbinQuery,
    QuadbinTable,
}

impl Kind {
    /// The source function of @deck.gl/carto 9.x (`deck.carto.<name>`).
    fn source_function(self) -> &'static str {
        match self {
            Kind::VectorQuery => "vectorQuerySource",
            Kind::VectorTable => "vectorTableSource",
            Kind::VectorTileset => "vectorTilesetSource",
            Kind::H3Query => "h3QuerySource",
            Kind::H3Table => "h3TableSource",
            Kind::QuadbinQuery => "quadbinQuerySource",
            Kind::QuadbinTable => "quadbinTableSource",
        }
    }

    /// The layer class of @deck.gl/carto 9.x (`deck.carto.<name>`).
    fn layer_class(self) -> &'static str {
        match self {
            Kind::VectorQuery | Kind::VectorTable | Kind::VectorTileset => "VectorTileLayer",
            Kind::H3Query | Kind::H3Table => "H3TileLayer",
            Kind::QuadbinQuery | Kind::QuadbinTable => "QuadbinTileLayer",
        }
    }

    fn is_query(self) -> bool {
        matches!(self, Kind::VectorQuery | Kind::H3Query | Kind::QuadbinQuery)
    }

    fn is_vector(self) -> bool {
        matches!(
            self,
            Kind::VectorQuery | Kind::VectorTable | Kind::VectorTileset
        )
    }

    fn describe(self) -> &'static str {
        match self {
            Kind::VectorQuery => "vector query",
            Kind::VectorTable => "vector table",
            Kind::VectorTileset => "vector tileset",
            Kind::H3Query => "H3 query",
            Kind::H3Table => "H3 table",
            Kind::QuadbinQuery => "quadbin query",
            Kind::QuadbinTable => "quadbin table",
        }
    }
}

/// One layer of a [`Map`](crate::Map): a CARTO source and its style.
///
/// Vector layers draw the features of a query, a table or a tileset; H3 and
/// quadbin layers draw cells aggregated by CARTO with `aggregation_exp`
/// (such as `"SUM(population) AS population"`).
///
/// ```
/// use carto_auth::{ColorBy, Layer, json};
/// let stores = Layer::vector_query("carto_dw", "SELECT geom, name, revenue FROM stores WHERE revenue > @min")
///     .query_parameters(json!({"min": 1000}))
///     .fill_color_by(ColorBy::range("revenue", 1e3, 1e6, [255, 255, 204], [189, 0, 38]))
///     .point_radius(6.0)
///     .tooltip(["name", "revenue"]);
/// let population = Layer::h3_table("carto_dw", "carto-demo-data.demo_tables.population_h3", "SUM(population) AS population")
///     .opacity(0.7);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    kind: Kind,
    connection: String,
    /// The SQL, the table or the tileset.
    source: String,
    aggregation_exp: Option<String>,
    aggregation_res_level: Option<u8>,
    spatial_data_column: Option<String>,
    query_parameters: Option<Value>,
    fill: Paint,
    line: Paint,
    line_width: f64,
    point_radius: f64,
    opacity: f64,
    tooltip: Vec<String>,
}

impl Layer {
    fn new(
        kind: Kind,
        connection: impl Into<String>,
        source: impl Into<String>,
        aggregation_exp: Option<String>,
    ) -> Layer {
        Layer {
            kind,
            connection: connection.into(),
            source: source.into(),
            aggregation_exp,
            aggregation_res_level: None,
            spatial_data_column: None,
            query_parameters: None,
            fill: Paint::Constant(Color::rgb(3, 111, 226)),
            line: Paint::Constant(Color::rgb(255, 255, 255)),
            line_width: 1.0,
            point_radius: 4.0,
            opacity: 1.0,
            tooltip: Vec::new(),
        }
    }

    /// The features (with a `geom` column) of a SQL query on a connection
    /// (`"carto_dw"` for the CARTO Data Warehouse).
    pub fn vector_query(connection: impl Into<String>, sql: impl Into<String>) -> Layer {
        Layer::new(Kind::VectorQuery, connection, sql, None)
    }

    /// The features of a table (`project.dataset.table` on BigQuery).
    pub fn vector_table(connection: impl Into<String>, table: impl Into<String>) -> Layer {
        Layer::new(Kind::VectorTable, connection, table, None)
    }

    /// The features of a tileset made in CARTO.
    pub fn vector_tileset(connection: impl Into<String>, tileset: impl Into<String>) -> Layer {
        Layer::new(Kind::VectorTileset, connection, tileset, None)
    }

    /// H3 cells of a query (an `h3` column), aggregated by
    /// `aggregation_exp`, e.g. `"SUM(population) AS population"`.
    pub fn h3_query(
        connection: impl Into<String>,
        sql: impl Into<String>,
        aggregation_exp: impl Into<String>,
    ) -> Layer {
        Layer::new(Kind::H3Query, connection, sql, Some(aggregation_exp.into()))
    }

    /// H3 cells of a table, aggregated by `aggregation_exp`.
    pub fn h3_table(
        connection: impl Into<String>,
        table: impl Into<String>,
        aggregation_exp: impl Into<String>,
    ) -> Layer {
        Layer::new(
            Kind::H3Table,
            connection,
            table,
            Some(aggregation_exp.into()),
        )
    }

    /// Quadbin cells of a query (a `quadbin` column), aggregated by
    /// `aggregation_exp`.
    pub fn quadbin_query(
        connection: impl Into<String>,
        sql: impl Into<String>,
        aggregation_exp: impl Into<String>,
    ) -> Layer {
        Layer::new(
            Kind::QuadbinQuery,
            connection,
            sql,
            Some(aggregation_exp.into()),
        )
    }

    /// Quadbin cells of a table, aggregated by `aggregation_exp`.
    pub fn quadbin_table(
        connection: impl Into<String>,
        table: impl Into<String>,
        aggregation_exp: impl Into<String>,
    ) -> Layer {
        Layer::new(
            Kind::QuadbinTable,
            connection,
            table,
            Some(aggregation_exp.into()),
        )
    }

    /// The query's parameters, as for
    /// [`CartoAuth::sql_query_with`](crate::CartoAuth::sql_query_with): an
    /// object for named ones (`@name`), an array for positional ones. Query
    /// layers only.
    pub fn query_parameters(mut self, parameters: Value) -> Layer {
        self.query_parameters = Some(parameters);
        self
    }

    /// The column with the geometry or the cell, when it is not the
    /// default (`geom`, `h3`, `quadbin`).
    pub fn spatial_data_column(mut self, column: impl Into<String>) -> Layer {
        self.spatial_data_column = Some(column.into());
        self
    }

    /// The resolution H3 and quadbin cells are aggregated to, relative to
    /// a tile (CARTO's default: 4 for H3, 6 for quadbin).
    pub fn aggregation_res_level(mut self, level: u8) -> Layer {
        self.aggregation_res_level = Some(level);
        self
    }

    /// One fill colour for every feature or cell.
    pub fn fill_color(mut self, color: impl Into<Color>) -> Layer {
        self.fill = Paint::Constant(color.into());
        self
    }

    /// The fill colour by a column: a category, a range, or classes.
    pub fn fill_color_by(mut self, by: ColorBy) -> Layer {
        self.fill = Paint::By(by);
        self
    }

    /// One colour for lines and outlines.
    pub fn line_color(mut self, color: impl Into<Color>) -> Layer {
        self.line = Paint::Constant(color.into());
        self
    }

    /// The line and outline colour by a column.
    pub fn line_color_by(mut self, by: ColorBy) -> Layer {
        self.line = Paint::By(by);
        self
    }

    /// The width of lines and outlines, in screen pixels (0 for none).
    pub fn line_width(mut self, pixels: f64) -> Layer {
        self.line_width = pixels;
        self
    }

    /// The radius of points, in screen pixels (4 by default).
    pub fn point_radius(mut self, pixels: f64) -> Layer {
        self.point_radius = pixels;
        self
    }

    /// The layer's opacity, from 0 (invisible) to 1 (opaque, the default).
    pub fn opacity(mut self, opacity: f64) -> Layer {
        self.opacity = opacity;
        self
    }

    /// The columns shown, name and value, when the pointer is over a
    /// feature or cell. None by default.
    pub fn tooltip<S: Into<String>>(mut self, columns: impl IntoIterator<Item = S>) -> Layer {
        self.tooltip = columns.into_iter().map(Into::into).collect();
        self
    }

    /// The connection name.
    pub(crate) fn connection(&self) -> &str {
        &self.connection
    }

    /// The SQL, the table or the tileset: what a token's grant names.
    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    /// "vector query on carto_dw", for the text form of a map.
    pub(crate) fn describe(&self) -> String {
        format!("{} on {}", self.kind.describe(), self.connection)
    }

    /// Refuses what the Maps API or deck.gl would refuse later, in the
    /// page where it is harder to read.
    pub(crate) fn check(&self) -> Result<()> {
        let invalid = |what: &str, value: String, reason| {
            Err(Error::InvalidSetting {
                what: format!("the {} layer's {what}", self.kind.describe()),
                value,
                reason,
            })
        };
        if self.connection.trim().is_empty() {
            return invalid(
                "connection",
                self.connection.clone(),
                "a connection name is needed, such as \"carto_dw\" (CARTO Workspace > Connections)",
            );
        }
        if self.source.trim().is_empty() {
            return invalid(
                "source",
                self.source.clone(),
                "the SQL, table or tileset must not be empty",
            );
        }
        if let Some(exp) = &self.aggregation_exp
            && exp.trim().is_empty()
        {
            return invalid(
                "aggregation expression",
                exp.clone(),
                "H3 and quadbin layers need one, such as \"SUM(population) AS population\"",
            );
        }
        if let Some(params) = &self.query_parameters {
            if !self.kind.is_query() {
                return invalid(
                    "query parameters",
                    params.to_string(),
                    "only query layers take parameters",
                );
            }
            if !params.is_object() && !params.is_array() {
                return invalid(
                    "query parameters",
                    params.to_string(),
                    "an object (named parameters) or an array (positional ones) is needed",
                );
            }
        }
        for (name, value) in [
            ("opacity", self.opacity),
            ("point radius", self.point_radius),
            ("line width", self.line_width),
        ] {
            if !value.is_finite() || value < 0.0 || (name == "opacity" && value > 1.0) {
                return invalid(
                    name,
                    value.to_string(),
                    "a finite number from 0 (opacity: up to 1) is needed",
                );
            }
        }
        for paint in [&self.fill, &self.line] {
            if let Paint::By(by) = paint
                && let Err(reason) = by.check()
            {
                return invalid("colour", by.0.to_string(), reason);
            }
        }
        Ok(())
    }

    /// What the page makes of this layer: the source function and its
    /// options (without credentials, which the page adds), the layer class
    /// and its style.
    pub(crate) fn spec(&self, id: usize) -> Value {
        let mut options = JsonMap::new();
        options.insert("connectionName".into(), json!(self.connection));
        let key = if self.kind.is_query() {
            "sqlQuery"
        } else {
            "tableName"
        };
        options.insert(key.into(), json!(self.source));
        if let Some(exp) = &self.aggregation_exp {
            options.insert("aggregationExp".into(), json!(exp));
        }
        if let Some(level) = self.aggregation_res_level {
            options.insert("aggregationResLevel".into(), json!(level));
        }
        if let Some(column) = &self.spatial_data_column {
            options.insert("spatialDataColumn".into(), json!(column));
        }
        if let Some(params) = &self.query_parameters {
            options.insert("queryParameters".into(), params.clone());
        }
        if self.kind == Kind::VectorTileset {
            // Its widget source would start a worker from a CDN address.
            options.insert("widgetWorker".into(), json!(false));
        }
        json!({
            "id": format!("layer-{id}"),
            "source": self.kind.source_function(),
            "options": Value::Object(options),
            "layer": self.kind.layer_class(),
            "vector": self.kind.is_vector(),
            "fill": self.fill.json(),
            "line": self.line.json(),
            "lineWidth": self.line_width,
            "pointRadius": self.point_radius,
            "opacity": self.opacity,
            "tooltip": self.tooltip,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_constructor_names_its_source_function_and_layer_class() {
        let cases = [
            (
                Layer::vector_query("c", "q"),
                "vectorQuerySource",
                "VectorTileLayer",
                "sqlQuery",
            ),
            (
                Layer::vector_table("c", "t"),
                "vectorTableSource",
                "VectorTileLayer",
                "tableName",
            ),
            (
                Layer::vector_tileset("c", "t"),
                "vectorTilesetSource",
                "VectorTileLayer",
                "tableName",
            ),
            (
                Layer::h3_query("c", "q", "COUNT(*) AS n"),
                "h3QuerySource",
                "H3TileLayer",
                "sqlQuery",
            ),
            (
                Layer::h3_table("c", "t", "COUNT(*) AS n"),
                "h3TableSource",
                "H3TileLayer",
                "tableName",
            ),
            (
                Layer::quadbin_query("c", "q", "COUNT(*) AS n"),
                "quadbinQuerySource",
                "QuadbinTileLayer",
                "sqlQuery",
            ),
            (
                Layer::quadbin_table("c", "t", "COUNT(*) AS n"),
                "quadbinTableSource",
                "QuadbinTileLayer",
                "tableName",
            ),
        ];
        for (layer, source, class, key) in cases {
            let spec = layer.spec(0);
            assert_eq!(spec["source"], source);
            assert_eq!(spec["layer"], class);
            assert_eq!(spec["options"]["connectionName"], "c");
            assert!(spec["options"][key].is_string(), "{spec}");
            assert!(layer.check().is_ok());
        }
        let h3 = Layer::h3_query("c", "q", "SUM(p) AS p").spec(3);
        assert_eq!(h3["options"]["aggregationExp"], "SUM(p) AS p");
        assert_eq!(h3["id"], "layer-3");
    }

    #[test]
    fn styles_and_parameters_reach_the_spec() {
        let layer = Layer::vector_query("carto_dw", "SELECT * FROM t WHERE a > @a")
            .query_parameters(json!({"a": 1}))
            .fill_color([255, 0, 0])
            .line_color_by(ColorBy::category("kind", [("x", [1, 2, 3])], [9, 9, 9]))
            .point_radius(7.0)
            .opacity(0.5)
            .tooltip(["name"]);
        let spec = layer.spec(0);
        assert_eq!(spec["options"]["queryParameters"], json!({"a": 1}));
        assert_eq!(
            spec["fill"],
            json!({"by": "constant", "color": [255, 0, 0, 255]})
        );
        assert_eq!(spec["line"]["colors"], json!([["x", [1, 2, 3, 255]]]));
        assert_eq!(spec["pointRadius"], 7.0);
        assert_eq!(spec["opacity"], 0.5);
        assert_eq!(spec["tooltip"], json!(["name"]));
    }

    #[test]
    fn what_the_api_would_refuse_is_refused_here_with_the_reason() {
        let reason = |layer: Layer| layer.check().unwrap_err().to_string();
        assert!(reason(Layer::vector_query("", "SELECT 1")).contains("connection name is needed"));
        assert!(reason(Layer::h3_query("c", "q", " ")).contains("SUM(population)"));
        assert!(
            reason(Layer::vector_table("c", "t").query_parameters(json!({"a": 1})))
                .contains("only query layers")
        );
        assert!(
            reason(Layer::vector_query("c", "q").query_parameters(json!(3))).contains("an object")
        );
        assert!(reason(Layer::vector_query("c", "q").opacity(1.5)).contains("up to 1"));
        assert!(
            reason(Layer::vector_query("c", "q").fill_color_by(ColorBy::bins(
                "p",
                [1.0],
                [[0, 0, 0]]
            )))
            .contains("one colour more")
        );
        assert!(
            reason(Layer::vector_query("c", "q").fill_color_by(ColorBy::range(
                "p",
                5.0,
                5.0,
                [0, 0, 0],
                [1, 1, 1]
            )))
            .contains("min below max")
        );
    }
}
