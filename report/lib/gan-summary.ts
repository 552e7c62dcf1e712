/**
 * Summaries of section 4.2's runs for its figures and tables: means ± sd over runs per
 * epoch and per step, the dominance table of Q2, the backbone comparison of Q5. Kept apart
 * from gan-runs.ts so that editing a summary never re-trains a GAN (the training cells
 * import only gan-runs.ts).
 */
import { meanSd } from '../../src/ml/metrics/protocol.ts';
import type { GanRun } from './gan-runs.ts';

/** What the course's script printed (average G and D losses; latent 10, batch 512). */
export const COURSE_PRINTED = [
  { epoch: 1, gLoss: 0.78, dLoss: 0.70 },
  { epoch: 25, gLoss: 1.9, dLoss: 0.44 },
  { epoch: 50, gLoss: 2.62, dLoss: 0.33 },
] as const;

export interface MeanSdSeries {
  mean: number[];
  sd: number[];
}

function seriesOf(values: number[][]): MeanSdSeries {
  const length = Math.min(...values.map((v) => v.length));
  const stats = Array.from({ length }, (_, i) => meanSd(values.map((v) => v[i]!)));
  return { mean: stats.map((s) => s.mean), sd: stats.map((s) => s.sd) };
}

const TRAIN_KEYS = ['dLoss', 'gLoss', 'dReal', 'dFake', 'generatorGradNorm', 'discriminatorGradNorm'] as const;
const EVAL_KEYS = ['fd', 'precision', 'recall', 'entropy', 'digitsCovered'] as const;

/** Per-epoch mean ± sd over runs of every training and evaluation metric. */
export function acrossRuns(runs: readonly GanRun[]) {
  const epochs = Math.min(...runs.map((r) => r.epochs.length));
  return {
    epochs: Array.from({ length: epochs }, (_, i) => i + 1),
    train: Object.fromEntries(TRAIN_KEYS.map((k) => [k, seriesOf(runs.map((r) => r.epochs.map((e) => e.train[k]!)))])) as Record<(typeof TRAIN_KEYS)[number], MeanSdSeries>,
    eval: Object.fromEntries(EVAL_KEYS.map((k) => [k, seriesOf(runs.map((r) => r.epochs.map((e) => e.eval[k])))])) as Record<(typeof EVAL_KEYS)[number], MeanSdSeries>,
    seconds: seriesOf(runs.map((r) => r.epochs.map((e) => e.seconds))),
  };
}

/** A per-step metric over the first `maxStep` generator steps, mean ± sd over runs, x = step (1-based). */
export function stepBands(name: string, runs: readonly GanRun[], key: string, maxStep: number) {
  const logged = runs.map((r) => r.steps.filter((s) => s.globalStep < maxStep));
  const series = seriesOf(logged.map((steps) => steps.map((s) => s.metrics[key]!)));
  return { name, x: logged[0]!.slice(0, series.mean.length).map((s) => s.globalStep + 1), y: series.mean, sd: series.sd };
}

export interface DominanceSummary {
  label: string;
  /** Generator steps trained before the evaluation. */
  gSteps: number;
  /** Means over runs and over logged steps 1–`early` / the last logged steps before `gSteps`. */
  dFakeEarly: number;
  gradEarly: number;
  dFakeLate: number;
  gradLate: number;
  fd: ReturnType<typeof meanSd>;
  digits: ReturnType<typeof meanSd>;
  recall: ReturnType<typeof meanSd>;
  precision: ReturnType<typeof meanSd>;
}

/** Q2 summary of a setting, evaluated after its epoch `epoch` (1-based). */
export function dominanceSummary(label: string, runs: readonly GanRun[], epoch: number, early = 20): DominanceSummary {
  const gSteps = epoch * runs[0]!.stepsPerEpoch;
  const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
  const window = (from: number, to: number) => runs.flatMap((r) => r.steps.filter((s) => s.globalStep >= from && s.globalStep < to));
  const first = window(0, early);
  const last = window(gSteps - early, gSteps);
  const at = (r: GanRun) => r.epochs[epoch - 1]!.eval;
  return {
    label,
    gSteps,
    dFakeEarly: mean(first.map((s) => s.metrics['dFake']!)),
    gradEarly: mean(first.map((s) => s.metrics['generatorGradNorm']!)),
    dFakeLate: mean(last.map((s) => s.metrics['dFake']!)),
    gradLate: mean(last.map((s) => s.metrics['generatorGradNorm']!)),
    fd: meanSd(runs.map((r) => at(r).fd)),
    digits: meanSd(runs.map((r) => at(r).digitsCovered)),
    recall: meanSd(runs.map((r) => at(r).recall)),
    precision: meanSd(runs.map((r) => at(r).precision)),
  };
}

