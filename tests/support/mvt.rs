//! Tiles as the fake Maps API sends them, encoded by hand: Mapbox Vector
//! Tiles (spec 2.1) of points and polygons at known places, and CARTO's
//! spatial-index tiles of H3 cells (the protobuf @deck.gl/carto 9.x reads
//! in `carto-spatial-tile.js`).

/// A feature at a known place, with text properties.
#[derive(Debug, Clone)]
pub enum Geometry {
    Point {
        lon: f64,
        lat: f64,
    },
    /// A rectangle, west, south, east, north.
    Rect {
        w: f64,
        s: f64,
        e: f64,
        n: f64,
    },
}

#[derive(Debug, Clone)]
pub struct Feature {
    pub geometry: Geometry,
    pub properties: Vec<(&'static str, String)>,
}

impl Feature {
    /// West, south, east, north.
    pub fn bounds(&self) -> [f64; 4] {
        match self.geometry {
            Geometry::Point { lon, lat } => [lon, lat, lon, lat],
            Geometry::Rect { w, s, e, n } => [w, s, e, n],
        }
    }
}

/// The extent of a tile's coordinates.
const EXTENT: f64 = 4096.0;
/// How far outside a tile a point is still written (MVT's buffer).
const BUFFER: f64 = 64.0;

/// Web Mercator: a place in world tile units at zoom `z`.
pub fn world(lon: f64, lat: f64, z: u32) -> (f64, f64) {
    let n = f64::from(1u32 << z);
    let x = (lon + 180.0) / 360.0 * n;
    let lat = lat.to_radians();
    let y = (1.0 - (lat.tan() + 1.0 / lat.cos()).ln() / std::f64::consts::PI) / 2.0 * n;
    (x, y)
}

/// A place in tile `z/x/y`'s coordinates (0..4096, y down).
fn in_tile(lon: f64, lat: f64, z: u32, x: u32, y: u32) -> (f64, f64) {
    let (wx, wy) = world(lon, lat, z);
    ((wx - f64::from(x)) * EXTENT, (wy - f64::from(y)) * EXTENT)
}

struct Pbf(Vec<u8>);

impl Pbf {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    fn key(&mut self, field: u32, wire: u32) {
        self.varint(u64::from((field << 3) | wire));
    }
    fn uint(&mut self, field: u32, v: u64) {
        self.key(field, 0);
        self.varint(v);
    }
    fn bytes(&mut self, field: u32, bytes: &[u8]) {
        self.key(field, 2);
        self.varint(bytes.len() as u64);
        self.0.extend_from_slice(bytes);
    }
    fn packed(&mut self, field: u32, values: &[u32]) {
        let mut inner = Pbf(Vec::new());
        for v in values {
            inner.varint(u64::from(*v));
        }
        self.bytes(field, &inner.0);
    }
}

fn zigzag(v: i64) -> u32 {
    ((v << 1) ^ (v >> 63)) as u32
}

fn command(id: u32, count: u32) -> u32 {
    (id & 7) | (count << 3)
}

/// Geometry commands for `points` (tile coordinates), from the cursor.
fn path(points: &[(i64, i64)], cursor: &mut (i64, i64), closed: bool) -> Vec<u32> {
    let mut out = vec![command(1, 1)];
    let mut push = |p: (i64, i64), out: &mut Vec<u32>| {
        out.push(zigzag(p.0 - cursor.0));
        out.push(zigzag(p.1 - cursor.1));
        *cursor = p;
    };
    push(points[0], &mut out);
    if points.len() > 1 {
        out.push(command(2, (points.len() - 1) as u32));
        for p in &points[1..] {
            push(*p, &mut out);
        }
    }
    if closed {
        out.push(command(7, 1));
    }
    out
}

/// The MVT of tile `z/x/y` holding the `features` that reach into it, in
/// one layer named `default`.
pub fn vector_tile(features: &[Feature], z: u32, x: u32, y: u32) -> Vec<u8> {
    let mut layer = Pbf(Vec::new());
    layer.uint(15, 2);
    layer.bytes(1, b"default");
    let mut keys: Vec<&str> = Vec::new();
    let mut values: Vec<String> = Vec::new();
    for (id, feature) in features.iter().enumerate() {
        let [w, s, e, n] = feature.bounds();
        let (x0, y0) = in_tile(w, n, z, x, y);
        let (x1, y1) = in_tile(e, s, z, x, y);
        let outside = x1 < -BUFFER || y1 < -BUFFER || x0 > EXTENT + BUFFER || y0 > EXTENT + BUFFER;
        if outside {
            continue;
        }
        let mut tags = Vec::new();
        for (k, v) in &feature.properties {
            let ki = keys.iter().position(|x| x == k).unwrap_or_else(|| {
                keys.push(k);
                keys.len() - 1
            });
            let vi = values.iter().position(|x| x == v).unwrap_or_else(|| {
                values.push(v.clone());
                values.len() - 1
            });
            tags.extend([ki as u32, vi as u32]);
        }
        let mut cursor = (0, 0);
        let (kind, geometry) = match feature.geometry {
            Geometry::Point { .. } => (1, path(&[(x0 as i64, y0 as i64)], &mut cursor, false)),
            // Clockwise on screen (y down): an exterior ring.
            Geometry::Rect { .. } => {
                let (a, b, c, d) = (x0 as i64, y0 as i64, x1 as i64, y1 as i64);
                (
                    3,
                    path(&[(a, b), (c, b), (c, d), (a, d)], &mut cursor, true),
                )
            }
        };
        let mut f = Pbf(Vec::new());
        f.uint(1, id as u64 + 1);
        f.packed(2, &tags);
        f.uint(3, kind);
        f.packed(4, &geometry);
        layer.bytes(2, &f.0);
    }
    for k in &keys {
        layer.bytes(3, k.as_bytes());
    }
    for v in &values {
        let mut value = Pbf(Vec::new());
        value.bytes(1, v.as_bytes());
        layer.bytes(4, &value.0);
    }
    layer.uint(5, EXTENT as u64);
    let mut tile = Pbf(Vec::new());
    tile.bytes(3, &layer.0);
    tile.0
}

/// CARTO's spatial-index tile of H3 `cells` (hex ids) with one numeric
/// property per cell.
pub fn h3_tile(cells: &[(&str, f64)], property: &str) -> Vec<u8> {
    let mut indices = Vec::new();
    let mut numbers = Vec::new();
    for (cell, value) in cells {
        let id = u64::from_str_radix(cell, 16).expect("an H3 cell in hex");
        indices.extend_from_slice(&id.to_le_bytes());
        numbers.extend_from_slice(&value.to_le_bytes());
    }
    let mut index_message = Pbf(Vec::new());
    index_message.bytes(1, &indices);
    let mut numeric = Pbf(Vec::new());
    numeric.bytes(1, &numbers);
    let mut entry = Pbf(Vec::new());
    entry.bytes(1, property.as_bytes());
    entry.bytes(2, &numeric.0);
    let mut cells_message = Pbf(Vec::new());
    cells_message.bytes(1, &index_message.0);
    for _ in cells {
        cells_message.bytes(2, &[]);
    }
    cells_message.bytes(3, &entry.0);
    let mut tile = Pbf(Vec::new());
    tile.uint(1, 1);
    tile.bytes(2, &cells_message.0);
    tile.0
}
