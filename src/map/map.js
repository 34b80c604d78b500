// The map page's script (carto-auth, src/map/page.rs puts it in the page).
// It runs after h3-js, deck.gl, @deck.gl/carto and @loaders.gl/mvt, reads
// the page's JSON configuration, asks CARTO's Maps API for each source,
// fits the view to the data, and draws. Whatever fails is said in the map
// itself, never a blank box. The page tells a parent window how it went
// (postMessage {cartoAuthMap: 'ready' | 'error', message}) and keeps the
// state in <html data-map-state>.
(function () {
  'use strict';
  var config = JSON.parse(document.getElementById('carto-auth-map-config').textContent);
  var box = document.getElementById('carto-auth-map-message');
  var state = 'loading';

  function report(next, text) {
    state = next;
    document.documentElement.setAttribute('data-map-state', next);
    if (window.parent !== window) {
      try {
        window.parent.postMessage({ cartoAuthMap: next, message: text || '' }, '*');
      } catch (e) { /* a parent that takes no messages */ }
    }
  }

  // The first failure is the one to read; later ones follow from it.
  function fail(text) {
    if (state === 'error') return;
    box.textContent = text;
    box.hidden = false;
    report('error', text);
  }

  function describe(error) {
    var text = error && error.message ? error.message : String(error);
    if (/\b(401|403)\b|Unauthorized|Forbidden/i.test(text) && config.tokenExpires) {
      text += '\n\nThe token in this map was refused. It was valid until ' + config.tokenExpires +
        ': run the cell again to make a new one.';
    }
    return 'The map could not be drawn.\n' + text;
  }

  var failed = window.cartoAuthFailedScripts || [];
  if (failed.length || typeof deck === 'undefined' || !deck.carto || typeof h3 === 'undefined' ||
      typeof loaders === 'undefined' || !loaders.MVTLoader) {
    fail(config.scriptsError + (failed.length ? '\nNot loaded: ' + failed.join(', ') : ''));
    return;
  }
  window.addEventListener('error', function (e) { fail(describe(e.error || e.message)); });
  window.addEventListener('unhandledrejection', function (e) { fail(describe(e.reason)); });

  var TRANSPARENT = [0, 0, 0, 0];

  function lerp(a, b, t) {
    return a.map(function (v, i) { return Math.round(v + (b[i] - v) * t); });
  }

  // A colour accessor from the style that Rust wrote (layer.rs, Paint).
  function paint(spec) {
    if (spec.by === 'constant') return spec.color;
    var column = spec.column;
    function value(d) {
      var p = d && d.properties;
      return p ? p[column] : undefined;
    }
    function number(d) {
      var v = value(d);
      return v === null || v === undefined || v === '' ? NaN : Number(v);
    }
    if (spec.by === 'category') {
      var table = new Map();
      spec.colors.forEach(function (pair) { table.set(String(pair[0]), pair[1]); });
      return function (d) {
        var v = value(d);
        return v !== null && v !== undefined && table.has(String(v)) ? table.get(String(v)) : spec.others;
      };
    }
    if (spec.by === 'range') {
      return function (d) {
        var v = number(d);
        if (!isFinite(v)) return TRANSPARENT;
        var t = Math.min(1, Math.max(0, (v - spec.min) / (spec.max - spec.min)));
        return lerp(spec.from, spec.to, t);
      };
    }
    return function (d) {
      var v = number(d);
      if (!isFinite(v)) return TRANSPARENT;
      var i = 0;
      while (i < spec.breaks.length && v >= spec.breaks[i]) i++;
      return spec.colors[i];
    };
  }

  // Workers are off: their default addresses are on a CDN, which a hub
  // without internet cannot reach. Tiles are parsed on this thread, and MVT
  // tiles need their loader named on the layer.
  var loadOptions = { core: { worker: false } };

  function makeLayer(spec, data) {
    var props = {
      id: spec.id,
      data: data,
      loadOptions: loadOptions,
      getFillColor: paint(spec.fill),
      getLineColor: paint(spec.line),
      lineWidthUnits: 'pixels',
      getLineWidth: spec.lineWidth,
      stroked: spec.lineWidth > 0,
      opacity: spec.opacity,
      pickable: spec.tooltip.length > 0,
      onTileError: function (error) { fail(describe(error)); }
    };
    if (spec.vector) {
      props.loaders = [loaders.MVTLoader];
      props.pointType = 'circle';
      props.pointRadiusUnits = 'pixels';
      props.getPointRadius = spec.pointRadius;
      // deck.gl's default radius is one metre: invisible.
      props.pointRadiusMinPixels = spec.pointRadius;
    } else {
      props.extruded = false;
    }
    return new deck.carto[spec.layer](props);
  }

  function basemap(spec) {
    return new deck.TileLayer({
      id: 'carto-auth-basemap',
      data: spec.tiles,
      minZoom: 0,
      maxZoom: 19,
      tileSize: 256,
      loadOptions: loadOptions,
      // A missing basemap tile leaves a gap under the data, no more.
      onTileError: function () {},
      renderSubLayers: function (props) {
        var b = props.tile.boundingBox;
        return new deck.BitmapLayer(props, {
          data: null,
          image: props.data,
          bounds: [b[0][0], b[0][1], b[1][0], b[1][1]]
        });
      }
    });
  }

  // deck.gl does not fit the view to the data: the TileJSON's bounds do.
  function fit(sources, container) {
    var w = 180, s = 85, e = -180, n = -85, any = false;
    sources.forEach(function (tilejson) {
      var b = tilejson && tilejson.bounds;
      if (b && b.length === 4 && b.every(function (v) { return typeof v === 'number' && isFinite(v); })) {
        any = true;
        w = Math.min(w, b[0]); s = Math.min(s, b[1]); e = Math.max(e, b[2]); n = Math.max(n, b[3]);
      }
    });
    if (!any) return { longitude: 0, latitude: 20, zoom: 1 };
    s = Math.max(s, -85); n = Math.min(n, 85);
    if (e - w < 1e-9 && n - s < 1e-9) return { longitude: w, latitude: s, zoom: 12 };
    var width = container.clientWidth || 800, height = container.clientHeight || 500;
    var padding = Math.max(0, Math.min(40, Math.floor(Math.min(width, height) / 4)));
    var view = new deck.WebMercatorViewport({ width: width, height: height })
      .fitBounds([[w, s], [e, n]], { padding: padding, maxZoom: 16 });
    return { longitude: view.longitude, latitude: view.latitude, zoom: view.zoom };
  }

  var tooltips = {};
  config.layers.forEach(function (spec) { tooltips[spec.id] = spec.tooltip; });

  function tooltip(info) {
    if (!info.object || !info.layer) return null;
    var root = info.layer.root || info.layer;
    var columns = tooltips[root.id];
    if (!columns || !columns.length) return null;
    var p = info.object.properties || {};
    return {
      text: columns.map(function (c) {
        return c + ': ' + (p[c] === null || p[c] === undefined ? '–' : String(p[c]));
      }).join('\n')
    };
  }

  var requests;
  try {
    requests = config.layers.map(function (spec) {
      var options = Object.assign({}, spec.options, {
        accessToken: config.accessToken,
        apiBaseUrl: config.apiBaseUrl
      });
      return deck.carto[spec.source](options);
    });
  } catch (error) {
    fail(describe(error));
    return;
  }
  Promise.all(requests).then(function (sources) {
    var container = document.getElementById('carto-auth-map');
    var layers = sources.map(function (data, i) { return makeLayer(config.layers[i], data); });
    if (config.basemap) layers.unshift(basemap(config.basemap));
    var instance = null;
    instance = new deck.Deck({
      parent: container,
      initialViewState: config.view || fit(sources, container),
      controller: true,
      layers: layers,
      getTooltip: tooltip,
      onError: function (error) { fail(describe(error)); },
      // Ready once every tile of the full-size view is drawn: the first
      // frames can come before the canvas takes the container's size, with
      // fewer tiles in view, and a frame drawn for a new view selects that
      // view's tiles only in the next update of its layers.
      onAfterRender: function () {
        if (state !== 'loading' || !instance || !instance.layerManager) return;
        var viewport = instance.getViewports()[0];
        if (!viewport || viewport.width !== container.clientWidth ||
            viewport.height !== container.clientHeight) return;
        if (instance.layerManager.needsUpdate()) return;
        if (instance.layerManager.getLayers().every(function (l) { return l.isLoaded; })) report('ready');
      }
    });
    window.cartoAuthDeck = instance;
  }, function (error) { fail(describe(error)); });
})();
