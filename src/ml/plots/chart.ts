/**
 * SVG charts for the report: line charts (training curves), band charts (mean ± sd over
 * runs), lines encoding two variables by colour and dash, scatter charts (latent codes
 * coloured by digit) and bar charts (metrics per model). Vega-Lite specs compiled to Vega
 * and rendered headless (`renderer: 'none'` + `toSVG()`), so no DOM or canvas is needed.
 *
 * One theme for every chart, chosen for print: fonts ≥ 11 px, no background (the page's
 * paper shows through), light grid, colour-blind-safe palettes (Okabe & Ito 2008 for up
 * to 8 categories; Paul Tol's "muted" scheme for 9–10), and lines told apart by dash
 * pattern as well as colour so they survive greyscale printing.
 *
 * Deterministic: the same input gives the same SVG string (Vega's global clip-path and
 * gradient counters are renumbered per chart).
 */
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { Config, TopLevelSpec } from 'vega-lite';
import { assert } from '../assert.ts';

/** Okabe–Ito, reordered so the first colours contrast most on white; yellow last. */
export const OKABE_ITO = ['#0072B2', '#E69F00', '#009E73', '#D55E00', '#CC79A7', '#56B4E9', '#000000', '#F0E442'];
/** Paul Tol's "muted" (9 colours) plus a mid grey in place of his pale "bad data" grey. */
export const TOL_MUTED_10 = [
  '#332288', '#88CCEE', '#44AA99', '#117733', '#999933', '#DDCC77', '#CC6677', '#882255', '#AA4499', '#777777',
];

const FONT = '"DejaVu Sans", Helvetica, Arial, sans-serif';

const THEME: Config = {
  font: FONT,
  padding: 5,
  view: { stroke: null },
  title: { fontSize: 13, fontWeight: 'normal', anchor: 'start', color: '#000' },
  axis: {
    labelFontSize: 11,
    titleFontSize: 12,
    titleFontWeight: 'normal',
    labelColor: '#222',
    titleColor: '#000',
    domainColor: '#444',
    tickColor: '#444',
    gridColor: '#e3e3e3',
    labelFlush: false,
  },
  // Long series names ("exact log-likelihood, 20 hidden (test)") must not be cut off in print.
  legend: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal', labelLimit: 400 },
  line: { strokeWidth: 2 },
  point: { filled: true },
  bar: { color: OKABE_ITO[0] },
};

export interface ChartFrame {
  title?: string;
  /** Plot area width in px, default 360. */
  width?: number;
  /** Plot area height in px, default 220. */
  height?: number;
}

export interface LineSeries {
  name: string;
  x: number[];
  y: number[];
}

export interface LineChartOptions extends ChartFrame {
  series: LineSeries[];
  xTitle: string;
  yTitle: string;
  logX?: boolean;
  logY?: boolean;
  /** Draw a dot at each data point (default: only when a series has ≤ 30 points). */
  points?: boolean;
}

/**
 * Line chart, one line per series, legend in series order. Non-finite values, and
 * values ≤ 0 on a log axis, are dropped (a diverged loss leaves a gap, not an error).
 */
