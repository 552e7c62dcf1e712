import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/ml/backend.ts';
import { createUNet } from '../../src/ml/models/unet.ts';
import { Rng } from '../../src/ml/random.ts';
import { createModelStep, REPORT_BATCH, type ModelStepKey } from '../../bench/model-steps.ts';

// wasm, as the benchmark: the cpu backend's convolution gradients take minutes at these sizes.
beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

/** Generous: a step of the MLP GAN or the U-Net takes well under a second, but the machine is shared. */
const SLOW = 300_000;

/** Trainable parameters of the same models in PyTorch (bench/torch_bench.py, counted with 1.13). */
const TORCH_PARAMS: Record<ModelStepKey, number> = { 'gan-512': 2_923_537, dcgan: 346_178, 'vae-course': 240_344, ae: 227_444, flow: 269_092 };

describe('bench/model-steps.ts', () => {
  it('uses the report\'s batch sizes', () => {
    expect(REPORT_BATCH).toEqual({ 'gan-512': 512, dcgan: 64, 'vae-course': 3000, ae: 3000, flow: 128 });
  });

  for (const key of Object.keys(TORCH_PARAMS) as ModelStepKey[]) {
    it(`${key}: the model PyTorch times (same parameter count), steps that train (variables change) and leak nothing`, () => {
      const variables = () => Object.values(tf.engine().state.registeredVariables);
      const before = variables().length;
      const model = createModelStep(key, 4);
      expect(model.params).toBe(TORCH_PARAMS[key]);
      expect(model.batch).toBe(4);
      // Σ|v| over every variable there is (the model's and the optimiser's moments).
      const weights = () => tf.tidy(() => tf.addN(variables().map((v) => tf.sum(tf.abs(v)))).dataSync()[0]!);
      const w0 = weights();
      const during = tf.memory().numTensors;
      model.step();
      model.step();
      expect(tf.memory().numTensors).toBe(during);
      expect(weights()).not.toBe(w0);
      model.dispose();
      // Every variable is gone. (numTensors is not back where it was: src/ml/trainer.ts's
      // createAdam leaves the two zerosLike tensors it makes each moment variable from, two
      // per trained variable, until the process ends; not bench code.)
      expect(variables().length).toBe(before);
    }, SLOW);
  }
});

const PYTHON = '/usr/bin/python3';
const hasTorch = (() => {
  if (!existsSync(PYTHON)) return false;
  try {
    execFileSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe.skipIf(!hasTorch)('bench/torch_bench.py UNet', () => {
  it('computes what unet.ts computes, given its weights (every weight random, so no zero-initialised layer hides a difference)', () => {
    const net = createUNet({ channels: [32, 64], embedDim: 64, frequencies: 16, rng: new Rng(11) });
    const rng = new Rng(12);
    net.variables.forEach((v) => tf.tidy(() => v.assign(tf.randomUniform(v.shape, -0.2, 0.2, 'float32', rng.seed()))));
    const b = 3;
    const x = tf.randomNormal([b, 784], 0, 1, 'float32', 13) as tf.Tensor2D;
    const t = tf.tensor1d([0.05, 0.5, 0.93]);
    const y = tf.tensor1d([3, 10, 7]); // 10 = no label
    const out = net.apply(x, t, y);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'unet-parity-'));
    try {
      const file = path.join(dir, 'case.json');
      writeFileSync(file, JSON.stringify({
        weights: net.variables.map((v) => [v.shape, Array.from(v.dataSync())]),
        x: Array.from(x.dataSync()),
        t: Array.from(t.dataSync()),
        y: Array.from(y.dataSync()),
        out: Array.from(out.dataSync()),
      }));
      const result = JSON.parse(execFileSync(PYTHON, [path.join(import.meta.dirname, '../../bench/torch_bench.py'), '--unet-parity', file], {
        env: { ...process.env, OMP_NUM_THREADS: '1', OMP_WAIT_POLICY: 'PASSIVE' },
        encoding: 'utf8',
      })) as { maxAbsDiff: number; maxAbs: number; params: number };
      expect(result.params).toBe(269_092);
      expect(result.maxAbs).toBeGreaterThan(0.1);
      expect(result.maxAbsDiff).toBeLessThan(1e-4 * Math.max(1, result.maxAbs));
    } finally {
      rmSync(dir, { recursive: true, force: true });
      tf.dispose([x, t, y, out]);
      net.dispose();
    }
  }, SLOW);
});
