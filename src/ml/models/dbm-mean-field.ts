/**
 * Mean-field inference in a two-layer DBM: the factorised posterior q(h1) q(h2) given v,
 * which is the positive phase of joint training (`dbm-train.ts`).
 *
 * References
 * - R. Salakhutdinov, G. Hinton, "Deep Boltzmann Machines" (AISTATS 2009), §2.2 (variational
 *   learning: mean-field fixed-point equations).
 * - R. Salakhutdinov, H. Larochelle, "Efficient Learning of Deep Boltzmann Machines"
 *   (AISTATS 2010) — the bottom-up initialisation of mean-field with doubled W1.
 */
import * as tf from '@tensorflow/tfjs';
import type { Dbm } from './dbm.ts';

export interface MeanFieldOptions {
  /** Maximum number of fixed-point updates (h1 then h2). Default 10. */
  steps?: number;
  /** Stop when max |Δμ| over both layers falls below this. Default 0 (run all steps). */
  tolerance?: number;
}

/**
 * Mean-field fixed point q(h1) q(h2) for v [n, nVisible]: start bottom-up with
 * μ1 = σ(2·vW1 + c1), μ2 = σ(μ1W2 + c2), then iterate
 * μ1 ← σ(vW1 + μ2W2ᵀ + c1), μ2 ← σ(μ1W2 + c2). Returns the tensors (caller disposes) and
 * the max |Δμ| of each update.
 */
export function meanField(
  dbm: Dbm,
  v: tf.Tensor2D,
  options: MeanFieldOptions & {
    /** W2ᵀ [nHidden2, nHidden1] if the caller has it: the same tensor in the Gibbs sweeps lets wasm reuse its packed matMul operator. */
    weights2T?: tf.Tensor2D;
  } = {},
): { mu1: tf.Tensor2D; mu2: tf.Tensor2D; changes: number[] } {
  const steps = options.steps ?? 10;
  const tolerance = options.tolerance ?? 0;
  const changes: number[] = [];
  const w2T = options.weights2T ?? tf.transpose(dbm.weights2); // [nH2, nH1]
  // Same call as in gibbsSweep (dbm-train.ts: fused, bias c1, linear), so that wasm can reuse the operator.
  const vInput = tf.fused.matMul({ a: v, b: dbm.weights1, bias: dbm.hiddenBias1 }) as tf.Tensor2D; // [n, nH1]
  let [mu1, mu2] = tf.tidy(() => {
    const m1 = tf.sigmoid(tf.sub(tf.mul(vInput, 2), dbm.hiddenBias1)) as tf.Tensor2D; // σ(2vW1 + c1)
    return [m1, tf.fused.matMul({ a: m1, b: dbm.weights2, bias: dbm.hiddenBias2, activation: 'sigmoid' }) as tf.Tensor2D];
  }) as [tf.Tensor2D, tf.Tensor2D];
  for (let s = 0; s < steps; s++) {
    const [next1, next2, change] = tf.tidy(() => {
      const n1 = tf.sigmoid(tf.add(vInput, tf.matMul(mu2, w2T))) as tf.Tensor2D; // [n, nH1]
      const n2 = tf.fused.matMul({ a: n1, b: dbm.weights2, bias: dbm.hiddenBias2, activation: 'sigmoid' }) as tf.Tensor2D; // [n, nH2]
      const c = tf.maximum(tf.max(tf.abs(tf.sub(n1, mu1))), tf.max(tf.abs(tf.sub(n2, mu2))));
      return [n1, n2, c];
    });
    mu1.dispose();
    mu2.dispose();
    mu1 = next1 as tf.Tensor2D;
    mu2 = next2 as tf.Tensor2D;
    const delta = change.dataSync()[0]!;
    change.dispose();
    changes.push(delta);
    if (delta < tolerance) break;
  }
  vInput.dispose();
  if (!options.weights2T) w2T.dispose();
  return { mu1, mu2, changes };
}