/** Q5: quality against training time, and the table at the end of training and at equal time. */
export function backboneComparison(groups: { mlp: readonly GanRun[]; dcgan: readonly GanRun[] }) {
  const curve = (name: string, runs: readonly GanRun[]) => {
    const stats = acrossRuns(runs);
    let total = 0;
    const minutes = stats.seconds.mean.map((s) => (total += s) / 60);
    return { name, minutes, fd: stats.eval.fd, precision: stats.eval.precision, recall: stats.eval.recall };
  };
  const curves = [curve('MLP GAN (course)', groups.mlp), curve('DCGAN', groups.dcgan)];
  const d0 = groups.dcgan[0]!;
  const dcganEpochs = (d0.epochs.length * d0.stepsPerEpoch * d0.batchSize) / 60000;
  const dcganMinutes = curves[1]!.minutes.at(-1)!;
  // The MLP's evaluation closest in cumulative training time to the DCGAN's end.
  const mlpMinutes = curves[0]!.minutes;
  const equalTimeEpoch = mlpMinutes.reduce((best, m, i) => (Math.abs(m - dcganMinutes) < Math.abs(mlpMinutes[best]! - dcganMinutes) ? i : best), 0) + 1;
  const fmt = (s: ReturnType<typeof meanSd>, digits: number) => `${s.mean.toFixed(digits)} ± ${s.sd.toFixed(digits)}`;
  const row = (name: string, runs: readonly GanRun[], epochIndex: number, epochsLabel: string) => {
    const at = (r: GanRun) => r.epochs[epochIndex]!;
    const minutes = meanSd(runs.map((r) => r.epochs.slice(0, epochIndex + 1).reduce((a, e) => a + e.seconds, 0) / 60));
    return {
      'model': name,
      'training': epochsLabel,
      'minutes': fmt(minutes, 1),
      'parameters (G / D)': `${(runs[0]!.params.generator / 1e6).toFixed(2)} M / ${(runs[0]!.params.discriminator / 1e6).toFixed(2)} M`,
      'FD': fmt(meanSd(runs.map((r) => at(r).eval.fd)), 1),
      'precision': fmt(meanSd(runs.map((r) => at(r).eval.precision)), 3),
      'recall': fmt(meanSd(runs.map((r) => at(r).eval.recall)), 3),
      'digits covered': meanSd(runs.map((r) => at(r).eval.digitsCovered)).mean.toFixed(1),
      'ms per sample': meanSd(runs.map((r) => r.samplingMs)).mean.toFixed(3),
    };
  };
  const mlpLast = groups.mlp[0]!.epochs.length;
  const stat = (runs: readonly GanRun[], index: number, key: 'fd' | 'precision' | 'recall') => meanSd(runs.map((r) => r.epochs[index]!.eval[key]));
  return {
    curves,
    dcganEpochs,
    dcganMinutes,
    equalTimeEpoch,
    rows: [
      row('MLP GAN', groups.mlp, 0, '1 epoch'),
      row('MLP GAN', groups.mlp, equalTimeEpoch - 1, `${equalTimeEpoch} epochs (≈ DCGAN's time)`),
      row('MLP GAN', groups.mlp, mlpLast - 1, `${mlpLast} epochs`),
      row('DCGAN', groups.dcgan, groups.dcgan[0]!.epochs.length - 1, `${dcganEpochs.toFixed(2)} epoch${dcganEpochs === 1 ? '' : 's'}`),
    ],
    mlp: { firstFd: stat(groups.mlp, 0, 'fd'), equalTimeFd: stat(groups.mlp, equalTimeEpoch - 1, 'fd'), lastFd: stat(groups.mlp, mlpLast - 1, 'fd'),
      lastRecall: stat(groups.mlp, mlpLast - 1, 'recall'), lastPrecision: stat(groups.mlp, mlpLast - 1, 'precision') },
    dcgan: { fd: stat(groups.dcgan, groups.dcgan[0]!.epochs.length - 1, 'fd'), recall: stat(groups.dcgan, groups.dcgan[0]!.epochs.length - 1, 'recall'),
      precision: stat(groups.dcgan, groups.dcgan[0]!.epochs.length - 1, 'precision'),
      params: groups.dcgan[0]!.params, secondsPerEpoch: meanSd(groups.dcgan.map((r) => r.epochs.reduce((a, e) => a + e.seconds, 0) / ((r.epochs.length * r.stepsPerEpoch * r.batchSize) / 60000))) },
    mlpParams: groups.mlp[0]!.params,
    /** Milliseconds per generated image (batches of 1 000, one core), mean over runs. */
    mlpSamplingMs: meanSd(groups.mlp.map((r) => r.samplingMs)).mean,
    dcganSamplingMs: meanSd(groups.dcgan.map((r) => r.samplingMs)).mean,
    mlpSecondsPerEpoch: meanSd(groups.mlp.map((r) => r.epochs.reduce((a, e) => a + e.seconds, 0) / r.epochs.length)),
  };
}
