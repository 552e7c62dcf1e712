/**
 * The store lock: one build at a time writes a results folder. Two builds started together
 * would otherwise interleave the `.bin` of one with the `.json` of the other (each write is
 * atomic, the pair is not). The lock is a file `<store>/.lock` created exclusively, holding
 * the holder's pid, host, document and start time. A second build waits for it and says
 * which build it waits for; a lock whose process is dead (killed, crashed) is taken over.
 */
import { join } from 'node:path';
import type { Effects } from './effects.ts';

export const LOCK_FILE = '.lock';

export interface LockHolder {
  pid: number;
  host: string;
  doc: string;
  since: string;
}

export interface LockOptions {
  /** The document taking the lock (shown to a build that waits). */
  doc: string;
  /** Called once when the lock is held by another live build, before waiting. */
  onWait?(holder: LockHolder, lockPath: string): void;
  /** Milliseconds between two tries; default 100. */
  pollMs?: number;
}

/** Takes the lock of the store folder `dir`; resolves to the function that releases it. */
export async function lockStore(dir: string, effects: Effects, options: LockOptions): Promise<() => Promise<void>> {
  const path = join(dir, LOCK_FILE);
  const mine: LockHolder = { pid: effects.pid, host: effects.host, doc: options.doc, since: new Date(effects.now()).toISOString() };
  const text = `${JSON.stringify(mine)}\n`;
  let told = false;
  for (;;) {
    if (await effects.createExclusive(path, text)) {
      let released = false;
      return async () => {
        if (released) return;
        released = true;
        // Only our own lock is removed (a holder never loses it to a waiter, see below).
        const current = await readLock(path, effects);
        if (current?.raw === text) await effects.rm(path);
      };
    }
    const holder = await readLock(path, effects);
    if (holder === undefined) continue; // released between our try and our read
    const dead = holder.value === undefined || (holder.value.host === effects.host && !effects.processAlive(holder.value.pid));
    if (dead) {
      // Taken over only if it is still the same dead lock (another waiter may have done it).
      const again = await readLock(path, effects);
      if (again?.raw === holder.raw) await effects.rm(path);
      continue;
    }
    if (!told && holder.value !== undefined) {
      told = true;
      options.onWait?.(holder.value, path);
    }
    await effects.sleep(options.pollMs ?? 100);
  }
}

async function readLock(path: string, effects: Effects): Promise<{ raw: string; value?: LockHolder } | undefined> {
  let raw: string;
  try {
    raw = new TextDecoder().decode(await effects.readFile(path));
  } catch {
    return undefined;
  }
  try {
    const value = JSON.parse(raw) as LockHolder;
    if (typeof value.pid === 'number' && typeof value.host === 'string') return { raw, value };
  } catch {
    // A lock file cut short by a crash while it was written: dead.
  }
  // An unreadable lock may be one being written this instant: dead only once it stays so.
  await effects.sleep(50);
  const again = await (async () => {
    try {
      return new TextDecoder().decode(await effects.readFile(path));
    } catch {
      return undefined;
    }
  })();
  if (again === undefined) return undefined;
  if (again !== raw) return readLock(path, effects);
  return { raw };
}
