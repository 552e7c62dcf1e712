/**
 * Gradient configs for BatchMatMul and _FusedMatMul that never ask matMul to transpose:
 * they transpose explicitly (tf.transpose) and multiply untransposed operands, because
 * transposed matMul is ~10–30× slower on wasm. Same mathematics as tfjs-core's
 * `BatchMatMul_grad` and the custom gradient of `fused.matMul`:
 *
 *   y = a·b      da = dy·bᵀ       db = aᵀ·dy
 *   y = a·bᵀ     da = dy·b        db = dyᵀ·a
 *   y = aᵀ·b     da = b·dyᵀ       db = a·dy
 *   y = aᵀ·bᵀ    da = bᵀ·dyᵀ      db = dyᵀ·aᵀ
 *
 * For _FusedMatMul, y = act(a·b + bias): dy is first multiplied by act'(y) (relu: step(y),
 * linear: 1) and the bias gradient is dy summed over every axis but the last.
 *
 * Reach: the _FusedMatMul config is used only when that kernel is recorded on the tape
 * directly; `tf.fused.matMul` (tf.layers Dense) records its own custom gradient, which
 * the kernel-level fix in matmul-untransposed.ts covers instead.
 */
import * as tf from '@tensorflow/tfjs';
import type { GradConfig, NamedAttrMap, Tensor } from '@tensorflow/tfjs';

/** Swaps the last two axes. */
function t(x: Tensor): Tensor {
  const rank = x.rank;
  const perm = [...Array(rank).keys()];
  perm[rank - 2] = rank - 1;
  perm[rank - 1] = rank - 2;
  return tf.transpose(x, perm);
}

function matMulGradients(
  dy: Tensor, a: Tensor, b: Tensor, transposeA: boolean, transposeB: boolean,
): { a: () => Tensor; b: () => Tensor } {
  if (!transposeA && !transposeB) return { a: () => tf.matMul(dy, t(b)), b: () => tf.matMul(t(a), dy) };
  if (!transposeA && transposeB) return { a: () => tf.matMul(dy, b), b: () => tf.matMul(t(dy), a) };
  if (transposeA && !transposeB) return { a: () => tf.matMul(b, t(dy)), b: () => tf.matMul(a, dy) };
  return { a: () => tf.matMul(t(b), t(dy)), b: () => tf.matMul(t(dy), t(a)) };
}

export const batchMatMulGradConfig: GradConfig = {
  kernelName: 'BatchMatMul',
  inputsToSave: ['a', 'b'],
  gradFunc: (dy: Tensor | Tensor[], saved: Tensor[], attrs?: NamedAttrMap) => {
    const [a, b] = saved;
    if (a == null || b == null || Array.isArray(dy)) throw new Error('BatchMatMul gradient: expected saved a, b and one dy');
    const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
    return matMulGradients(dy, a, b, transposeA, transposeB);
  },
};

export const fusedMatMulGradConfig: GradConfig = {
  kernelName: '_FusedMatMul',
  inputsToSave: ['a', 'b'],
  outputsToSave: [true],
  gradFunc: (dy: Tensor | Tensor[], saved: Tensor[], attrs?: NamedAttrMap) => {
    const [a, b, y] = saved;
    if (a == null || b == null || y == null || Array.isArray(dy)) {
      throw new Error('_FusedMatMul gradient: expected saved a, b, y and one dy');
    }
    const { transposeA, transposeB, activation } = attrs as unknown as {
      transposeA: boolean; transposeB: boolean; activation?: string;
    };
    let dyActivation: Tensor;
    if (activation == null || activation === 'linear') dyActivation = dy;
    else if (activation === 'relu') dyActivation = tf.mul(dy, tf.step(y));
    else throw new Error(`_FusedMatMul gradient: cannot compute the gradient of fused activation '${activation}'`);
    const lastAxis = dyActivation.rank - 1;
    const leading = [...Array(lastAxis).keys()];
    return {
      ...matMulGradients(dyActivation, a, b, transposeA, transposeB),
      // The wasm kernel accepts rank-1 bias only ([n]); so does this gradient.
      bias: () => tf.sum(dyActivation, leading),
    };
  },
};

const gradMark = Symbol.for('literate-report.ml.matMulGradients');
type Marked = GradConfig & { [gradMark]?: GradConfig | null };

/** Registers both configs, keeping tfjs's own for `unregisterMatMulGradients`; idempotent. */
export function registerMatMulGradients(): string[] {
  const registered: string[] = [];
  for (const config of [batchMatMulGradConfig, fusedMatMulGradConfig]) {
    const existing = tf.getGradient(config.kernelName) as Marked | undefined;
    if (existing != null && existing[gradMark] !== undefined) continue;
    const ours: Marked = { ...config, [gradMark]: existing ?? null };
    if (existing != null) tf.unregisterGradient(config.kernelName);
    tf.registerGradient(ours);
    registered.push(config.kernelName);
  }
  return registered;
}

/** Puts tfjs's own gradient configs back. */
export function unregisterMatMulGradients(): void {
  for (const name of ['BatchMatMul', '_FusedMatMul']) {
    const existing = tf.getGradient(name) as Marked | undefined;
    if (existing == null || existing[gradMark] === undefined) continue;
    tf.unregisterGradient(name);
    const original = existing[gradMark];
    if (original != null) tf.registerGradient(original);
  }
}
