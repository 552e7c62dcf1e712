/**
 * Seeded randomness for every model. One `Rng` per run: it draws JS-side numbers
 * (shuffles, subsets) and hands out integer seeds for tfjs random ops and initialisers,
 * so the same seed, code and backend give bit-identical results.
 *
 * Generator: mulberry32 (Tommy Ettinger's 32-bit state mixer) — small, fast and plenty
 * for shuffles and op seeds; it is not used where statistical quality matters in bulk
 * (bulk noise comes from tfjs's own seeded Philox/Alea kernels).
 */

export class Rng {
  private state: number;

  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new Error(`Rng: seed must be a finite number, got ${seed}`);
    // Mix the seed so that nearby seeds give unrelated streams.
    this.state = hash32(Math.floor(seed) >>> 0);
  }

  /** Uniform float in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** A fresh integer seed for a tfjs random op or initialiser. */
  seed(): number {
    return Math.floor(this.next() * 2147483647);
  }

  /** Standard normal (Box–Muller). */
  normal(): number {
    let u = 0;
    while (u === 0) u = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  /** A permutation of 0..n-1 (Fisher–Yates). */
  permutation(n: number): Uint32Array {
    const p = new Uint32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = p[i]!;
      p[i] = p[j]!;
      p[j] = t;
    }
    return p;
  }

  /** A child generator whose stream is independent of later draws from this one. */
  fork(label: string): Rng {
    let h = this.seed();
    for (let i = 0; i < label.length; i++) h = hash32((h ^ label.charCodeAt(i)) >>> 0);
    return new Rng(h);
  }
}

/** 32-bit integer hash (lowbias32). */
export function hash32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}