export async function lineChart(options: LineChartOptions): Promise<string> {
  const names = options.series.map((s) => s.name);
  assert(new Set(names).size === names.length, `lineChart: series names must be unique, got ${names.join(', ')}`);
  const values: { series: string; x: number; y: number }[] = [];
  for (const s of options.series) {
    assert(s.x.length === s.y.length, `lineChart: series "${s.name}" has ${s.x.length} x and ${s.y.length} y values`);
    for (let i = 0; i < s.x.length; i++) {
      const x = s.x[i]!;
      const y = s.y[i]!;
      if (!usable(x, options.logX) || !usable(y, options.logY)) continue;
      values.push({ series: s.name, x, y });
    }
  }
  const maxPoints = Math.max(0, ...options.series.map((s) => s.x.length));
  const points = options.points ?? maxPoints <= 30;
  const single = names.length <= 1;
  const legend = single ? null : { title: null };
  const spec: TopLevelSpec = {
    ...frame(options),
    data: { values },
    mark: { type: 'line', point: points ? { size: 30 } : false, clip: true },
    encoding: {
      x: {
        field: 'x',
        type: 'quantitative',
        title: options.xTitle,
        scale: options.logX ? { type: 'log', nice: false } : { type: 'linear', zero: false },
      },
      y: {
        field: 'y',
        type: 'quantitative',
        title: options.yTitle,
        scale: options.logY ? { type: 'log' } : { type: 'linear', zero: false },
      },
      color: { field: 'series', type: 'nominal', scale: { domain: names, range: palette(names.length) }, legend },
      strokeDash: { field: 'series', type: 'nominal', scale: { domain: names }, legend },
      order: { field: 'x', type: 'quantitative' },
    },
  };
  return render(spec);
}

export interface BandSeries {
  name: string;
  x: number[];
  /** Mean (or single value) at each x. */
  y: number[];
  /** Standard deviation at each x: drawn as a band y ± sd. */
  sd?: number[];
}

export interface BandPanel {
  title?: string;
  yTitle: string;
  series: BandSeries[];
  logY?: boolean;
  /** Reference points drawn as black crosses (e.g. values printed by the course's script). */
  references?: { name: string; x: number; y: number }[];
}

export interface BandChartOptions extends ChartFrame {
  panels: BandPanel[];
  xTitle: string;
  logX?: boolean;
  /** Panels per row (default: all in one row). */
  columns?: number;
}

/**
 * Small multiples of line charts with ± sd bands: one panel per quantity, the same series
 * (colour and dash pattern) in every panel and one shared legend. Used wherever a number is
 * a mean over seeds.
 */
export async function bandChart(options: BandChartOptions): Promise<string> {
  const names = unique(options.panels.flatMap((p) => p.series.map((s) => s.name)));
  const legend = names.length > 1 ? { title: null, symbolType: 'stroke', symbolStrokeWidth: 2, symbolSize: 300 } : null;
  const color = { field: 'series', type: 'nominal', scale: { domain: names, range: palette(names.length) }, legend } as const;
  const dash = { field: 'series', type: 'nominal', scale: { domain: names }, legend } as const;
  const panels = options.panels.map((panel) => {
    const values: { series: string; x: number; y: number; lo: number; hi: number }[] = [];
    for (const s of panel.series) {
      assert(s.x.length === s.y.length, `bandChart: series "${s.name}" has ${s.x.length} x and ${s.y.length} y values`);
      s.x.forEach((x, i) => {
        const y = s.y[i]!;
        const sd = s.sd?.[i] ?? 0;
        if (!usable(x, options.logX) || !usable(y, panel.logY)) return;
        const lo = panel.logY ? Math.max(y - sd, y / 10) : y - sd;
        values.push({ series: s.name, x, y, lo, hi: y + sd });
      });
    }
    const x = { field: 'x', type: 'quantitative', title: options.xTitle, scale: options.logX ? { type: 'log', nice: false } : { zero: false } } as const;
    const yScale = panel.logY ? { type: 'log' } : { zero: false };
    const layers: object[] = [
      {
        mark: { type: 'errorband', opacity: 0.18 },
        encoding: { x, y: { field: 'lo', type: 'quantitative', title: panel.yTitle, scale: yScale }, y2: { field: 'hi' }, color },
      },
      {
        mark: { type: 'line', point: { size: 25 }, clip: true },
        encoding: { x, y: { field: 'y', type: 'quantitative', title: panel.yTitle, scale: yScale }, color, strokeDash: dash, order: { field: 'x', type: 'quantitative' } },
      },
    ];
    if (panel.references?.length) {
      layers.push({
        data: { values: panel.references },
        mark: { type: 'point', shape: 'cross', filled: true, size: 90, color: '#000' },
        encoding: { x: { field: 'x', type: 'quantitative' }, y: { field: 'y', type: 'quantitative' }, tooltip: { field: 'name' } },
      });
    }
    return {
      width: options.width ?? 220,
      height: options.height ?? 160,
      ...(panel.title ? { title: panel.title } : {}),
      data: { values },
      layer: layers,
    };
  });
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    ...(options.title ? { title: options.title } : {}),
    columns: options.columns ?? panels.length,
    concat: panels,
    resolve: { scale: { color: 'shared', strokeDash: 'shared' } },
  } as unknown as TopLevelSpec;
  return render(spec);
}

