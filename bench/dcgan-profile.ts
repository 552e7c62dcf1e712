/**
 * `npx tsx bench/dcgan-profile.ts` — where a DCGAN training step (batch 64, ganStep through
 * the trainer, wasm) spends its time, old kernels vs registerFastConvolutions(), three
 * times each, interleaved. Every wasm kernel is wrapped to add up the process CPU time of
 * its top-level calls (calls made inside another kernel count for that kernel), so the
 * figures hold on a loaded machine where wall time mostly waits for a core.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/ml/backend.ts';
import { Rng } from '../src/ml/random.ts';
import { createDcDiscriminator, createDcGenerator } from '../src/ml/models/dcgan.ts';
import { COURSE_ADAM, ganStep } from '../src/ml/models/gan.ts';
import { createStepRunner } from '../src/ml/trainer.ts';
import { registerFastConvolutions, unregisterFastConvolutions } from '../src/ml/kernels/fast-conv.ts';
await initBackend({ backend: 'wasm' });
const rng = new Rng(1);
const models = { generator: createDcGenerator({ latentDim: 10, rng }), discriminator: createDcDiscriminator({ rng }) };
const runner = createStepRunner({
  generator: { variables: models.generator.variables, optimizer: COURSE_ADAM },
  discriminator: { variables: models.discriminator.variables, optimizer: COURSE_ADAM },
});
const real = tf.randomUniform([64, 784], -1, 1) as tf.Tensor2D;
const step = () => runner.run({ epoch: 0, index: 0, globalStep: 0, x: real, rng }, (ctx) => ganStep(ctx, models));
// Per-kernel process CPU time, by wrapping every wasm kernel (top-level calls only).
let depth = 0;
const acc = new Map<string, { ms: number; n: number }>();
const wrapped = new WeakSet<object>();
function wrapAll() {
for (const config of tf.getKernelsForBackend('wasm')) {
  if (wrapped.has(config)) continue;
  wrapped.add(config);
  const original = config.kernelFunc;
  (config as { kernelFunc: tf.KernelFunc }).kernelFunc = ((args: Parameters<tf.KernelFunc>[0]) => {
    if (depth > 0) return original(args);
    depth++;
    const c0 = process.cpuUsage();
    try { return original(args); } finally {
      const c = process.cpuUsage(c0); depth--;
      const shapes = Object.values(args.inputs).map((t) => `[${(t as tf.TensorInfo).shape}]`).join('');
      const key = `${config.kernelName} ${shapes}`;
      const e = acc.get(key) ?? { ms: 0, n: 0 }; e.ms += (c.user + c.system) / 1000; e.n++; acc.set(key, e);
    }
  }) as tf.KernelFunc;
}
}
wrapAll();
for (const fast of [false, true, false, true, false, true]) {
  if (fast) registerFastConvolutions(); else unregisterFastConvolutions();
  wrapAll();
  // registerFastConvolutions wraps the (already wrapped) configs: our timers see the fast kernels as top-level calls.
  step(); step();
  acc.clear();
  const c0 = process.cpuUsage(); const t0 = performance.now();
  const n = 5;
  for (let i = 0; i < n; i++) step();
  const c = process.cpuUsage(c0);
  const total = (c.user + c.system) / 1000 / n;
  let conv = 0;
  const rows = [...acc.entries()].map(([k, v]) => [k, v.ms / n, v.n / n] as const).sort((a, b) => b[1] - a[1]);
  for (const [k, ms] of rows) if (/^Conv2D/.test(k)) conv += ms;
  console.log(`\n${fast ? 'fast-conv' : 'old'}: step CPU ${total.toFixed(1)} ms (wall ${((performance.now() - t0) / n).toFixed(1)} ms); convolutions ${conv.toFixed(1)} ms = ${(100 * conv / total).toFixed(0)} %`);
  for (const [k, ms, count] of rows.slice(0, 14)) console.log(ms.toFixed(1).padStart(7), count.toFixed(0).padStart(3), k);
}
