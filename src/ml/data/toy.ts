/**
 * The 2-D toy problem of GAN papers: a mixture of Gaussians on a ring (Metz et al. 2017,
 * "Unrolled Generative Adversarial Networks", §3.1: 8 modes on a circle of radius 2,
 * standard deviation 0.02), and how many of its modes a set of samples covers.
 */
import { assert } from '../assert.ts';
import type { Rng } from '../random.ts';

export interface RingOptions {
  modes?: number;
  radius?: number;
  sd?: number;
}

const defaults = { modes: 8, radius: 2, sd: 0.02 } as const;

/** Centres of the ring's modes, [modes, 2]. */
export function ringCentres(options: RingOptions = {}): Float32Array {
  const { modes, radius } = { ...defaults, ...options };
  const centres = new Float32Array(modes * 2);
  for (let k = 0; k < modes; k++) {
    centres[2 * k] = radius * Math.cos((2 * Math.PI * k) / modes);
    centres[2 * k + 1] = radius * Math.sin((2 * Math.PI * k) / modes);
  }
  return centres;
}

/** `n` points [n, 2]: a uniformly chosen mode plus isotropic Gaussian noise. */
export function ringOfGaussians(n: number, rng: Rng, options: RingOptions = {}): Float32Array {
  const { modes, sd } = { ...defaults, ...options };
  const centres = ringCentres(options);
  const points = new Float32Array(n * 2);
  for (let i = 0; i < n; i++) {
    const k = rng.int(modes);
    points[2 * i] = centres[2 * k]! + sd * rng.normal();
    points[2 * i + 1] = centres[2 * k + 1]! + sd * rng.normal();
  }
  return points;
}

export interface ModeCoverage {
  /** Samples within 3 sd of each mode's centre. */
  perMode: number[];
  /** Modes that hold at least `minShare` of the samples (default: a fifth of a uniform share). */
  modesCovered: number;
  /** Share of samples within 3 sd of some mode ("high-quality" samples in Metz et al.). */
  highQuality: number;
}

export function modeCoverage(samples: Float32Array, options: RingOptions & { minShare?: number } = {}): ModeCoverage {
  const { modes, sd } = { ...defaults, ...options };
  assert(samples.length % 2 === 0, `modeCoverage: samples must be [n, 2], got ${samples.length} values`);
  const n = samples.length / 2;
  const minShare = options.minShare ?? 1 / (5 * modes);
  const centres = ringCentres(options);
  const perMode = new Array<number>(modes).fill(0);
  let near = 0;
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < modes; k++) {
      const dx = samples[2 * i]! - centres[2 * k]!;
      const dy = samples[2 * i + 1]! - centres[2 * k + 1]!;
      if (dx * dx + dy * dy <= (3 * sd) ** 2) {
        perMode[k]!++;
        near++;
        break;
      }
    }
  }
  return { perMode, modesCovered: perMode.filter((c) => c >= minShare * n).length, highQuality: near / n };
}
