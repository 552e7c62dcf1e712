import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/ml/random.ts';
import { createRbm, disposeRbm, freeEnergy, gibbs, rbmFromData, rbmToData, reconstruct, type Rbm } from '../../src/ml/models/rbm.ts';
import { batchSlices, fitRbm } from '../../src/ml/models/rbm-train.ts';
import { exactLogLikelihood, exactLogPartition, pseudoLikelihood } from '../../src/ml/models/rbm-likelihood.ts';
import { useTestBackend } from './setup-backend.ts';

beforeAll(async () => {
  await useTestBackend();
});

/** A 4-visible / 3-hidden RBM with weights large enough to matter. */
function tinyRbm(seed = 1, nVisible = 4, nComponents = 3): Rbm {
  const rng = new Rng(seed);
  const w = Float32Array.from({ length: nVisible * nComponents }, () => rng.normal());
  const b = Float32Array.from({ length: nVisible }, () => 0.5 * rng.normal());
  const c = Float32Array.from({ length: nComponents }, () => 0.5 * rng.normal());
  return rbmFromData({ nVisible, nComponents, weights: w, visibleBias: b, hiddenBias: c });
}

/** All binary vectors of length n, row-major [2^n, n]. */
function allStates(n: number): Float32Array {
  const out = new Float32Array(2 ** n * n);
  for (let s = 0; s < 2 ** n; s++) for (let i = 0; i < n; i++) out[s * n + i] = (s >> i) & 1;
  return out;
}

/** −E(v, h) = b·v + c·h + vᵀWh in float64. */
function negEnergy(d: ReturnType<typeof rbmToData>, v: ArrayLike<number>, h: ArrayLike<number>): number {
  let e = 0;
  for (let i = 0; i < d.nVisible; i++) e += d.visibleBias[i]! * v[i]!;
  for (let j = 0; j < d.nComponents; j++) e += d.hiddenBias[j]! * h[j]!;
  for (let i = 0; i < d.nVisible; i++) for (let j = 0; j < d.nComponents; j++) e += v[i]! * d.weights[i * d.nComponents + j]! * h[j]!;
  return e;
}

function bruteFreeEnergy(d: ReturnType<typeof rbmToData>, v: ArrayLike<number>): number {
  const hs = allStates(d.nComponents);
  let s = 0;
  for (let k = 0; k < 2 ** d.nComponents; k++) s += Math.exp(negEnergy(d, v, hs.subarray(k * d.nComponents, (k + 1) * d.nComponents)));
  return -Math.log(s);
}

function values(t: tf.Tensor): Float32Array {
  const v = t.dataSync() as Float32Array;
  t.dispose();
  return v;
}