export interface ScatterPoint {
  x: number;
  y: number;
  label: string | number;
}

export interface ScatterChartOptions extends ChartFrame {
  points: ScatterPoint[];
  xTitle: string;
  yTitle: string;
  /** Legend title for the colour (e.g. 'digit'). */
  colorTitle: string;
  /** Dot area in px², default 12. */
  pointSize?: number;
  /** Dot opacity, default 0.7. */
  opacity?: number;
}

/**
 * Scatter chart coloured by label (e.g. 2-D latent codes by digit). Numeric labels are
 * ordered numerically in the legend, string labels in order of first appearance.
 */
export async function scatterChart(options: ScatterChartOptions): Promise<string> {
  const values = options.points
    .filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y))
    .map((p) => ({ x: p.x, y: p.y, label: String(p.label) }));
  const domain = labelDomain(options.points.map((p) => p.label));
  const spec: TopLevelSpec = {
    ...frame(options),
    data: { values },
    mark: { type: 'point', filled: true, size: options.pointSize ?? 12, opacity: options.opacity ?? 0.7 },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: options.xTitle, scale: { zero: false } },
      y: { field: 'y', type: 'quantitative', title: options.yTitle, scale: { zero: false } },
      color: {
        field: 'label',
        type: 'nominal',
        title: options.colorTitle,
        scale: { domain, range: palette(domain.length) },
        legend: { symbolOpacity: 1, symbolSize: 60 },
      },
    },
  };
  return render(spec);
}

export interface ScatterPanelsOptions extends ChartFrame {
  panels: { title: string; points: ScatterPoint[] }[];
  xTitle: string;
  yTitle: string;
  colorTitle: string;
  /** Panels per row (default 4). */
  columns?: number;
  pointSize?: number;
  opacity?: number;
  /** Fixed axis ranges shared by every panel (default: fitted per panel). */
  xDomain?: [number, number];
  yDomain?: [number, number];
}

/** Small multiples of scatter charts (e.g. a 2-D generator's samples over training), one legend. */
export async function scatterPanels(options: ScatterPanelsOptions): Promise<string> {
  const domain = labelDomain(options.panels.flatMap((p) => p.points.map((q) => q.label)));
  const panels = options.panels.map((panel) => ({
    width: options.width ?? 160,
    height: options.height ?? 160,
    title: panel.title,
    data: { values: panel.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y)).map((p) => ({ x: p.x, y: p.y, label: String(p.label) })) },
    mark: { type: 'point', filled: true, size: options.pointSize ?? 8, opacity: options.opacity ?? 0.6, clip: true },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: options.xTitle, scale: options.xDomain ? { domain: options.xDomain } : { zero: false } },
      y: { field: 'y', type: 'quantitative', title: options.yTitle, scale: options.yDomain ? { domain: options.yDomain } : { zero: false } },
      color: {
        field: 'label', type: 'nominal', title: options.colorTitle,
        scale: { domain, range: palette(domain.length) }, legend: { symbolOpacity: 1, symbolSize: 60 },
      },
    },
  }));
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    ...(options.title ? { title: options.title } : {}),
    columns: options.columns ?? 4,
    concat: panels,
  } as unknown as TopLevelSpec;
  return render(spec);
}

export interface Bar {
  name: string;
  value: number;
  /** Standard deviation: drawn as an error bar value ± sd. */
  sd?: number;
  /** Bars with the same name and different groups stand side by side, coloured by group. */
  group?: string;
}

