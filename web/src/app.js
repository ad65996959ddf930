// The dashboard page: tiles from /api/totals and a chart of revenue and
// orders per minute from /api/kpis, for the range the buttons choose. Talks
// only to the server that served it (relative URLs); Plotly is served by it
// too (/assets/plotly.min.js).
//
// A server started with --auth-token needs the token on every API request:
// open the page as /#token=TOKEN. The fragment never leaves the browser; the
// page keeps the token in sessionStorage and drops it from the address bar.
'use strict';

(function () {
  const RANGES = ['15m', '1h', '24h', '7d'];
  let range = '1h';
  let seq = 0; // answers to an older selection are dropped

  function token() {
    const m = /(?:^#|&)token=([^&]*)/.exec(window.location.hash);
    if (m) {
      sessionStorage.setItem('shopstream-token', decodeURIComponent(m[1]));
      history.replaceState(null, '', window.location.pathname + window.location.search);
    }
    return sessionStorage.getItem('shopstream-token');
  }

  async function api(path) {
    const headers = {};
    const t = token();
    if (t) headers.Authorization = 'Bearer ' + t;
    const r = await fetch(path, { headers: headers, cache: 'no-store' });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) {
      let msg = body.error || r.statusText;
      if (r.status === 401) msg += ' (open this page as /#token=YOUR_TOKEN)';
      throw new Error(path.split('?')[0] + ': ' + r.status + ' ' + msg);
    }
    return body;
  }

  const money = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  const count = new Intl.NumberFormat();

  function fmtMoney(v) { return v === null || v === undefined ? '–' : money.format(v); }
  function fmtCount(v) { return v === null || v === undefined ? '–' : count.format(v); }
  function fmtRate(v) { return v === null || v === undefined ? '–' : (100 * v).toFixed(2) + ' %'; }

  function setText(id, text) { document.getElementById(id).textContent = text; }

  function showTotals(data) {
    const t = data.totals;
    setText('tile-revenue', fmtMoney(t.gross_revenue));
    setText('tile-orders', fmtCount(t.orders));
    setText('tile-aov', fmtMoney(t.aov));
    setText('tile-failed', fmtCount(t.failed_payments));
    setText('tile-failure-rate', t.failure_rate === null ? 'no payment attempts'
      : fmtRate(t.failure_rate) + ' of ' + fmtCount(t.payment_attempts) + ' attempts');
    setText('tile-cancellations', fmtCount(t.cancellations));
    setText('range-label', 'Minutes from ' + data.range.from + ' to ' + data.range.to + ' (UTC)');
  }

  function showChart(data) {
    const x = data.rows.map((r) => r.minute_start);
    const traces = [
      { x: x, y: data.rows.map((r) => r.gross_revenue), name: 'Revenue', type: 'scatter',
        mode: 'lines', line: { color: '#2f6fde' } },
      { x: x, y: data.rows.map((r) => r.orders), name: 'Orders', type: 'scatter', mode: 'lines',
        yaxis: 'y2', line: { color: '#e67e22' } },
    ];
    const layout = {
      margin: { l: 56, r: 48, t: 16, b: 40 },
      legend: { orientation: 'h', y: -0.2 },
      xaxis: { type: 'date' },
      yaxis: { title: { text: 'Revenue' }, rangemode: 'tozero' },
      yaxis2: { title: { text: 'Orders' }, overlaying: 'y', side: 'right', rangemode: 'tozero' },
      paper_bgcolor: 'rgba(0,0,0,0)',
      plot_bgcolor: 'rgba(0,0,0,0)',
    };
    const config = { responsive: true, displaylogo: false, showLink: false };
    window.Plotly.react('chart-kpis', traces, layout, config);
  }

  // The minutes of [from, to) in requests of at most a day each: 7 days of
  // minutes (10080 rows) would pass the server's default --max-rows (10000).
  async function kpiRows(from, to) {
    const DAY = 24 * 60 * 60 * 1000;
    const parts = [];
    for (let t = Date.parse(from), end = Date.parse(to); t < end; t += DAY) {
      const q = 'dimension=overall&from=' + new Date(t).toISOString() + '&to=' +
        new Date(Math.min(t + DAY, end)).toISOString();
      parts.push(api('/api/kpis?' + q));
    }
    const answers = await Promise.all(parts);
    return { rows: [].concat(...answers.map((a) => a.rows)) };
  }

  async function refresh() {
    const mine = ++seq;
    try {
      // The totals name the exact minutes of the range; the chart reads the same.
      const totals = await api('/api/totals?range=' + encodeURIComponent(range));
      if (mine !== seq) return;
      showTotals(totals);
      const kpis = await kpiRows(totals.range.from, totals.range.to);
      if (mine !== seq) return;
      showChart(kpis);
      setText('status', '');
    } catch (e) {
      if (mine === seq) setText('status', e.message);
    }
  }

  function select(name) {
    if (!RANGES.includes(name)) return;
    range = name;
    document.querySelectorAll('.range button').forEach((b) => {
      b.setAttribute('aria-pressed', String(b.dataset.range === name));
    });
    refresh();
  }

  document.querySelectorAll('.range button').forEach((b) => {
    b.addEventListener('click', () => select(b.dataset.range));
  });
  select(range);
})();
