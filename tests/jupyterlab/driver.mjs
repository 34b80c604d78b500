#!/usr/bin/env node
// JupyterLab in headless Chromium, driven the way a person uses it, for
// tests/jupyterlab.rs (the test decides what to do and what to check, as
// with tests/notebook_driver.py). playwright-core comes from
// $CARTO_AUTH_NODE_MODULES (scripts/test installs it); the browser is
// Debian's Chromium, $CARTO_AUTH_CHROMIUM: never a download of playwright's
// own. One JSON object a line each way:
//
//   test -> driver (stdin), each answered by one {"event": "ok", ...}
//     {"op": "open", "url": "...", "cells": 14}  a notebook page; waits until
//                                           its cells are shown and its kernel
//                                           is idle
//     {"op": "run", "cell": 3}              selects cell 3, runs it (toolbar's Run)
//     {"op": "wait", "cell": 3, "until": "done" | "stdin" | "text",
//      "text": "...", "timeout": 900}      -> {"output": <cell>}
//     {"op": "input", "cell": 3, "value": "..."}  types into its input box, Enter
//     {"op": "edit", "cell": 3, "source": "..."}  replaces the cell's code
//     {"op": "append", "source": "..."}     a code cell at the end: the empty one
//                                           there, else a new one (key b)
//                                           -> {"cell": <its index>}
//     {"op": "theme", "name": "JupyterLab Dark"}  Settings > Theme > name
//     {"op": "screenshot", "cell": 3, "output": "stdout" | "html", "path": "..."}
//     {"op": "inspect", "cell": 3}          -> {"output": <cell>, "cards": [...]}
//     {"op": "map", "cell": 3, "samples": [{"name", "lon", "lat"}], "path": "..."}
//                                           waits for the cell's map to report
//                                           (drawn or failed); a screenshot of
//                                           it -> {"map": {state, frameText,
//                                           samples: [{name, x, y, rgb,
//                                           tooltip}], tiles, viewport}}
//     {"op": "save"}                        File > Save (Ctrl+S); waits until saved
//     {"op": "shutdown"}
//   driver -> test (stdout)
//     {"event": "ok", ...}
//     {"event": "fatal", "message": "..."}  then it exits
//
// A cell's output: {"prompt": "[3]:", "text": "<its outputs as shown>",
// "html": "<its HTML outputs' markup>", "stdin": <an input box is shown>}.
// When the test goes away (stdin closes) or --deadline passes, the browser
// is closed and the driver exits.

import { createRequire } from 'node:module';
import path from 'node:path';
import readline from 'node:readline';

function emit(event) {
  process.stdout.write(JSON.stringify(event) + '\n');
}

function fatal(message) {
  emit({ event: 'fatal', message });
  process.exit(2);
}

const modules = process.env.CARTO_AUTH_NODE_MODULES;
const executablePath = process.env.CARTO_AUTH_CHROMIUM;
if (!modules || !executablePath) {
  fatal('CARTO_AUTH_NODE_MODULES and CARTO_AUTH_CHROMIUM must be set: run scripts/test');
}
let chromium;
try {
  ({ chromium } = createRequire(path.join(modules, 'driver.cjs'))('playwright-core'));
} catch (e) {
  fatal(`playwright-core is missing from ${modules} (${e.message}): run scripts/test`);
}

const deadlineArg = process.argv.indexOf('--deadline');
const deadline = deadlineArg > 0 ? Number(process.argv[deadlineArg + 1]) : 3600;

// Chromium on a machine whose network reaches only the package registries:
// without the background-networking flags its own connections are refused.
const browser = await chromium.launch({
  executablePath,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
  timeout: 120_000,
});
async function stop(code) {
  await browser.close().catch(() => {});
  process.exit(code);
}
setTimeout(() => {
  emit({ event: 'fatal', message: `deadline of ${deadline} s passed` });
  stop(3);
}, deadline * 1000).unref();