export interface BarChartOptions extends ChartFrame {
  bars: Bar[];
  xTitle?: string;
  yTitle: string;
  /** Legend title for the groups. */
  groupTitle?: string;
  logY?: boolean;
}

/** Bar chart in input order; grouped (side by side, coloured) when bars carry a `group`. */
export async function barChart(options: BarChartOptions): Promise<string> {
  const values = options.bars
    .filter((b) => usable(b.value, options.logY))
    .map((b) => ({ name: b.name, value: b.value, group: b.group ?? '', lo: b.value - (b.sd ?? 0), hi: b.value + (b.sd ?? 0) }));
  const withErrors = options.bars.some((b) => b.sd !== undefined && Number.isFinite(b.sd));
  const names = unique(options.bars.map((b) => b.name));
  const groups = unique(options.bars.map((b) => b.group ?? ''));
  const grouped = groups.length > 1 || (groups[0] ?? '') !== '';
  const barLayer = {
    mark: { type: 'bar' },
    encoding: {
      x: {
        field: 'name',
        type: 'nominal',
        title: options.xTitle ?? null,
        sort: names,
        axis: { labelAngle: names.some((n) => n.length > 6) ? -30 : 0 },
      },
      y: {
        field: 'value',
        type: 'quantitative',
        title: options.yTitle,
        scale: { type: options.logY ? 'log' : 'linear' },
      },
      ...(grouped
        ? {
            xOffset: { field: 'group', type: 'nominal', sort: groups },
            color: {
              field: 'group',
              type: 'nominal',
              title: options.groupTitle ?? null,
              scale: { domain: groups, range: palette(groups.length) },
            },
          }
        : {}),
    },
  };
  if (!withErrors) return render({ ...frame(options), data: { values }, ...barLayer } as TopLevelSpec);
  const errorLayer = {
    mark: { type: 'errorbar', ticks: true, color: '#000' },
    encoding: {
      x: barLayer.encoding.x,
      y: { field: 'lo', type: 'quantitative', title: options.yTitle },
      y2: { field: 'hi' },
      ...(grouped ? { xOffset: { field: 'group', type: 'nominal', sort: groups } } : {}),
    },
  };
  return render({ ...frame(options), data: { values }, layer: [barLayer, errorLayer] } as unknown as TopLevelSpec);
}

function frame(options: ChartFrame) {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: options.width ?? 360,
    height: options.height ?? 220,
    ...(options.title ? { title: options.title } : {}),
  } as const;
}

/** Compiles with the theme, renders headless, returns the SVG with stable ids. */
async function render(spec: TopLevelSpec): Promise<string> {
  const compiled = vl.compile(spec, { config: THEME }).spec;
  delete compiled.background; // no background: the page shows through
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', logLevel: vega.Warn });
  try {
    const svg = await view.toSVG();
    return renumberIds(svg);
  } finally {
    view.finalize();
  }
}

export interface EncodedPoint {
  x: number;
  y: number;
  /** Error bar ends (e.g. mean ± sd, or a 95 % interval); omitted → no bar. */
  lo?: number;
  hi?: number;
  /** The variable shown by colour. */
  colour: string;
  /** The variable shown by dash pattern. */
  dash: string;
}

export interface EncodedLineChartOptions {
  points: EncodedPoint[];
  xTitle: string;
  yTitle: string;
  colourTitle: string;
  dashTitle: string;
  logX?: boolean;
  /** Explicit y range; default: from 0 when `zeroY`, else fitted. */
  yDomain?: [number, number];
  zeroY?: boolean;
  width?: number;
  height?: number;
  /** Panels by a third variable, side by side (same scales). */
  panel?: (p: EncodedPoint) => string;
  panelOrder?: string[];
}

/** Legends of {@link encodedLineChart}: wide stroke symbols, so a dash pattern can be read off its legend. */
const STROKE_LEGEND = { symbolType: 'stroke', symbolStrokeWidth: 2, symbolSize: 300, titleLimit: 400 } as const;

