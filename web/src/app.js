// The dashboard page (docs/api.md#page): tiles of the totals of a range, and
// charts of its minutes and breakdowns, kept live by /api/stream. Talks only
// to the server that served it (relative URLs); Plotly and the base map are
// served by it too (/assets/).
//
// A server started with --auth-token needs the token on every API request:
// open the page as /#token=TOKEN. The fragment never leaves the browser; the
// page keeps the token in sessionStorage and drops it from the address bar.
// The stream is read with fetch() rather than EventSource, which cannot send
// an Authorization header.
'use strict';

(function () {
  const NAMED = ['15m', '1h', '24h', '7d', '30d'];
  const MIN = 60 * 1000;
  const DAY = 24 * 60 * MIN;
  const COLORS = { revenue: '#2f6fde', orders: '#e67e22', bad: '#c0392b', muted: '#8a93a6' };

  let range = { name: '1h' }; // or { name: 'custom', from: ms, to: ms }
  let seq = 0; // answers to an older selection are dropped

  // ---- API ----

  // The address's fragment may carry token=TOKEN (kept in sessionStorage,
  // then dropped from the address bar) and range=15m|1h|24h|7d|30d.
  const hash = new URLSearchParams(window.location.hash.slice(1));
  if (hash.has('token')) {
    sessionStorage.setItem('shopstream-token', hash.get('token'));
    hash.delete('token');
    history.replaceState(null, '', window.location.pathname + window.location.search +
      (hash.toString() ? '#' + hash.toString() : ''));
  }

  function token() { return sessionStorage.getItem('shopstream-token'); }

  function headers() {
    const t = token();
    return t ? { Authorization: 'Bearer ' + t } : {};
  }

  async function api(path) {
    const r = await fetch(path, { headers: headers(), cache: 'no-store' });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) {
      let msg = body.error || r.statusText;
      if (r.status === 401) msg += ' (open this page as /#token=YOUR_TOKEN)';
      throw new Error(path.split('?')[0] + ': ' + r.status + ' ' + msg);
    }
    return body;
  }

  function rangeQuery() {
    if (range.name !== 'custom') return 'range=' + range.name;
    return 'from=' + new Date(range.from).toISOString() + '&to=' + new Date(range.to).toISOString();
  }

  // The minutes of [from, to) in requests of at most a day each: 7 days of
  // minutes (10080 rows) would pass the server's default --max-rows (10000).
  // Past the hot store, the server reads the minutes from the cold store.
  async function kpiRows(from, to) {
    const parts = [];
    for (let t = Date.parse(from), end = Date.parse(to); t < end; t += DAY) {
      parts.push(api('/api/kpis?dimension=overall&from=' + new Date(t).toISOString() + '&to=' +
        new Date(Math.min(t + DAY, end)).toISOString()));
    }
    const answers = await Promise.all(parts);
    return [].concat(...answers.map((a) => a.rows));
  }

  // ---- formatting ----

  const money = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  const count = new Intl.NumberFormat('en-US');

  function fmtMoney(v) { return v === null || v === undefined ? '–' : money.format(v); }
  function fmtCount(v) { return v === null || v === undefined ? '–' : count.format(v); }
  function fmtRate(v) { return v === null || v === undefined ? '–' : (100 * v).toFixed(2) + ' %'; }

  // Each tile shows its number formatted and keeps the API's value in
  // data-value, for scripts and tests that read the page.
  function setTile(id, text, value) {
    const el = document.getElementById(id);
    el.textContent = text;
    if (value !== undefined) el.dataset.value = value === null ? '' : String(value);
  }

  function showTotals(data) {
    const t = data.totals;
    setTile('tile-revenue', fmtMoney(t.gross_revenue), t.gross_revenue);
    setTile('tile-orders', fmtCount(t.orders), t.orders);
    setTile('tile-aov', fmtMoney(t.aov), t.aov);
    setTile('tile-failed', fmtCount(t.failed_payments), t.failed_payments);
    setTile('tile-failure-rate', t.failure_rate === null ? 'no payment attempts'
      : fmtRate(t.failure_rate) + ' of ' + fmtCount(t.payment_attempts) + ' attempts', t.failure_rate);
    setTile('tile-cancellations', fmtCount(t.cancellations), t.cancellations);
    setTile('tile-cancelled-revenue', fmtMoney(t.cancelled_revenue) + ' refunded', t.cancelled_revenue);
    document.getElementById('range-label').textContent = 'Minutes from ' + shortTime(data.range.from) +
      ' to ' + shortTime(data.range.to) + ' UTC';
    const label = document.getElementById('range-label');
    label.dataset.from = data.range.from;
    label.dataset.to = data.range.to;
  }

  function shortTime(iso) { return iso.slice(0, 16).replace('T', ' '); }

  // ---- charts ----

  const CONFIG = {
    responsive: true, displaylogo: false, displayModeBar: false,
    topojsonURL: '/assets/topojson/', // the base map, served by the binary
  };

  function layout(extra) {
    return Object.assign({
      margin: { l: 56, r: 56, t: 28, b: 36 },
      legend: { orientation: 'h', x: 0, y: 1, yanchor: 'bottom' },
      paper_bgcolor: 'rgba(0,0,0,0)',
      plot_bgcolor: 'rgba(0,0,0,0)',
      font: { family: 'system-ui, sans-serif', size: 12 },
    }, extra);
  }

  function plot(id, traces, lay) { return window.Plotly.react(id, traces, lay, CONFIG); }

  // The minutes' x axis spans the whole range, minutes without events included.
  function showMinutes(rows, from, to) {
    const x = rows.map((r) => r.minute_start);
    const span = { type: 'date', range: [from, to] };
    plot('chart-kpis', [
      { x: x, y: rows.map((r) => r.gross_revenue), name: 'Revenue', type: 'scatter', mode: 'lines',
        line: { color: COLORS.revenue } },
      { x: x, y: rows.map((r) => r.orders), name: 'Orders', type: 'scatter', mode: 'lines',
        yaxis: 'y2', line: { color: COLORS.orders } },
    ], layout({
      xaxis: span,
      yaxis: { title: { text: 'Revenue' }, rangemode: 'tozero' },
      yaxis2: { title: { text: 'Orders' }, overlaying: 'y', side: 'right', rangemode: 'tozero' },
    }));
    // Minutes without orders have no average: a gap, not a zero.
    plot('chart-aov', [
      { x: x, y: rows.map((r) => r.aov), name: 'Average order value', type: 'scatter',
        mode: 'lines', connectgaps: false, line: { color: COLORS.revenue } },
    ], layout({ xaxis: span, yaxis: { title: { text: 'AOV' }, rangemode: 'tozero' },
      showlegend: false }));
  }

  function showCities(all) {
    const rows = all.filter((r) => r.orders > 0);
    const top = rows.slice(0, 15).reverse(); // the largest bar on top
    plot('chart-city', [
      { type: 'bar', orientation: 'h', y: top.map((r) => r.dimension_value),
        x: top.map((r) => r.gross_revenue), marker: { color: COLORS.revenue },
        customdata: top.map((r) => [r.orders, r.aov]),
        hovertemplate: '%{y}: %{x:,.2f}<br>%{customdata[0]} orders, AOV %{customdata[1]:,.2f}' +
          '<extra></extra>' },
    ], layout({ margin: { l: 110, r: 16, t: 8, b: 36 }, xaxis: { title: { text: 'Revenue' } } }));

    const placed = rows.filter((r) => r.lat !== null && r.lon !== null && r.gross_revenue > 0);
    const largest = Math.max(1, ...placed.map((r) => r.gross_revenue));
    plot('chart-map', [
      { type: 'scattergeo', lat: placed.map((r) => r.lat), lon: placed.map((r) => r.lon),
        text: placed.map((r) => r.dimension_value + ': ' + fmtMoney(r.gross_revenue)),
        hoverinfo: 'text',
        marker: { size: placed.map((r) => 4 + 26 * Math.sqrt(r.gross_revenue / largest)),
          color: COLORS.revenue, opacity: 0.7, line: { width: 0.5, color: '#fff' } } },
    ], layout({
      margin: { l: 0, r: 0, t: 0, b: 0 },
      geo: { resolution: 110, projection: { type: 'natural earth' }, fitbounds: 'locations',
        showcountries: true, countrycolor: '#c8ced9', showland: true, landcolor: '#eef0f4',
        showocean: true, oceancolor: '#f8fafc', showframe: false, bgcolor: 'rgba(0,0,0,0)' },
    }));
  }

  function showCategories(all) {
    const rows = all.filter((r) => r.orders > 0).reverse(); // the largest bar on top
    plot('chart-category', [
      { type: 'bar', orientation: 'h', y: rows.map((r) => r.dimension_value),
        x: rows.map((r) => r.gross_revenue), marker: { color: COLORS.revenue },
        text: rows.map((r) => fmtCount(r.orders) + ' orders'), textposition: 'outside', cliponaxis: false,
        customdata: rows.map((r) => [r.orders, r.aov, r.cancellations]),
        hovertemplate: '%{y}: %{x:,.2f}<br>%{customdata[0]} orders, AOV %{customdata[1]:,.2f}, ' +
          '%{customdata[2]} cancelled<extra></extra>' },
    ], layout({ margin: { l: 130, r: 16, t: 8, b: 36 },
      // Room right of the longest bar for its label.
      xaxis: { title: { text: 'Revenue' }, range: [0, 1.2 * Math.max(1, ...rows.map((r) => r.gross_revenue))] } }));
  }

  function showFailures(all) {
    const rows = all.filter((r) => r.payment_attempts > 0);
    const names = rows.map((r) => r.dimension_value);
    plot('chart-failures', [
      { type: 'bar', x: names, y: rows.map((r) => r.failed_payments), name: 'Failed payments',
        marker: { color: COLORS.bad } },
      { type: 'scatter', mode: 'markers', x: names,
        y: rows.map((r) => (r.failure_rate === null ? null : 100 * r.failure_rate)),
        name: 'Failure rate (%)', yaxis: 'y2', marker: { color: COLORS.muted, size: 9 } },
    ], layout({
      margin: { l: 56, r: 56, t: 28, b: 36 },
      xaxis: { tickangle: -35, automargin: true },
      yaxis: { title: { text: 'Failed payments' }, rangemode: 'tozero' },
      yaxis2: { title: { text: 'Rate (%)' }, overlaying: 'y', side: 'right', rangemode: 'tozero' },
    }));
  }

  function showCancellations(rows) {
    const r = rows.slice().reverse();
    plot('chart-cancellations', [
      { type: 'bar', orientation: 'h', y: r.map((x) => x.reason), x: r.map((x) => x.cancellations),
        marker: { color: COLORS.orders }, customdata: r.map((x) => x.refunded),
        hovertemplate: '%{y}: %{x} cancellations, %{customdata:,.2f} refunded<extra></extra>' },
    ], layout({ margin: { l: 130, r: 16, t: 8, b: 36 },
      xaxis: { title: { text: 'Cancellations' }, rangemode: 'tozero' } }));
  }

  // ---- refresh ----

  function setStatus(text) { document.getElementById('status').textContent = text; }

  async function refresh() {
    const mine = ++seq;
    const started = performance.now();
    try {
      // The totals name the exact minutes of the range; every chart reads those.
      const totals = await api('/api/totals?' + rangeQuery());
      if (mine !== seq) return;
      showTotals(totals);
      const q = 'from=' + totals.range.from + '&to=' + totals.range.to;
      const [minutes, cities, categories, methods, cancels] = await Promise.all([
        kpiRows(totals.range.from, totals.range.to),
        api('/api/top?dimension=city&n=1000&' + q),
        api('/api/top?dimension=category&n=1000&' + q),
        api('/api/top?dimension=payment_method&metric=failed_payments&n=1000&' + q),
        api('/api/cancellations?' + q),
      ]);
      if (mine !== seq) return;
      showMinutes(minutes, totals.range.from, totals.range.to);
      showCities(cities.rows);
      showCategories(categories.rows);
      showFailures(methods.rows);
      showCancellations(cancels.rows);
      setStatus('');
    } catch (e) {
      if (mine === seq) setStatus(e.message);
    } finally {
      lastRefreshMs = performance.now() - started;
    }
  }

  // Changes arrive many times a second while events flow. One refresh runs
  // at a time; a change during it asks for one more after it, and a slow
  // refresh (a long range reading archived data) waits as long as it took
  // before the next, so that the page never keeps the server busy.
  let running = false;
  let wanted = false;
  let lastRefreshMs = 0;

  // <body data-refresh="busy|idle"> tells scripts and tests whether the page
  // shows the newest answers.
  async function requestRefresh() {
    if (running) { wanted = true; return; }
    running = true;
    document.body.dataset.refresh = 'busy';
    do {
      wanted = false;
      await refresh();
      if (wanted && lastRefreshMs > 250) await new Promise((ok) => setTimeout(ok, lastRefreshMs));
    } while (wanted);
    running = false;
    document.body.dataset.refresh = 'idle';
  }

  // ---- the live stream ----

  function setLive(state, text) {
    const el = document.getElementById('live');
    el.dataset.state = state;
    el.textContent = text;
  }

  // Reads /api/stream; each 'kpi' event asks for a refresh. A dropped
  // stream is opened again after the server's retry interval, and a refresh
  // then catches up with what was missed.
  async function follow() {
    let retry = 1000;
    for (;;) {
      try {
        const r = await fetch('/api/stream', { headers: headers(), cache: 'no-store' });
        if (!r.ok || !r.body) throw new Error('/api/stream: ' + r.status);
        setLive('live', 'live');
        requestRefresh();
        const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
        let text = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          text += value;
          let end;
          while ((end = text.indexOf('\n\n')) >= 0) {
            const block = text.slice(0, end);
            text = text.slice(end + 2);
            let event = 'message';
            for (const line of block.split('\n')) {
              if (line.startsWith('event:')) event = line.slice(6).trim();
              else if (line.startsWith('retry:')) retry = Number(line.slice(6)) || retry;
            }
            if (event === 'kpi') requestRefresh();
          }
        }
      } catch (e) {
        // Offline or refused: shown below, tried again.
      }
      setLive('down', 'reconnecting');
      await new Promise((ok) => setTimeout(ok, retry));
    }
  }

  // ---- range selection ----

  // datetime-local inputs hold UTC here ("2026-11-02T10:00"), as the labels say.
  function toInput(ms) { return new Date(ms).toISOString().slice(0, 16); }
  function fromInput(s) { return Date.parse(s + ':00Z'); }

  function press(name) {
    document.querySelectorAll('.range button').forEach((b) => {
      b.setAttribute('aria-pressed', String(b.dataset.range === name));
    });
  }

  function select(name) {
    const form = document.getElementById('custom');
    const customButton = document.querySelector('.range button[data-range="custom"]');
    if (name === 'custom') {
      // Start from the minutes shown now.
      const label = document.getElementById('range-label').dataset;
      const now = Math.floor(Date.now() / MIN) * MIN;
      document.getElementById('custom-from').value = toInput(label.from ? Date.parse(label.from) : now - 3600000);
      document.getElementById('custom-to').value = toInput(label.to ? Date.parse(label.to) : now);
      form.hidden = false;
      customButton.setAttribute('aria-expanded', 'true');
      document.getElementById('custom-from').focus();
      return;
    }
    if (!NAMED.includes(name)) return;
    form.hidden = true;
    customButton.setAttribute('aria-expanded', 'false');
    range = { name: name };
    press(name);
    requestRefresh();
  }

  document.getElementById('custom').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const from = fromInput(document.getElementById('custom-from').value);
    const to = fromInput(document.getElementById('custom-to').value);
    if (!(from < to)) {
      setStatus('Custom range: "To" must be after "From".');
      return;
    }
    range = { name: 'custom', from: from, to: to };
    press('custom');
    requestRefresh();
  });

  document.querySelectorAll('.range button').forEach((b) => {
    b.addEventListener('click', () => select(b.dataset.range));
  });
  select(NAMED.includes(hash.get('range')) ? hash.get('range') : '1h');
  follow();
})();