const page = await browser.newPage({ viewport: { width: 1280, height: 2000 } });
const consoleErrors = [];
page.on('console', (m) => {
  if (m.type() === 'error') consoleErrors.push(m.text());
});

const notebook = () => page.locator('.jp-NotebookPanel:not(.lm-mod-hidden)');
const cell = (i) => notebook().locator('.jp-Cell').nth(i);

/// A dialog JupyterLab put up (none is expected): its text, as a failure.
async function noDialog() {
  const dialog = page.locator('.jp-Dialog');
  if (await dialog.count()) {
    throw new Error(`JupyterLab shows a dialog: ${(await dialog.first().innerText()).trim()}`);
  }
}

/// The cell's outputs as a person sees them.
async function outputOf(i) {
  const c = cell(i);
  await c.scrollIntoViewIfNeeded();
  return c.evaluate((el) => {
    const area = el.querySelector('.jp-OutputArea');
    const prompt = el.querySelector('.jp-InputArea-prompt');
    return {
      prompt: prompt ? prompt.innerText.trim() : '',
      text: area ? area.innerText : '',
      html: [...el.querySelectorAll('.jp-OutputArea-output.jp-RenderedHTMLCommon')].map((o) => o.innerHTML).join('\n'),
      stdin: !!el.querySelector('.jp-Stdin-input'),
    };
  });
}

const lastPrompt = new Map();