/**
 * Lines whose colour and dash pattern encode two different variables (e.g. colour = where
 * rows were removed, dash = blank vs inpainted), with error bars; one line per (colour,
 * dash) pair, and colour and dash each have their own legend.
 */
export async function encodedLineChart(options: EncodedLineChartOptions): Promise<string> {
  const colours = [...new Set(options.points.map((p) => p.colour))];
  const dashes = [...new Set(options.points.map((p) => p.dash))];
  const values = options.points.map((p) => ({ ...p, lo: p.lo ?? p.y, hi: p.hi ?? p.y, panel: options.panel?.(p) ?? '', line: `${p.colour}|${p.dash}` }));
  const x = { field: 'x', type: 'quantitative', title: options.xTitle, scale: options.logX ? { type: 'log', nice: false } : { zero: false } };
  const yScale = options.yDomain ? { domain: options.yDomain } : { zero: options.zeroY ?? false };
  const color = { field: 'colour', type: 'nominal', title: options.colourTitle, legend: STROKE_LEGEND, scale: { domain: colours, range: OKABE_ITO.slice(0, colours.length) } };
  const dash = { field: 'dash', type: 'nominal', title: options.dashTitle, legend: STROKE_LEGEND, scale: { domain: dashes, range: [[1, 0], [6, 4], [2, 2], [8, 3, 2, 3]].slice(0, dashes.length) } };
  const layers = [
    { mark: { type: 'line', clip: true }, encoding: { x, y: { field: 'y', type: 'quantitative', title: options.yTitle, scale: yScale }, color, strokeDash: dash, detail: { field: 'line' }, order: { field: 'x', type: 'quantitative' } } },
    { mark: { type: 'point', size: 22, filled: true, clip: true }, encoding: { x, y: { field: 'y', type: 'quantitative', scale: yScale }, color } },
    { mark: { type: 'rule', strokeWidth: 1.2, clip: true }, encoding: { x, y: { field: 'lo', type: 'quantitative', scale: yScale }, y2: { field: 'hi' }, color } },
  ];
  const size = { width: options.width ?? 300, height: options.height ?? 200 };
  const spec = options.panel
    ? { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', data: { values }, facet: { column: { field: 'panel', type: 'nominal', title: null, sort: options.panelOrder, header: { labelFontSize: 12 } } }, spec: { ...size, layer: layers }, resolve: { scale: { y: 'shared' } } }
    : { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', ...size, data: { values }, layer: layers };
  return render(spec as unknown as TopLevelSpec);
}

/**
 * Vega numbers clip paths and gradients with process-wide counters (clip1, clip2, …), so
 * the second identical chart would differ from the first. Renumber per document, in order
 * of first appearance.
 */
function renumberIds(svg: string): string {
  const ids = new Map<string, string>();
  for (const m of svg.matchAll(/\bid="([^"]+)"/g)) {
    const id = m[1]!;
    if (!ids.has(id)) ids.set(id, `${id.replace(/\d+$/, '')}${ids.size + 1}`);
  }
  if (ids.size === 0) return svg;
  return svg.replace(/\bid="([^"]+)"|url\(#([^)]+)\)/g, (whole, def?: string, ref?: string) => {
    if (def !== undefined) return `id="${ids.get(def) ?? def}"`;
    return `url(#${ids.get(ref!) ?? ref})`;
  });
}

function palette(n: number): string[] {
  return n <= OKABE_ITO.length ? OKABE_ITO.slice(0, Math.max(n, 1)) : TOL_MUTED_10;
}

function labelDomain(labels: (string | number)[]): string[] {
  if (labels.every((l) => typeof l === 'number')) {
    return unique((labels as number[]).slice().sort((a, b) => a - b).map(String));
  }
  return unique(labels.map(String));
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}

function usable(v: number, log?: boolean): boolean {
  return Number.isFinite(v) && (!log || v > 0);
}

