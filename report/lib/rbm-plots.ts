/**
 * Charts section 4.1 needs and `src/ml/plots/chart.ts` does not draw (that file is shared
 * with sections 4.2–4.3, whose stored results it keys, so it is left alone):
 * - `encodedLineChart`: lines whose colour and dash pattern encode two different variables
 *   (e.g. colour = where rows were removed, dash = blank vs inpainted), with error bars;
 * - `weightGrid`: weight images on one shared, symmetric colour scale with a colour bar.
 * Same theme as chart.ts (fonts ≥ 11 px, Okabe–Ito colours, no background).
 */
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { Config, TopLevelSpec } from 'vega-lite';
import { OKABE_ITO } from '../../src/ml/plots/chart.ts';
import { imageGrid } from '../../src/ml/plots/grid.ts';

const FONT = '"DejaVu Sans", Helvetica, Arial, sans-serif';
const THEME: Config = {
  font: FONT,
  padding: 5,
  view: { stroke: null },
  title: { fontSize: 13, fontWeight: 'normal', anchor: 'start', color: '#000' },
  axis: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal', labelColor: '#222', titleColor: '#000', domainColor: '#444', tickColor: '#444', gridColor: '#e3e3e3', labelFlush: false },
  legend: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal', labelLimit: 400, titleLimit: 400, symbolStrokeWidth: 2, symbolSize: 300 },
  line: { strokeWidth: 2 },
  point: { filled: true },
};

async function render(spec: TopLevelSpec): Promise<string> {
  const compiled = vl.compile(spec, { config: THEME }).spec;
  delete compiled.background;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', logLevel: vega.Warn });
  try {
    const svg = await view.toSVG();
    // Stable ids (vega numbers clip paths with a process-wide counter).
    const ids = new Map<string, string>();
    for (const m of svg.matchAll(/\bid="([^"]+)"/g)) if (!ids.has(m[1]!)) ids.set(m[1]!, `${m[1]!.replace(/\d+$/, '')}${ids.size + 1}`);
    return svg.replace(/\bid="([^"]+)"|url\(#([^)]+)\)/g, (whole, def?: string, ref?: string) =>
      def !== undefined ? `id="${ids.get(def) ?? def}"` : `url(#${ids.get(ref!) ?? ref})`);
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

/** One line per (colour, dash) pair; colour and dash each have their own legend. */
export async function encodedLineChart(options: EncodedLineChartOptions): Promise<string> {
  const colours = [...new Set(options.points.map((p) => p.colour))];
  const dashes = [...new Set(options.points.map((p) => p.dash))];
  const values = options.points.map((p) => ({ ...p, lo: p.lo ?? p.y, hi: p.hi ?? p.y, panel: options.panel?.(p) ?? '', line: `${p.colour}|${p.dash}` }));
  const x = { field: 'x', type: 'quantitative', title: options.xTitle, scale: options.logX ? { type: 'log', nice: false } : { zero: false } };
  const yScale = options.yDomain ? { domain: options.yDomain } : { zero: options.zeroY ?? false };
  const color = { field: 'colour', type: 'nominal', title: options.colourTitle, legend: { symbolType: 'stroke' }, scale: { domain: colours, range: OKABE_ITO.slice(0, colours.length) } };
  const dash = { field: 'dash', type: 'nominal', title: options.dashTitle, legend: { symbolType: 'stroke' }, scale: { domain: dashes, range: [[1, 0], [6, 4], [2, 2], [8, 3, 2, 3]].slice(0, dashes.length) } };
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

export interface WeightGridOptions {
  cols: number;
  /** Integer zoom per weight pixel. Default 3. */
  scale?: number;
  /** Labels to the left of each row of tiles. */
  rowLabels?: string[];
  /** The symmetric range ±limit of the colour scale; default the largest |weight| shown. */
  limit?: number;
  /** Colour bar title. */
  unit?: string;
}

/**
 * Weight images (row-major [count, 784]) on ONE symmetric diverging scale (blue negative,
 * white 0, red positive) with a colour bar: faint filters look faint. Returns SVG text
 * with the tiles embedded as a PNG.
 */
export function weightGrid(filters: Float32Array, options: WeightGridOptions): string {
  let limit = options.limit ?? 0;
  if (!limit) for (const w of filters) limit = Math.max(limit, Math.abs(w));
  const scale = options.scale ?? 3;
  const png = imageGrid(filters, { cols: options.cols, scale, colormap: 'diverging', range: [-limit, limit], gap: 3, rowLabels: options.rowLabels });
  const width = png[16]! * 2 ** 24 + png[17]! * 2 ** 16 + png[18]! * 256 + png[19]!;
  const height = png[20]! * 2 ** 24 + png[21]! * 2 ** 16 + png[22]! * 256 + png[23]!;
  const barW = 14;
  const barX = width + 16;
  const barTop = 8;
  const barH = Math.max(80, Math.min(height - 16, 260));
  const stops = [
    [0, 'rgb(33, 102, 172)'],
    [50, 'rgb(255, 255, 255)'],
    [100, 'rgb(178, 24, 43)'],
  ];
  const fmt = (v: number) => (Math.abs(v) >= 0.1 ? v.toFixed(2) : v.toPrecision(2));
  const totalW = barX + barW + 70;
  const font = 'font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12"';
  const b64 = Buffer.from(png).toString('base64');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${totalW}" height="${Math.max(height, barTop + barH + 10)}" viewBox="0 0 ${totalW} ${Math.max(height, barTop + barH + 10)}">`,
    `<defs><linearGradient id="weight-bar" x1="0" y1="1" x2="0" y2="0">${stops.map(([o, c]) => `<stop offset="${o}%" stop-color="${c}"/>`).join('')}</linearGradient></defs>`,
    `<image x="0" y="0" width="${width}" height="${height}" xlink:href="data:image/png;base64,${b64}" href="data:image/png;base64,${b64}" style="image-rendering: pixelated"/>`,
    `<rect x="${barX}" y="${barTop}" width="${barW}" height="${barH}" fill="url(#weight-bar)" stroke="#444" stroke-width="0.5"/>`,
    ...[limit, 0, -limit].map((v, i) => `<text x="${barX + barW + 4}" y="${barTop + (i * barH) / 2 + 4}" ${font} fill="#222">${fmt(v)}</text>`),
    options.unit ? `<text x="${barX - 2}" y="${barTop + barH + 16}" ${font} fill="#000">${options.unit}</text>` : '',
    '</svg>',
  ].join('');
}
