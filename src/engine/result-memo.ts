/**
 * The preview's memo of stored results, so that a save does not read, hash and decode the
 * store again (on the report: 73 MB, a third of a second per save). Only the long-lived
 * preview process keeps one (`LoadOptions.resultMemo`); `check` and `report` read and
 * verify every payload as before.
 *
 * An entry is kept by cell id and key together with the exact text of the entry's metadata
 * (`<id>.<key16>.json`), which holds the payload's byte length and sha256 and the time the
 * result was made: the store reads that small file on every lookup, and only when it is the
 * very text the payload was verified and decoded under is the payload not read again. An
 * entry written since (a cell that ran in this preview or in another command, a result
 * migrated or restored) has other metadata, so it is read, verified and decoded afresh.
 *
 * Each lookup gets its own copy of the exports (decoded lazily from the verified payload:
 * serialize.ts `decodeLazily`), so an inline expression that changes a value it reads
 * (`xs.reverse()`) cannot change what the next rebuild sees; the outputs (figures, tables,
 * text) are shared and frozen: the engine only reads them. The memo keeps the entries the
 * document uses now (`retain`), so it does not grow over many edits.
 */
import { decodeLazily } from './serialize.ts';
import type { Output } from './types.ts';

interface Entry {
  metadata: string;
  checksum: string;
  outputs: Output[];
  exports: () => Record<string, unknown>;
}

export class ResultMemo {
  private readonly entries = new Map<string, Entry>();

  /** The entry of `id` under `key` when its metadata is still `metadata`: a fresh copy of its exports, its outputs, its checksum. */
  get(id: string, key: string, metadata: string): { exports: Record<string, unknown>; outputs: Output[]; checksum: string } | undefined {
    const entry = this.entries.get(name(id, key));
    if (entry === undefined || entry.metadata !== metadata) return undefined;
    return { exports: entry.exports(), outputs: entry.outputs, checksum: entry.checksum };
  }

  /** Remembers a payload the store has just verified against `metadata` and decoded (`outputs`). */
  set(id: string, key: string, metadata: string, payload: Uint8Array, checksum: string, outputs: Output[]): void {
    const fresh = decodeLazily(payload);
    this.entries.set(name(id, key), {
      metadata,
      checksum,
      outputs: deepFreeze(outputs),
      exports: () => (fresh() as { exports: Record<string, unknown> }).exports,
    });
  }

  /** Forgets the entry of `id` under `key` (the store is writing it). */
  forget(id: string, key: string): void {
    this.entries.delete(name(id, key));
  }

  /** Keeps only the entries of these cells and keys (the document's now). */
  retain(keys: Iterable<readonly [id: string, key: string]>): void {
    const keep = new Set<string>();
    for (const [id, key] of keys) keep.add(name(id, key));
    for (const entry of [...this.entries.keys()]) if (!keep.has(entry)) this.entries.delete(entry);
  }

  get size(): number {
    return this.entries.size;
  }
}

function name(id: string, key: string): string {
  return `${id}\0${key}`;
}

/** Freezes plain objects and arrays all the way down (typed arrays cannot be frozen; nothing writes them). */
function deepFreeze<T>(value: T): T {
  if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value) || Object.isFrozen(value)) return value;
  for (const part of Object.values(value)) deepFreeze(part);
  return Object.freeze(value);
}
