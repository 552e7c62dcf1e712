/**
 * Image grids as PNG bytes: digit samples, filter banks (784-dim weight vectors),
 * interpolation rows and masked-vs-inpainted comparisons; and `weightGrid`, weight images
 * on one symmetric colour scale with a colour bar, as SVG.
 *
 * Convention (every grid in the report): ink on paper. In the 'gray' colormap the low
 * end of `range` is white and the high end black, so an MNIST digit (stroke ≈ 1) prints
 * as a black digit on white paper. In the 'diverging' colormap 0 is white, negative
 * values blue and positive values red (ColorBrewer RdBu end points, readable with the
 * common colour-vision deficiencies). Non-finite values (NaN) are drawn in orange: use
 * them to mark masked, missing pixels.
 *
 * Pure: images in, PNG bytes out. Rendering uses @napi-rs/canvas (ImageData +
 * putImageData for the tiles, fillText for the labels).
 */
import { createCanvas } from '@napi-rs/canvas';
import { assert } from '../assert.ts';

export type Colormap = 'gray' | 'diverging';

export interface ImageGridOptions {
  /** Number of images to draw (default: all in `images`). */
  count?: number;
  /** Rows of tiles (default: ceil(count / cols)). */
  rows?: number;
  /** Tiles per row. */
  cols: number;
  /** Image width in pixels (default 28). */
  width?: number;
  /** Image height in pixels (default 28). */
  height?: number;
  /**
   * Value range mapped onto the colormap. 'gray': [white, black], default [0, 1].
   * 'diverging': default symmetric around 0 at the largest |value| of all images.
   * Values outside are clamped. Ignored when `normalizeEach` is set.
   */
  range?: [number, number];
  /** Integer pixel zoom (nearest neighbour), default 2. */
  scale?: number;
  /** One label per tile, drawn under it (tile order, row-major). */
  labels?: string[];
  /** One label per row, drawn to the left of the row. */
  rowLabels?: string[];
  /** Pixels between tiles, default 4. */
  gap?: number;
  /**
   * Normalise each tile on its own (for filters): 'gray' maps the tile's min..max,
   * 'diverging' maps ±max|value| of the tile.
   */
  normalizeEach?: boolean;
  /** Default 'gray'. */
  colormap?: Colormap;
}

/** Font for all labels: at least 11 px so it stays legible in print. */
const FONT_PX = 12;
const FONT = `${FONT_PX}px "DejaVu Sans", sans-serif`;
const PAPER = [255, 255, 255] as const;
const FRAME = [190, 190, 190] as const;
/** Okabe–Ito orange for NaN (masked) pixels. */
const MISSING = [230, 159, 0] as const;
/** ColorBrewer RdBu end points: negative → blue, positive → red. */
const NEGATIVE = [33, 102, 172] as const;
const POSITIVE = [178, 24, 43] as const;