const ops = {
  async open({ url, cells }) {
    await page.goto(url, { timeout: 120_000 });
    // JupyterLab adds a notebook's cells to the page a few at a time.
    await page.waitForFunction(
      (n) => document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell').length >= n,
      cells,
      { timeout: 120_000 },
    );
    // The kernel started and idle (the toolbar's kernel status).
    await page.waitForFunction(() => {
      const s = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator');
      return s && s.getAttribute('data-status') === 'idle';
    }, null, { timeout: 180_000 });
    await noDialog();
    return { cells: await notebook().locator('.jp-Cell').count(), theme: await page.evaluate(() => document.body.dataset.jpThemeName) };
  },

  async run({ cell: i }) {
    await noDialog();
    const c = cell(i);
    await c.scrollIntoViewIfNeeded();
    lastPrompt.set(i, (await outputOf(i)).prompt);
    // Select the cell, then the toolbar's Run button.
    await c.locator('.jp-InputPrompt').click();
    await page.waitForFunction((el) => el.classList.contains('jp-mod-selected'), await c.elementHandle(), { timeout: 30_000 });
    await notebook().locator('.jp-Toolbar [data-command="notebook:run-cell-and-select-next"]').first().click();
    // Queued at once: the prompt shows [*] (or, done already, a new number).
    const before = lastPrompt.get(i);
    await c.locator('.jp-InputArea-prompt').filter({ hasNotText: before }).waitFor({ timeout: 30_000 })
      .catch(() => { throw new Error(`cell ${i} did not start: its prompt still shows ${before}`); });
    return {};
  },

  async wait({ cell: i, until, text, timeout }) {
    const ms = (timeout ?? 900) * 1000;
    const before = lastPrompt.get(i) ?? '';
    const c = cell(i);
    await c.evaluate(
      (el, { until, text, before, ms }) => new Promise((resolve, reject) => {
        const done = () => {
          const prompt = (el.querySelector('.jp-InputArea-prompt')?.innerText ?? '').trim();
          const out = el.querySelector('.jp-OutputArea')?.innerText ?? '';
          if (until === 'stdin') return !!el.querySelector('.jp-Stdin-input');
          if (until === 'text') return out.includes(text);
          return /^\[\d+\]:$/.test(prompt) && prompt !== before;
        };
        if (done()) return resolve();
        const seen = new MutationObserver(() => {
          if (done()) {
            seen.disconnect();
            resolve();
          }
        });
        seen.observe(el, { subtree: true, childList: true, characterData: true, attributes: true });
        setTimeout(() => {
          seen.disconnect();
          reject(new Error('timed out'));
        }, ms);
      }),
      { until, text, before, ms },
    ).catch(async (e) => {
      throw new Error(`cell ${i}: no ${until}${text ? ` "${text}"` : ''} within ${ms / 1000} s (${e.message}); the cell shows:\n${JSON.stringify(await outputOf(i))}`);
    });
    return { output: await outputOf(i) };
  },

  async input({ cell: i, value }) {
    const box = cell(i).locator('.jp-Stdin-input');
    await box.fill(value);
    await box.press('Enter');
    return {};
  },

  async edit({ cell: i, source }) {
    const c = cell(i);
    await c.scrollIntoViewIfNeeded();
    await c.locator('.jp-InputPrompt').click();
    await page.keyboard.press('Enter'); // edit mode
    await page.keyboard.press('Control+a');
    await page.keyboard.insertText(source);
    await page.keyboard.press('Escape');
    const shown = await c.locator('.cm-content').innerText();
    if (shown.trim() !== source.trim()) {
      throw new Error(`cell ${i} shows ${JSON.stringify(shown)} after the edit`);
    }
    return {};
  },

  async append({ source }) {
    const count = await notebook().locator('.jp-Cell').count();
    const last = cell(count - 1);
    await last.scrollIntoViewIfNeeded();
    // Running the last cell (Run, then select the next) added an empty
    // code cell after it: that one is typed into.
    const empty = await last.evaluate((el) => el.classList.contains('jp-CodeCell')
      && !el.querySelector('.cm-content')?.innerText.trim());
    if (empty) {
      await ops.edit({ cell: count - 1, source });
      return { cell: count - 1 };
    }
    await last.locator('.jp-InputPrompt').click();
    await page.keyboard.press('Escape'); // command mode
    await page.keyboard.press('b');
    await cell(count).waitFor({ timeout: 30_000 });
    await ops.edit({ cell: count, source });
    return { cell: count };
  },

  async theme({ name }) {
    await noDialog();
    await page.locator('.lm-MenuBar-itemLabel', { hasText: /^Settings$/ }).click();
    await page.locator('.lm-Menu-itemLabel', { hasText: /^Theme$/ }).click();
    await page.locator('.lm-Menu-itemLabel', { hasText: new RegExp(`^${name}$`) }).click();
    // The menus closed (nothing over the page).
    await page.locator('.lm-Menu').first().waitFor({ state: 'detached', timeout: 10_000 }).catch(() => {});
    // JupyterLab sets these once the theme's style sheet has loaded.
    await page.waitForFunction(
      (n) => document.body.dataset.jpThemeName === n,
      name,
      { timeout: 60_000 },
    );
    // JupyterLab covers the page with its splash screen (the logo) while it
    // changes theme, and takes it away with a fade: nothing under it can be
    // clicked, read or seen until it is gone.
    await page.locator('#jupyterlab-splash').waitFor({ state: 'detached', timeout: 60_000 });
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    return { light: await page.evaluate(() => document.body.dataset.jpThemeLight) };
  },

  async screenshot({ cell: i, output, path: file }) {
    const selector = output === 'stdout'
      ? '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stdout"]'
      : '.jp-OutputArea-output.jp-RenderedHTMLCommon';
    const target = cell(i).locator(selector).last();
    await target.scrollIntoViewIfNeeded();
    // Images (the card's QR code) decoded before the picture is taken.
    await target.evaluate((el) => Promise.all([...el.querySelectorAll('img')].map((img) => img.decode().catch(() => {}))));
    await target.screenshot({ path: file, animations: 'disabled', caret: 'hide' });
    return { path: file };
  },

  async inspect({ cell: i }) {
    const c = cell(i);
    await c.scrollIntoViewIfNeeded();
    const cards = await c.evaluate(async (el) => {
      // The colour a person sees: an element's colour over the first
      // opaque background behind it (alpha composited on the way up).
      const parse = (s) => {
        const m = s.match(/rgba?\(([^)]+)\)/);
        if (!m) return null;
        const [r, g, b, a = 1] = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
        return [r, g, b, a];
      };
      const over = (top, bottom) => top.slice(0, 3).map((c, k) => c * top[3] + bottom[k] * (1 - top[3])).concat(1);
      const background = (node) => {
        const layers = [];
        for (let n = node; n && n.nodeType === 1; n = n.parentElement) {
          const bg = parse(getComputedStyle(n).backgroundColor);
          if (bg && bg[3] > 0) {
            layers.push(bg);
            if (bg[3] >= 1) break;
          }
        }
        let color = [255, 255, 255, 1];
        for (const layer of layers.reverse()) color = over(layer, color);
        return color;
      };
      const luminance = ([r, g, b]) => {
        const f = (c) => {
          c /= 255;
          return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
        };
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
      };
      const contrast = (a, b) => {
        const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
        return (x + 0.05) / (y + 0.05);
      };
      // Each card is the top element of an HTML output. Its role and label
      // may be gone (the sanitizer of an untrusted notebook): then its
      // title names it.
      // Two frames: what a scroll moved is laid out and painted by then.
      const settled = () => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
      const found = [];
      for (const card of el.querySelectorAll('.jp-RenderedHTMLCommon > div')) {
        const texts = [];
        const walker = document.createTreeWalker(card, NodeFilter.SHOW_TEXT);
        for (let t = walker.nextNode(); t; t = walker.nextNode()) {
          const owner = t.parentElement;
          if (!t.textContent.trim() || !owner.getClientRects().length) continue;
          // Closed <details>: not shown.
          if (owner.closest('details:not([open])') && !owner.closest('summary')) continue;
          const bg = background(owner);
          // Opacity (the cards' muted text) fades the text towards its background.
          let opacity = 1;
          for (let n = owner; n && n !== el; n = n.parentElement) opacity *= Number(getComputedStyle(n).opacity);
          const color = parse(getComputedStyle(owner).color);
          color[3] *= opacity;
          const fg = over(color, bg);
          texts.push({ text: t.textContent.trim().slice(0, 60), contrast: contrast(fg, bg), color: fg, background: bg });
        }
        const link = card.querySelector('a[href]');
        let button = null;
        if (link) {
          // What a click at its centre reaches, with the button in view.
          // JupyterLab lays a scrolled notebook out again on its own
          // frame (and a loaded machine is late to it): measure after it.
          link.scrollIntoView({ block: 'center', behavior: 'instant' });
          await settled();
          const r = link.getBoundingClientRect();
          const hit = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
          button = {
            text: link.innerText.trim(), href: link.href, x: r.x, y: r.y, width: r.width, height: r.height,
            viewport: [innerWidth, innerHeight],
            hit: hit === link || link.contains(hit), hitElement: hit ? hit.outerHTML.slice(0, 300) : null,
          };
        }
        const images = [...card.querySelectorAll('img')].map((img) => ({
          alt: img.alt, width: img.getBoundingClientRect().width, height: img.getBoundingClientRect().height,
          loaded: img.complete && img.naturalWidth > 0,
        }));
        found.push({
          label: card.getAttribute('aria-label')
            ?? (card.firstElementChild?.innerText ?? '').replace(/^\u2713\s*/, '').trim(),
          role: card.getAttribute('role'),
          text: card.innerText,
          texts,
          button,
          images,
          svgs: card.querySelectorAll('svg').length,
        });
      }
      return found;
    });
    return { output: await outputOf(i), cards };
  },

  async map({ cell: i, samples, path: file }) {
    const frame = cell(i).locator('iframe[title="CARTO map"]').last();
    await frame.scrollIntoViewIfNeeded();
    const handle = await frame.elementHandle();
    // The page keeps its state on its root element: drawn, or why not.
    await page.waitForFunction((f) => {
      const state = f.contentDocument?.documentElement?.getAttribute('data-map-state');
      return state === 'ready' || state === 'error';
    }, handle, { timeout: 120_000 }).catch(async (e) => {
      throw new Error(`cell ${i}: the map did not report (${e.message}); it shows: ${await handle.evaluate((f) => f.contentDocument?.body?.innerText)}`);
    });
    // Where each place is in the iframe, and what the pointer shows there
    // (the iframe's document is the page's origin: srcdoc).
    const found = await handle.evaluate(async (f, samples) => {
      const doc = f.contentDocument;
      const state = doc.documentElement.getAttribute('data-map-state');
      const out = { state, rootState: state, frameText: doc.body.innerText };
      const map = f.contentWindow.cartoAuthDeck;
      const canvas = doc.querySelector('canvas');
      if (state !== 'ready' || !map || !canvas) return out;
      map.redraw(true);
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
      const box = canvas.getBoundingClientRect();
      const viewport = map.getViewports()[0];
      out.samples = samples.map((s) => {
        const [x, y] = viewport.project([s.lon, s.lat]);
        const info = map.pickObject({ x, y, radius: 1 });
        const tip = info && map.props.getTooltip ? map.props.getTooltip(info) : null;
        return { name: s.name, x: box.x + x, y: box.y + y, tooltip: tip ? tip.text : null };
      });
      out.tiles = map.layerManager.getLayers().filter((l) => l.state && l.state.tileset).map((l) =>
        [l.id, l.isLoaded, l.state.tileset.selectedTiles.map((t) => [t.id, t.isLoaded, !!t.content])]);
      out.viewport = [viewport.width, viewport.height, viewport.zoom];
      return out;
    }, samples);
    if (!found.samples) return { map: found };
    // The colours a person sees there: a screenshot of the iframe over
    // JupyterLab's page, read back through a canvas of the page.
    const png = await frame.screenshot({ path: file, animations: 'disabled', caret: 'hide' });
    const rgbs = await page.evaluate(async ({ data, points }) => {
      const img = new Image();
      img.src = `data:image/png;base64,${data}`;
      await img.decode();
      const c = document.createElement('canvas');
      c.width = img.naturalWidth;
      c.height = img.naturalHeight;
      const ctx = c.getContext('2d');
      ctx.drawImage(img, 0, 0);
      return points.map(([x, y]) => [...ctx.getImageData(Math.round(x), Math.round(y), 1, 1).data.slice(0, 3)]);
    }, { data: png.toString('base64'), points: found.samples.map((s) => [s.x, s.y]) });
    found.samples.forEach((s, k) => { s.rgb = rgbs[k]; });
    return { map: found };
  },

  async save() {
    await notebook().locator('.jp-Notebook').click({ position: { x: 5, y: 5 } }).catch(() => {});
    await page.keyboard.press('Escape');
    await page.keyboard.press('Control+s');
    await page.waitForFunction(
      () => !document.querySelector('.lm-DockPanel-tabBar .lm-TabBar-tab.jp-mod-current.jp-mod-dirty'),
      null,
      { timeout: 60_000 },
    );
    await noDialog();
    return {};
  },
};

const lines = readline.createInterface({ input: process.stdin });
const queue = [];
let wake = null;
let closed = false;
lines.on('line', (line) => {
  if (line.trim()) queue.push(JSON.parse(line));
  if (wake) wake();
});
// The test went away: whatever is under way, close the browser and exit.
lines.on('close', () => {
  closed = true;
  stop(0);
});

for (;;) {
  while (!queue.length && !closed) await new Promise((r) => { wake = r; });
  wake = null;
  if (!queue.length) await stop(0); // the test went away
  const command = queue.shift();
  if (command.op === 'shutdown') await stop(0);
  const op = ops[command.op];
  if (!op) fatal(`unknown command ${JSON.stringify(command)}`);
  try {
    emit({ event: 'ok', ...(await op(command)) });
  } catch (e) {
    emit({ event: 'fatal', message: `${command.op}: ${e.message}`, console_errors: consoleErrors.slice(-10) });
    await stop(2);
  }
}
