// Insights: the four delivery keys of one application's stage over 30, 90 or
// 365 days (GET /api/v1/insights), as figures and uPlot charts, each chart
// with its numbers in a table beside it for keyboard and screen reader users.
// The choice is kept in the URL (#/insights?application=&stage=&days=).
import uPlot from '../../vendor/uPlot.esm.js';
import { get, enc } from '../api.js';
import { h, clear, loading, errorBox, fmtDuration } from '../dom.js';
import { go } from '../router.js';

const PERIODS = [30, 90, 365];

export async function renderInsights(main, ctx) {
  ensureChartStyles();
  main.append(h('h1', null, 'Insights'));
  const apps = (await get('/applications?limit=1000')).items.map((a) => a.name);
  if (!apps.length) {
    main.append(h('p', { class: 'muted' }, 'No applications yet.'));
    return undefined;
  }
  const q = ctx.query;
  const app = apps.includes(q.get('application')) ? q.get('application') : apps[0];
  const days = PERIODS.includes(Number(q.get('days'))) ? Number(q.get('days')) : 30;
  const controls = h('form', { class: 'filters', 'aria-label': 'What to show' });
  const body = h('div', { class: 'insights' }, loading());
  main.append(controls, body);
  const charts = [];
  let data;
  try {
    data = await get(`/insights?application=${enc(app)}&days=${days}${q.get('stage') ? `&stage=${enc(q.get('stage'))}` : ''}`);
  } catch (e) {
    clear(body).append(errorBox(e));
    drawControls(controls, apps, app, [], '', days);
    return undefined;
  }
  drawControls(controls, apps, app, data.stages, data.stage, days);
  clear(body).append(
    h('p', { class: 'muted' }, `${data.application} · ${data.stage} · the last ${data.days} days, per ${data.bucket_seconds === 86400 ? 'day' : 'week'}`),
    figures(data),
    chartsOf(data, charts));
  const resize = new ResizeObserver(() => charts.forEach((c) => c.fit()));
  resize.observe(body);
  return () => {
    resize.disconnect();
    charts.forEach((c) => c.plot && c.plot.destroy());
  };
}

// Application, stage and period: changing one navigates, so the URL keeps it.
function drawControls(form, apps, app, stages, stage, days) {
  const navigate = (changes) => {
    const next = new URLSearchParams({ application: app, stage, days: String(days), ...changes });
    if (!next.get('stage')) next.delete('stage');
    go(`#/insights?${next}`);
  };
  clear(form).append(
    field('Application', h('select', { id: 'ins-app', onchange: (e) => navigate({ application: e.target.value, stage: '' }) },
      apps.map((a) => h('option', { value: a, selected: a === app }, a)))),
    stages.length ? field('Stage', h('select', { id: 'ins-stage', onchange: (e) => navigate({ stage: e.target.value }) },
      stages.map((s) => h('option', { value: s, selected: s === stage }, s)))) : null,
    h('fieldset', { class: 'period' }, h('legend', null, 'Period'),
      PERIODS.map((p) => h('label', { class: 'period-choice' },
        h('input', { type: 'radio', name: 'ins-days', value: String(p), checked: p === days, onchange: () => navigate({ days: String(p) }) }),
        ` ${p} days`))));
}

function field(label, control) {
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control);
}

function duration(seconds) {
  return seconds === null || seconds === undefined ? '—' : fmtDuration(seconds * 1000);
}

function percent(rate) {
  return rate === null || rate === undefined ? '—' : `${Math.round(rate * 1000) / 10} %`;
}

function figures(d) {
  const tile = (name, value, detail) => h('div', { class: 'card insight-tile', 'data-key': name },
    h('div', { class: 'insight-name' }, name), h('div', { class: 'insight-value' }, value),
    h('div', { class: 'small muted' }, detail));
  return h('div', { class: 'insight-tiles' },
    tile('Deployment frequency', `${Math.round(d.deployment_frequency_per_week * 10) / 10} per week`,
      `${d.succeeded} succeeded of ${d.deployments} deployments`),
    tile('Lead time', duration(d.lead_time_p50_seconds), 'median, build created → succeeded here'),
    tile('Change failure rate', percent(d.change_failure_rate),
      `${d.failures} of ${d.deployments} failed or were rolled back within 24 h`),
    tile('Time to restore', duration(d.time_to_restore_p50_seconds),
      `median of ${d.restores} restore${d.restores === 1 ? '' : 's'}, failure → next success or rollback`));
}