/** Renders `images` ([count, height·width], row-major) as a grid of tiles; returns PNG bytes. */
export function imageGrid(images: Float32Array, options: ImageGridOptions): Uint8Array {
  const width = options.width ?? 28;
  const height = options.height ?? 28;
  const pixels = width * height;
  const scale = options.scale ?? 2;
  const gap = options.gap ?? 4;
  const colormap = options.colormap ?? 'gray';
  const cols = options.cols;
  assert(Number.isInteger(cols) && cols > 0, `imageGrid: cols must be a positive integer, got ${cols}`);
  assert(Number.isInteger(scale) && scale > 0, `imageGrid: scale must be a positive integer, got ${scale}`);
  assert(Number.isInteger(gap) && gap >= 0, `imageGrid: gap must be a non-negative integer, got ${gap}`);
  assert(
    images.length % pixels === 0,
    `imageGrid: images.length must be a multiple of width·height = ${pixels}, got ${images.length}`,
  );
  const available = images.length / pixels;
  const count = options.count ?? available;
  assert(count >= 0 && count <= available, `imageGrid: count must be in [0, ${available}], got ${count}`);
  const rows = options.rows ?? Math.max(1, Math.ceil(count / cols));
  assert(rows * cols >= count, `imageGrid: rows·cols = ${rows * cols} tiles cannot hold count = ${count} images`);
  const { labels, rowLabels } = options;
  if (labels) assert(labels.length <= rows * cols, `imageGrid: got ${labels.length} labels for ${rows * cols} tiles`);
  if (rowLabels) assert(rowLabels.length <= rows, `imageGrid: got ${rowLabels.length} row labels for ${rows} rows`);

  const globalRange = options.range ?? defaultRange(images.subarray(0, count * pixels), colormap);
  assert(
    globalRange[1] !== globalRange[0] || options.normalizeEach === true,
    `imageGrid: range must not be empty, got [${globalRange[0]}, ${globalRange[1]}]`,
  );

  // Layout: [row label] [tile gap tile gap …], each tile followed by its label strip.
  const tileW = width * scale;
  const tileH = height * scale;
  const labelH = labels && labels.length > 0 ? FONT_PX + 6 : 0;
  const measure = createCanvas(1, 1).getContext('2d');
  measure.font = FONT;
  const rowLabelW =
    rowLabels && rowLabels.length > 0
      ? Math.ceil(Math.max(...rowLabels.map((s) => measure.measureText(s).width))) + 8
      : 0;
  const cellW = tileW + gap;
  const cellH = tileH + labelH + gap;
  const canvasW = rowLabelW + cols * cellW + gap;
  const canvasH = rows * cellH + gap;

  const canvas = createCanvas(canvasW, canvasH);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = rgb(PAPER);
  ctx.fillRect(0, 0, canvasW, canvasH);

  const tileImage = ctx.createImageData(tileW, tileH); // RGBA, reused for every tile
  for (let i = 0; i < count; i++) {
    const tile = images.subarray(i * pixels, (i + 1) * pixels); // [height·width]
    const [lo, hi] = options.normalizeEach ? tileRange(tile, colormap) : globalRange;
    paintTile(tile, width, height, scale, lo, hi, colormap, tileImage.data);
    const x = rowLabelW + gap + (i % cols) * cellW;
    const y = gap + Math.floor(i / cols) * cellH;
    ctx.fillStyle = rgb(FRAME);
    ctx.fillRect(x - 1, y - 1, tileW + 2, tileH + 2);
    ctx.putImageData(tileImage, x, y);
  }

  ctx.fillStyle = '#000000';
  ctx.font = FONT;
  if (labels) {
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    labels.forEach((label, i) => {
      const x = rowLabelW + gap + (i % cols) * cellW + tileW / 2;
      const y = gap + Math.floor(i / cols) * cellH + tileH + 3;
      ctx.fillText(label, x, y, cellW);
    });
  }
  if (rowLabels) {
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    rowLabels.forEach((label, r) => {
      ctx.fillText(label, rowLabelW - 4, gap + r * cellH + tileH / 2);
    });
  }
  return new Uint8Array(canvas.encodeSync('png'));
}

function paintTile(
  tile: Float32Array,
  width: number,
  height: number,
  scale: number,
  lo: number,
  hi: number,
  colormap: Colormap,
  out: Uint8ClampedArray,
): void {
  const tileW = width * scale;
  const span = hi - lo;
  for (let r = 0; r < height; r++) {
    for (let c = 0; c < width; c++) {
      const v = tile[r * width + c]!;
      const [red, green, blue] = colour(v, lo, span, colormap);
      for (let dy = 0; dy < scale; dy++) {
        let o = ((r * scale + dy) * tileW + c * scale) * 4;
        for (let dx = 0; dx < scale; dx++, o += 4) {
          out[o] = red;
          out[o + 1] = green;
          out[o + 2] = blue;
          out[o + 3] = 255;
        }
      }
    }
  }
}

function colour(v: number, lo: number, span: number, colormap: Colormap): readonly [number, number, number] {
  if (!Number.isFinite(v)) return MISSING;
  // t ∈ [0, 1]; a zero span (constant tile) maps to the middle.
  const t = span === 0 ? 0.5 : Math.min(1, Math.max(0, (v - lo) / span));
  if (colormap === 'gray') {
    const g = Math.round(255 * (1 - t));
    return [g, g, g];
  }
  // Diverging: t = 0.5 is white, 0 → NEGATIVE, 1 → POSITIVE.
  const end = t < 0.5 ? NEGATIVE : POSITIVE;
  const a = Math.abs(t - 0.5) * 2;
  return [
    Math.round(255 + (end[0] - 255) * a),
    Math.round(255 + (end[1] - 255) * a),
    Math.round(255 + (end[2] - 255) * a),
  ];
}

function defaultRange(values: Float32Array, colormap: Colormap): [number, number] {
  if (colormap === 'gray') return [0, 1];
  const m = maxAbs(values);
  return m === 0 ? [-1, 1] : [-m, m];
}

function tileRange(tile: Float32Array, colormap: Colormap): [number, number] {
  if (colormap === 'diverging') {
    const m = maxAbs(tile);
    return [-m, m];
  }
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of tile) {
    if (!Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return lo <= hi ? [lo, hi] : [0, 1];
}

function maxAbs(values: Float32Array): number {
  let m = 0;
  for (const v of values) if (Number.isFinite(v) && Math.abs(v) > m) m = Math.abs(v);
  return m;
}

function rgb(c: readonly [number, number, number]): string {
  return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
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
