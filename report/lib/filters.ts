/**
 * Two numbers that describe what a bank of 784-pixel filters looks like, so the report can
 * say "more digit-like" or "more local" with a measurement behind it.
 * - digitSimilarity: median over filters of max_c |cos(filter, centred class-mean digit c)|.
 * - locality: median over filters of the share of squared weight inside the best 10×10 window.
 */
export interface FilterStats {
  count: number;
  digitSimilarity: number;
  locality: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The ten class-mean images minus the overall mean image, [10, 784]. */
export function centredClassMeans(images: Float32Array, labels: Uint8Array): Float64Array[] {
  const sums = Array.from({ length: 10 }, () => new Float64Array(784));
  const counts = new Array<number>(10).fill(0);
  const overall = new Float64Array(784);
  for (let s = 0; s < labels.length; s++) {
    const c = labels[s]!;
    counts[c]!++;
    for (let i = 0; i < 784; i++) {
      sums[c]![i]! += images[s * 784 + i]!;
      overall[i]! += images[s * 784 + i]! / labels.length;
    }
  }
  return sums.map((sum, c) => sum.map((v, i) => v / Math.max(1, counts[c]!) - overall[i]!));
}

function cosine(a: Float32Array, b: Float64Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}

/** Share of the filter's squared weight inside its best window × window square. */
export function windowShare(filter: Float32Array, window = 10): number {
  const energy = filter.map((w) => w * w);
  let total = 0;
  for (const e of energy) total += e;
  if (total === 0) return 0;
  let best = 0;
  for (let top = 0; top + window <= 28; top++) {
    for (let left = 0; left + window <= 28; left++) {
      let sum = 0;
      for (let r = top; r < top + window; r++) for (let c = left; c < left + window; c++) sum += energy[r * 28 + c]!;
      best = Math.max(best, sum);
    }
  }
  return best / total;
}

export function filterStats(filters: Float32Array, images: Float32Array, labels: Uint8Array): FilterStats {
  const count = filters.length / 784;
  const means = centredClassMeans(images, labels);
  const similarity: number[] = [];
  const locality: number[] = [];
  for (let f = 0; f < count; f++) {
    const filter = filters.subarray(f * 784, (f + 1) * 784);
    similarity.push(Math.max(...means.map((m) => Math.abs(cosine(filter, m)))));
    locality.push(windowShare(filter));
  }
  return { count, digitSimilarity: median(similarity), locality: median(locality) };
}
