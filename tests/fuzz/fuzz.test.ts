/**
 * The fuzzer in `npm test`: 2 000 mutated documents from a fixed seed (`npm run fuzz` runs
 * 100 000 from a fresh one). Each must parse, graph and weave without an uncaught exception,
 * within 5 s of CPU, with every message at a line and column.
 */
import { expect, it } from 'vitest';
import { VFile } from 'vfile';
import { fuzz, tryDocument, unpositionedMessage } from './fuzz.ts';

it('2 000 mutated documents: no crash, no hang, every message positioned', { timeout: 600_000 }, async () => {
  const failures = await fuzz({ count: 2000, seed: 20261128, maxFailures: 5 });
  expect(failures.map((f) => `#${f.index}: ${f.reason.split('\n')[0]}`)).toEqual([]);
});

it('the checks can fail: a crash, and a message without a place, are caught', async () => {
  expect(await tryDocument('---\ntitle: [x\n---\n')).toBeUndefined();
  const file = new VFile({ path: 'x.md', value: '' });
  file.message('placed', { place: { line: 1, column: 1 }, ruleId: 'test', source: 'report' });
  expect(unpositionedMessage(file)).toBeUndefined();
  file.message('no place', { ruleId: 'test', source: 'report' });
  expect(unpositionedMessage(file)).toMatch(/no place/);
  const hostile = { toString: (): string => { throw new Error('boom'); } } as unknown as string;
  expect(await tryDocument(hostile)).toMatch(/^uncaught Error: boom/);
});