function chartsOf(d, charts) {
  const x = d.series.map((b) => Date.parse(b.start) / 1000);
  const col = (key, f = (v) => v) => d.series.map((b) => (b[key] === null ? null : f(b[key])));
  const hours = (s) => Math.round((s / 3600) * 100) / 100;
  const colors = chartColors();
  const specs = [
    {
      title: 'Deployments', unit: '',
      series: [
        // Failures are a part of the deployments: their bar is drawn over it.
        { label: 'deployments', values: col('deployments'), color: colors.ok, bars: true },
        { label: 'failures', values: col('failures'), color: colors.bad, bars: true },
      ],
    },
    {
      title: 'Change failure rate', unit: '%',
      series: [{ label: 'change failure rate', values: col('change_failure_rate', (r) => Math.round(r * 1000) / 10), color: colors.warn, points: true }],
    },
    {
      title: 'Lead time and time to restore (median, hours)', unit: 'h',
      series: [
        { label: 'lead time', values: col('lead_time_p50_seconds', hours), color: colors.accent, points: true },
        { label: 'time to restore', values: col('time_to_restore_p50_seconds', hours), color: colors.purple, points: true },
      ],
    },
  ];
  return h('div', { class: 'insight-charts' }, specs.map((spec) => {
    const chart = chartFigure(x, { ...spec, bucket: d.bucket_seconds }, colors);
    charts.push(chart);
    return chart.el;
  }));
}

// One chart in a <figure>: the canvas (hidden from screen readers) and the
// same numbers as a table in a <details>.
function chartFigure(x, spec, colors) {
  const holder = h('div', { class: 'chart', 'aria-hidden': 'true' });
  const el = h('figure', { class: 'card insight-chart' },
    h('figcaption', null, spec.title), holder,
    h('details', null, h('summary', null, 'Data table'),
      h('div', { class: 'table-wrap' }, h('table', null,
        h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'from (UTC)'), spec.series.map((s) => h('th', { scope: 'col' }, s.label)))),
        h('tbody', null, x.map((t, i) => h('tr', null,
          h('td', null, new Date(t * 1000).toLocaleDateString(undefined, { timeZone: 'UTC' })),
          spec.series.map((s) => h('td', null, s.values[i] === null ? '—' : `${s.values[i]}${spec.unit ? ` ${spec.unit}` : ''}`)))))))));
  const chart = { el, plot: null };
  chart.fit = () => {
    const width = Math.max(240, holder.clientWidth);
    if (!chart.plot) {
      if (!holder.isConnected || holder.clientWidth === 0) return;
      chart.plot = new uPlot(options(spec, width, colors), [x, ...spec.series.map((s) => s.values)], holder);
    } else if (Math.abs(chart.plot.width - width) > 2) {
      chart.plot.setSize({ width, height: 200 });
    }
  };
  return chart;
}

function options(spec, width, colors) {
  const bars = uPlot.paths.bars({ size: [0.6, 24], gap: 1 });
  return {
    width, height: 200,
    // Buckets are UTC days or weeks: label them in UTC.
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC'),
    legend: { show: true },
    cursor: { drag: { x: false, y: false } },
    // Half a bucket of room on each side, so the first and last bars show whole.
    scales: { x: { time: true, range: (u, min, max) => [min - spec.bucket / 2, max + spec.bucket / 2] }, y: { range: (u, min, max) => [0, Math.max(1, max ?? 1)] } },
    axes: [
      { stroke: colors.fg, grid: { stroke: colors.grid } },
      { stroke: colors.fg, grid: { stroke: colors.grid }, size: 64, values: (u, vals) => vals.map((v) => `${v}${spec.unit ? ` ${spec.unit}` : ''}`) },
    ],
    series: [{}, ...spec.series.map((s) => ({
      label: s.label,
      stroke: s.color,
      fill: s.bars ? s.color : undefined,
      width: s.bars ? 0 : 2,
      paths: s.bars ? bars : undefined,
      points: { show: !!s.points, size: 6 },
      spanGaps: false,
    }))],
  };
}

// Canvas colours come from the page's CSS custom properties.
function chartColors() {
  const css = getComputedStyle(document.documentElement);
  const v = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
  return {
    ok: v('--ok', '#1a7f37'), bad: v('--bad', '#cf222e'), warn: v('--warn', '#9a6700'),
    accent: v('--accent', '#1d4ed8'), purple: '#8250df', fg: v('--muted', '#59636e'), grid: v('--line', '#d5dae0'),
  };
}

// uPlot's own stylesheet, loaded once (a <link>, as the CSP allows).
function ensureChartStyles() {
  if (document.querySelector('link[data-vendor="uplot"]')) return;
  document.head.append(h('link', { rel: 'stylesheet', href: '/vendor/uPlot.min.css', 'data-vendor': 'uplot' }));
}
