/**
 * Resumable cells: `checkpoint(state)` / `resume<T>()` from 'report:runtime', with real
 * child processes on a tiny cell that kills itself (SIGKILL) half-way through its first run.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { build } from '../../src/engine/build.ts';
import { checkpointPath, fileSnapshots } from '../../src/engine/checkpoint.ts';
import { childProcessExecutor } from '../../src/engine/child-launcher.ts';
import { nodeEffects } from '../../src/engine/effects.ts';
import { ResultStore } from '../../src/engine/store.ts';
import { verify } from '../../src/engine/verify.ts';

const silent = { write: () => {}, isTTY: false };
let dir: string;

/**
 * Six steps that accumulate into a Float64Array and a float32 "weight", checkpointing after
 * each; on its first run (no marker file yet) the cell kills its own process after step 3.
 */
const CELL = (marker: string) => `\`\`\`ts run id=train
import { existsSync, writeFileSync } from 'node:fs';
import { checkpoint, resume } from 'report:runtime';
interface State { step: number; acc: Float64Array; w: Float32Array; seen: string[] }
const resumed = resume<State>();
export const resumedFrom: number = resumed?.step ?? 0;
const state: State = resumed ?? { step: 0, acc: new Float64Array(3), w: new Float32Array([0.1]), seen: [] };
for (let i = state.step; i < 6; i++) {
  state.acc[i % 3]! += Math.sqrt(i + 0.1) / 7;
  state.w[0] = Math.fround(state.w[0]! * 1.0001 + 1e-7 * i);
  state.seen.push(\`step \${i}\`);
  state.step = i + 1;
  checkpoint(state);
  if (i === 2 && ${JSON.stringify(marker)} !== '' && !existsSync(${JSON.stringify(marker)})) {
    writeFileSync(${JSON.stringify(marker)}, 'killed once');
    process.kill(process.pid, 'SIGKILL');
  }
}
export const acc = state.acc;
export const w = state.w;
export const seen = state.seen;
\`\`\`
`;

async function runBuild(doc: string) {
  return build(
    { docPath: doc, projectRoot: dir, executor: childProcessExecutor({}), outDir: path.join(dir, 'build'), pdf: false, jobs: 1 },
    nodeEffects({ stdout: silent }),
  );
}

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'report-ckpt-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('checkpoint and resume', () => {
  it('a cell killed half-way resumes from its snapshot and ends bit-identical to an uninterrupted run; the snapshot is then deleted', { timeout: 180_000 }, async () => {
    // Uninterrupted: the marker is '' so the cell never kills itself.
    await writeFile(path.join(dir, 'straight.md'), CELL(''));
    const straight = await runBuild(path.join(dir, 'straight.md'));
    expect(straight.ran).toEqual(['train']);

    const doc = path.join(dir, 'doc.md');
    await writeFile(doc, CELL(path.join(dir, 'killed.marker')));
    const killed = await runBuild(doc);
    expect(killed.failed).toEqual(['train']);
    expect(killed.file.messages.map((m) => m.reason).join('\n')).toMatch(/killed by SIGKILL/);
    const snapshots = await readdir(path.join(dir, 'node_modules', '.cache', 'report', 'checkpoints'));
    expect(snapshots).toHaveLength(1);
    // Only the uninterrupted document's result is stored.
    expect((await readdir(path.join(dir, 'results'))).filter((n) => n.startsWith('train.') && n.endsWith('.json'))).toHaveLength(1);

    const resumed = await runBuild(doc);
    expect(resumed.ran).toEqual(['train']);
    const store = new ResultStore(path.join(dir, 'results'), nodeEffects({ stdout: silent }));
    const entries = (await readdir(path.join(dir, 'results'))).filter((n) => n.startsWith('train.') && n.endsWith('.json'));
    const results = await Promise.all(
      entries.map(async (name) => {
        const { key } = JSON.parse(await readFile(path.join(dir, 'results', name), 'utf8')) as { key: string };
        const found = await store.get('train', key);
        expect(found.problem, found.detail).toBeUndefined();
        return found.result!;
      }),
    );
    // The two documents' cells differ only in the marker path: two entries, two keys.
    expect(results).toHaveLength(2);
    const byResumedFrom = new Map(results.map((r) => [r.exports.resumedFrom as number, r]));
    const interrupted = byResumedFrom.get(3)!;
    const uninterrupted = byResumedFrom.get(0)!;
    expect(interrupted.exports.seen).toEqual(['step 0', 'step 1', 'step 2', 'step 3', 'step 4', 'step 5']);
    for (const name of ['acc', 'w'] as const) {
      const a = interrupted.exports[name] as Float64Array | Float32Array;
      const b = uninterrupted.exports[name] as Float64Array | Float32Array;
      expect(a.constructor).toBe(b.constructor);
      expect(Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))).toBe(true);
    }
    expect(await readdir(path.join(dir, 'node_modules', '.cache', 'report', 'checkpoints'))).toEqual([]);

    // --verify re-runs from scratch with a scratch snapshot: it neither resumes nor leaves one.
    const verified = await verify({ docPath: doc, projectRoot: dir, executor: childProcessExecutor({}), jobs: 1 }, nodeEffects({ stdout: silent }));
    expect(verified.verdicts).toMatchObject([{ id: 'train', status: 'differs' }]); // resumedFrom: 3 committed, 0 re-run
    expect(verified.verdicts[0]!.detail).toBe('resumedFrom: committed 3, re-run 0');
    expect(await readdir(path.join(dir, 'node_modules', '.cache', 'report', 'checkpoints'))).toEqual([]);
  });

  it('snapshot files keep typed arrays bit for bit, including NaN payloads and -0', () => {
    const file = path.join(os.tmpdir(), `report-snap-${process.pid}.bin`);
    try {
      const snapshots = fileSnapshots(file);
      expect(snapshots.load()).toBeUndefined();
      const bits = new Uint32Array([0x7fc00001, 0x80000000, 0x3f800000]);
      snapshots.save({ f: new Float32Array(bits.buffer), n: 3, nested: { b: new Uint8Array([1, 2]) } });
      const back = snapshots.load() as { f: Float32Array; n: number; nested: { b: Uint8Array } };
      expect(Array.from(new Uint32Array(back.f.buffer, back.f.byteOffset, 3))).toEqual(Array.from(bits));
      expect(back.n).toBe(3);
      expect(Array.from(back.nested.b)).toEqual([1, 2]);
      expect(existsSync(file)).toBe(true);
    } finally {
      void rm(file, { force: true });
    }
  });

  it('snapshots live outside the results store, per cell and key', () => {
    expect(checkpointPath('/p', 'train', 'abcdef0123456789ffff')).toBe('/p/node_modules/.cache/report/checkpoints/train.abcdef0123456789.bin');
  });
});