describe('BernoulliRBM', () => {
  it('creates sklearn-like initial parameters', () => {
    const rbm = createRbm({ nVisible: 30, nComponents: 20, rng: new Rng(0) });
    const d = rbmToData(rbm);
    expect(rbm.weights.shape).toEqual([30, 20]);
    expect(rbm.persistentHidden.shape).toEqual([10, 20]);
    expect([...d.visibleBias, ...d.hiddenBias, ...d.persistentHidden!].every((x) => x === 0)).toBe(true);
    const std = Math.sqrt(d.weights.reduce((s, x) => s + x * x, 0) / d.weights.length);
    expect(std).toBeGreaterThan(0.008);
    expect(std).toBeLessThan(0.012);
    disposeRbm(rbm);
  });

  it('free energy matches a brute-force sum over hidden states (4 visible, 3 hidden)', () => {
    const rbm = tinyRbm();
    const d = rbmToData(rbm);
    const vs = Float32Array.from([...allStates(4), 0.3, 0.7, 0.1, 0.9]); // all binary + one grey
    const f = values(tf.tidy(() => freeEnergy(rbm, tf.tensor2d(vs, [17, 4]))));
    for (let k = 0; k < 17; k++) expect(f[k]).toBeCloseTo(bruteFreeEnergy(d, vs.subarray(k * 4, k * 4 + 4)), 4);
    disposeRbm(rbm);
  });

  it('pseudo-likelihood equals nVisible·log σ(F(v_flipped) − F(v)) computed directly', () => {
    const rbm = tinyRbm(2, 6, 3);
    const d = rbmToData(rbm);
    const rng = new Rng(5);
    const data = Float32Array.from({ length: 8 * 6 }, () => Math.round(rng.next() * 10) / 10); // non-binary too
    const pl = pseudoLikelihood(rbm, data, new Rng(9));
    const flipRng = new Rng(9);
    for (let s = 0; s < 8; s++) {
      const v = Array.from(data.subarray(s * 6, s * 6 + 6));
      const flipped = [...v];
      const i = flipRng.int(6);
      flipped[i] = 1 - flipped[i]!;
      const diff = bruteFreeEnergy(d, flipped) - bruteFreeEnergy(d, v);
      expect(pl[s]).toBeCloseTo(6 * -Math.log1p(Math.exp(-diff)), 3);
    }
    disposeRbm(rbm);
  });

  it('exact log Z matches brute force over all (v, h), and log-likelihoods normalise', () => {
    const rbm = tinyRbm(3, 5, 4);
    const d = rbmToData(rbm);
    const vs = allStates(5);
    const hs = allStates(4);
    let z = 0;
    for (let a = 0; a < 32; a++) for (let k = 0; k < 16; k++) z += Math.exp(negEnergy(d, vs.subarray(a * 5, a * 5 + 5), hs.subarray(k * 4, k * 4 + 4)));
    const logZ = exactLogPartition(rbm);
    expect(logZ).toBeCloseTo(Math.log(z), 4);
    // Σ_v p(v) = 1: the mean log p over all states and log-sum-exp both check out.
    let total = 0;
    for (let a = 0; a < 32; a++) total += Math.exp(exactLogLikelihood(rbm, vs.subarray(a * 5, a * 5 + 5), logZ));
    expect(total).toBeCloseTo(1, 4);
    disposeRbm(rbm);
  });

  it('batches follow gen_even_slices: in order, the last one short', () => {
    expect(batchSlices(25, 10)).toEqual([
      [0, 10],
      [10, 10],
      [20, 5],
    ]);
  });

  it('fits without leaking tensors, and the same seed gives bit-identical weights', () => {
    const dataRng = new Rng(11);
    const data = Float32Array.from({ length: 45 * 16 }, () => (dataRng.next() < 0.3 ? 1 : dataRng.next() * 0.5));
    const run = (): { d: ReturnType<typeof rbmToData>; pl: number[] } => {
      const rng = new Rng(42);
      const rbm = createRbm({ nVisible: 16, nComponents: 5, rng });
      fitRbm(rbm, data, { nIter: 1, rng, learningRate: 0.1 }); // warm-up allocations
      const before = tf.memory().numTensors;
      const res = fitRbm(rbm, data, { nIter: 3, rng, learningRate: 0.1 });
      expect(tf.memory().numTensors).toBe(before);
      const d = rbmToData(rbm);
      disposeRbm(rbm);
      return { d, pl: res.pseudoLikelihood };
    };
    const a = run();
    const b = run();
    expect(a.pl).toHaveLength(3);
    expect(a.pl.every(Number.isFinite)).toBe(true);
    expect(Buffer.from(a.d.weights.buffer).equals(Buffer.from(b.d.weights.buffer))).toBe(true);
    expect(Buffer.from(a.d.visibleBias.buffer).equals(Buffer.from(b.d.visibleBias.buffer))).toBe(true);
    expect(a.d.weights.some((x, k) => x !== a.d.weights[k === 0 ? 1 : 0])).toBe(true);
  });

  it('one PCD step equals a float64 re-computation of sklearn _fit', () => {
    // Visible biases of ±30 make v_neg ~ P(v | h) deterministic, so the whole update is.
    const nV = 6;
    const nC = 4;
    const rng = new Rng(3);
    const rbm = rbmFromData({
      nVisible: nV,
      nComponents: nC,
      weights: Float32Array.from({ length: nV * nC }, () => 0.3 * rng.normal()),
      visibleBias: Float32Array.from([30, -30, 30, 30, -30, -30]),
      hiddenBias: Float32Array.from({ length: nC }, () => rng.normal()),
      persistentHidden: new Float32Array(2 * nC), // 2 chains ≠ batch 3: reset to 3 zero chains
    });
    const before = rbmToData(rbm);
    const data = Float32Array.from({ length: 3 * nV }, () => rng.next());
    const lrRaw = 0.5;
    fitRbm(rbm, data, { nIter: 1, rng: new Rng(8), batchSize: 3, learningRate: lrRaw, score: false });
    const after = rbmToData(rbm);
    const sig = (x: number): number => 1 / (1 + Math.exp(-x));
    const hMean = (v: ArrayLike<number>): number[] =>
      Array.from({ length: nC }, (_, j) => sig(before.hiddenBias[j]! + Array.from({ length: nV }, (_, i) => v[i]! * before.weights[i * nC + j]!).reduce((a, x) => a + x, 0)));
    const vNeg = [1, 0, 1, 1, 0, 0];
    const hNeg = hMean(vNeg);
    const lr = lrRaw / 3;
    for (let j = 0; j < nC; j++) {
      let dc = -3 * hNeg[j]!;
      for (let s = 0; s < 3; s++) dc += hMean(data.subarray(s * nV, s * nV + nV))[j]!;
      expect(after.hiddenBias[j]).toBeCloseTo(before.hiddenBias[j]! + lr * dc, 5);
      for (let i = 0; i < nV; i++) {
        let dw = -3 * vNeg[i]! * hNeg[j]!;
        for (let s = 0; s < 3; s++) dw += data[s * nV + i]! * hMean(data.subarray(s * nV, s * nV + nV))[j]!;
        expect(after.weights[i * nC + j]).toBeCloseTo(before.weights[i * nC + j]! + lr * dw, 5);
      }
    }
    for (let i = 0; i < nV; i++) {
      let db = -3 * vNeg[i]!;
      for (let s = 0; s < 3; s++) db += data[s * nV + i]!;
      expect(after.visibleBias[i]).toBeCloseTo(before.visibleBias[i]! + lr * db, 5);
    }
    expect(after.persistentHidden!.length).toBe(3 * nC);
    expect([...after.persistentHidden!].every((x) => x === 0 || x === 1)).toBe(true);
    disposeRbm(rbm);
  });

  it('Gibbs with clamping keeps the known pixels exactly', () => {
    const rbm = tinyRbm(6, 12, 5);
    const rng = new Rng(1);
    const v = Float32Array.from({ length: 4 * 12 }, () => rng.next());
    const mask = Float32Array.from({ length: 12 }, (_, i) => (i < 7 ? 1 : 0));
    for (const returnProbabilities of [false, true]) {
      const out = gibbs(rbm, v, 5, new Rng(2), { clamp: { mask, values: v }, returnProbabilities });
      for (let s = 0; s < 4; s++) for (let i = 0; i < 12; i++) {
        const x = out[s * 12 + i]!;
        if (i < 7) expect(x).toBe(v[s * 12 + i]);
        else if (!returnProbabilities) expect(x === 0 || x === 1).toBe(true);
        else expect(x > 0 && x < 1).toBe(true);
      }
    }
    const before = tf.memory().numTensors;
    gibbs(rbm, v, 3, new Rng(2));
    reconstruct(rbm, v);
    expect(tf.memory().numTensors).toBe(before);
    disposeRbm(rbm);
  });

  it('round-trips through plain data', () => {
    const rbm = tinyRbm(7);
    const copy = rbmFromData(rbmToData(rbm));
    expect([...rbmToData(copy).weights]).toEqual([...rbmToData(rbm).weights]);
    disposeRbm(rbm);
    disposeRbm(copy);
  });
});

describe('model lifetime', () => {
  it('create + dispose leaves no tensors behind', () => {
    const before = tf.memory().numTensors;
    const rbm = createRbm({ nVisible: 8, nComponents: 3, rng: new Rng(0) });
    expect(tf.memory().numTensors).toBe(before + 4);
    disposeRbm(rbm);
    expect(tf.memory().numTensors).toBe(before);
  });
});
