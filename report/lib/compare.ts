/**
 * The report's one comparison of every model family on the shared protocol: rows built from
 * the stored runs of sections 4.1–4.4 (nothing trains here).
 */
import { meanSd, type MemorisationMetrics, type SampleMetrics } from '../../src/ml/metrics/protocol.ts';
import type { FlowRun } from './flow-runs.ts';
import type { GanRun } from './gan-runs.ts';
import type { AutoencoderRun, VaeRun } from './vae-runs.ts';

type Stat = { mean: number; sd: number; n: number };

/** The shape of cell `ebm-protocol`'s export (section 4.1's RBM and DBM on the protocol). */
export interface EbmEntry {
  label: string;
  runs: Array<{ metrics: SampleMetrics; memorisation: MemorisationMetrics }>;
  params: number;
  trainMinutes: number;
  samplingMsPerImage: number;
  nats?: { mean: number; sd: number; what: string };
  samples: Float32Array;
}

export interface ModelRow {
  name: string;
  section: string;
  /** What training optimises. */
  objective: string;
  /** Log-likelihood or bound on the binarised test set (nats per image), when the model has one. */
  nats?: string;
  fd: Stat;
  precision: Stat;
  recall: Stat;
  digits: Stat;
  /** Parameters of the network that produces samples. */
  params: number;
  trainMinutes: Stat;
  samplingMs?: number;
  /** How one sample is made. */
  sampling: string;
  /** 12 samples [12, 784] for the side-by-side figure. */
  samples: Float32Array;
}

const fromMetrics = (metrics: readonly Pick<SampleMetrics, 'fd' | 'precision' | 'recall' | 'digitsCovered'>[]) => ({
  fd: meanSd(metrics.map((m) => m.fd)),
  precision: meanSd(metrics.map((m) => m.precision)),
  recall: meanSd(metrics.map((m) => m.recall)),
  digits: meanSd(metrics.map((m) => m.digitsCovered)),
});
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const first = (samples: Float32Array, count = 12) => samples.slice(0, count * 784);

export function ebmRow(entry: EbmEntry, name: string, objective: string): ModelRow {
  return {
    name,
    section: '4.1',
    objective,
    nats: entry.nats ? `AIS ${entry.nats.mean.toFixed(1)}` : undefined,
    ...fromMetrics(entry.runs.map((r) => r.metrics)),
    params: entry.params,
    trainMinutes: { mean: entry.trainMinutes, sd: 0, n: 1 },
    samplingMs: entry.samplingMsPerImage,
    sampling: entry.label,
    samples: first(entry.samples),
  };
}

export function ganRow(runs: readonly GanRun[], name: string, section = '4.2'): ModelRow {
  return {
    name,
    section,
    objective: 'adversarial game (non-saturating)',
    ...fromMetrics(runs.map((r) => r.epochs[r.epochs.length - 1]!.eval)),
    params: runs[0]!.params.generator,
    trainMinutes: meanSd(runs.map((r) => r.epochs.reduce((s, e) => s + e.seconds, 0) / 60)),
    samplingMs: median(runs.map((r) => r.samplingMs)),
    sampling: 'one generator pass',
    samples: first(runs[0]!.samples),
  };
}

export function vaeRow(runs: readonly VaeRun[], name: string): ModelRow {
  const elbo = meanSd(runs.map((r) => r.binarised.elbo));
  const iwae = runs.find((r) => r.iwae !== undefined)?.iwae;
  return {
    name,
    section: '4.3',
    objective: 'ELBO',
    nats: `ELBO ${elbo.mean.toFixed(1)}${iwae ? `, IWAE ${iwae.bound.toFixed(1)}` : ''}`,
    ...fromMetrics(runs.map((r) => r.protocol)),
    params: runs[0]!.params.decoder,
    trainMinutes: meanSd(runs.map((r) => r.trainingSeconds / 60)),
    samplingMs: median(runs.map((r) => r.samplingMs)),
    sampling: 'one decoder pass (means)',
    samples: first(runs[0]!.samples),
  };
}

export function autoencoderRow(runs: readonly AutoencoderRun[], name: string): ModelRow {
  return {
    name,
    section: '4.3',
    objective: 'reconstruction (MSE)',
    ...fromMetrics(runs.map((r) => r.fitted)),
    params: runs[0]!.params,
    trainMinutes: meanSd(runs.map((r) => r.trainingSeconds / 60)),
    sampling: 'decoder on a Gaussian fitted to the codes',
    // samples: 16 decoded N(0, I) codes, then 16 decoded fitted-Gaussian codes.
    samples: runs[0]!.samples.slice(16 * 784, 28 * 784),
  };
}

export function flowRow(runs: readonly FlowRun[], name: string): ModelRow {
  return {
    name,
    section: '4.4',
    objective: 'flow-matching regression',
    ...fromMetrics(runs.map((r) => r.final)),
    params: runs[0]!.params,
    trainMinutes: meanSd(runs.map((r) => r.epochs.reduce((s, e) => s + e.seconds, 0) / 60)),
    samplingMs: median(runs.map((r) => r.samplingMs)),
    sampling: `ODE, Heun, ${runs[0]!.nfe} network evaluations`,
    samples: first(runs[0]!.samples),
  };
}

/** Table rows for `table()`: mean ± sd where there are several runs. */
export function comparisonTable(rows: readonly ModelRow[], real: Pick<SampleMetrics, 'fd' | 'precision' | 'recall' | 'digitsCovered'>) {
  const pm = (s: Stat, digits: number) => (s.n > 1 ? `${s.mean.toFixed(digits)} ± ${s.sd.toFixed(digits)}` : s.mean.toFixed(digits));
  return [
    ...rows.map((r) => ({
      model: r.name,
      section: r.section,
      'trained on': r.objective,
      'log-likelihood (nats)': r.nats ?? '—',
      FD: pm(r.fd, 1),
      precision: pm(r.precision, 2),
      recall: pm(r.recall, 2),
      digits: pm(r.digits, 0),
      'parameters (sampler)': r.params.toLocaleString('en'),
      'training minutes': pm(r.trainMinutes, 1),
      'ms per image': r.samplingMs === undefined ? '—' : r.samplingMs < 1 ? r.samplingMs.toFixed(2) : r.samplingMs.toFixed(1),
      runs: r.fd.n,
    })),
    {
      model: 'real test images',
      section: '4.2',
      'trained on': '—',
      'log-likelihood (nats)': '—',
      FD: real.fd.toFixed(1),
      precision: real.precision.toFixed(2),
      recall: real.recall.toFixed(2),
      digits: String(real.digitsCovered),
      'parameters (sampler)': '—',
      'training minutes': '—',
      'ms per image': '—',
      runs: 1,
    },
  ];
}
