// Drives the dashboard page in headless Chromium (playwright-core from
// web/node_modules, Debian's /usr/bin/chromium) and prints what it saw as one
// JSON object on stdout; tests/cli/test_browser.py judges it.
//
//   node tests/browser/dashboard.js URL FROM TO SCREENSHOT
//   node tests/browser/dashboard.js URL
//
// FROM and TO (ISO-8601 UTC, whole minutes) are a custom range whose minutes
// no longer change; SCREENSHOT is the PNG to write. The page must be served
// by a `shopstream run` that is producing events, so that the live tile can
// be seen to change. With the URL alone, the script only loads the page
// (which may carry #token= and #range=) and reports the tiles once the stream
// is open and the page idle.
'use strict';

const path = require('path');
const { chromium } = require(path.join(__dirname, '..', '..', 'web', 'node_modules', 'playwright-core'));

const [url, from, to, screenshot] = process.argv.slice(2);
if (!url || (from && (!to || !screenshot))) {
  console.error('usage: node tests/browser/dashboard.js URL [FROM TO SCREENSHOT]');
  process.exit(2);
}
const origin = new URL(url).origin;

async function main() {
  const seen = { errors: [], external: [], bad_responses: [] };
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
      '--disable-background-networking', '--no-first-run'],
  });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    // The page must need nothing but its own server: any other request is
    // recorded and refused.
    await context.route('**/*', (route) => {
      const u = route.request().url();
      if (u.startsWith(origin + '/') || u.startsWith('data:')) return route.continue();
      seen.external.push(u);
      return route.abort();
    });
    const page = await context.newPage();
    page.on('console', (m) => { if (m.type() === 'error') seen.errors.push('console: ' + m.text()); });
    page.on('pageerror', (e) => seen.errors.push('page: ' + e.message));
    page.on('requestfailed', (r) => {
      // The stream is cut when the page goes away; that is no error.
      if (!r.url().endsWith('/api/stream')) seen.errors.push('request failed: ' + r.url());
    });
    page.on('response', (r) => { if (r.status() >= 400) seen.bad_responses.push(r.status() + ' ' + r.url()); });

    await page.goto(url, { waitUntil: 'load' });
    await page.waitForFunction(() => document.getElementById('live').dataset.state === 'live' &&
      document.getElementById('tile-orders').dataset.value !== undefined, null, { timeout: 15000 });

    if (!from) {
      await page.waitForFunction(() => document.body.dataset.refresh === 'idle', null, { timeout: 15000 });
      seen.tiles = await page.evaluate(() => Object.fromEntries(
        [...document.querySelectorAll('.tile p[id]')].map((el) => [el.id, el.dataset.value])));
      seen.status = await page.textContent('#status');
      seen.address = page.url();
      return seen;
    }

    // A custom range of minutes that no longer change: the tiles against
    // the API, and the charts against the tiles.
    await page.click('button[data-range="custom"]');
    await page.fill('#custom-from', from.slice(0, 16));
    await page.fill('#custom-to', to.slice(0, 16));
    await page.click('#custom button[type="submit"]');
    await page.waitForFunction((f) => document.getElementById('range-label').dataset.from === f &&
      document.getElementById('chart-cancellations').data !== undefined, from, { timeout: 15000 });
    // The charts are drawn after the tiles: wait until every one shows this range.
    await page.waitForFunction(() => document.body.dataset.refresh === 'idle', null, { timeout: 15000 });
    seen.custom = await page.evaluate(() => {
      const tiles = {};
      for (const el of document.querySelectorAll('.tile p[id]')) {
        tiles[el.id] = { text: el.textContent, value: el.dataset.value };
      }
      const sum = (a) => a.reduce((s, v) => s + (v || 0), 0);
      const chart = (id) => document.getElementById(id).data;
      return {
        range: { from: document.getElementById('range-label').dataset.from,
          to: document.getElementById('range-label').dataset.to },
        tiles: tiles,
        minutes_orders: sum(chart('chart-kpis')[1].y),
        minutes_revenue: sum(chart('chart-kpis')[0].y),
        category_revenue: sum(chart('chart-category')[0].x),
        failed_by_method: sum(chart('chart-failures')[0].y),
        cancellations_by_reason: sum(chart('chart-cancellations')[0].x),
        city_bars: chart('chart-city')[0].y.length,
        map_points: chart('chart-map')[0].lat.length,
        map_drawn: document.querySelectorAll('#chart-map .geo path').length,
      };
    });

    // Live: the 15-minute range includes the newest minute, which changes
    // while events flow; the tile must follow within 2 s.
    await page.click('button[data-range="15m"]');
    await page.waitForFunction(() => document.getElementById('range-label').dataset.from !== undefined &&
      document.body.dataset.refresh === 'idle' &&
      document.querySelector('button[data-range="15m"]').getAttribute('aria-pressed') === 'true',
    null, { timeout: 15000 });
    const before = await page.textContent('#tile-orders');
    const t0 = Date.now();
    let changed = null;
    try {
      await page.waitForFunction((b) => document.getElementById('tile-orders').textContent !== b,
        before, { timeout: 2000, polling: 20 });
      changed = Date.now() - t0;
    } catch (e) {
      changed = null;
    }
    seen.live = { before: before, after: await page.textContent('#tile-orders'), changed_after_ms: changed };

    await page.screenshot({ path: screenshot, fullPage: true });

    // A phone: nothing wider than the screen.
    // The charts follow the resize once Plotly has laid them out again: wait
    // (up to 10 s) until the page fits, then measure after two more frames.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForFunction(() => document.documentElement.scrollWidth <= window.innerWidth,
      null, { timeout: 10000 }).catch(() => null);
    await page.evaluate(() => new Promise((done) =>
      requestAnimationFrame(() => requestAnimationFrame(done))));
    seen.phone = await page.evaluate(() => ({
      scroll_width: document.documentElement.scrollWidth, inner_width: window.innerWidth,
    }));
  } finally {
    await browser.close();
  }
  return seen;
}

main().then((seen) => process.stdout.write(JSON.stringify(seen) + '\n')).catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
