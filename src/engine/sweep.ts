/**
 * Clean-up at start: what builds that were killed (SIGKILL, power loss) left behind. Every
 * temporary name the engine makes carries the pid of its process; a file or folder of a
 * pid that no longer runs on this host is removed:
 *
 *   <store>/<entry>.<pid>.<random>.tmp     an atomic write cut short
 *   <tmpdir>/report-<pid>-<cell>-XXXXXX/  a child's job folder
 *   <bundle dir>/<doc>.<cell>.<key16>.<pid>.mjs, <file>.<pid>.<random>.tmp   bundles
 */
import { join } from 'node:path';
import type { Effects } from './effects.ts';

const PATTERNS: { where: 'store' | 'tmp' | 'bundles'; name: RegExp }[] = [
  { where: 'store', name: /\.(\d{1,9})\.[0-9a-f]{8}\.tmp$/ },
  { where: 'tmp', name: /^report-(\d{1,9})-/ },
  { where: 'bundles', name: /\.[0-9a-f]{16}\.(\d{1,9})\.mjs(?:\.tmp)?$/ },
  { where: 'bundles', name: /\.(\d{1,9})\.[0-9a-f]{8}\.tmp$/ },
];

/** Removes what dead processes left in these folders; returns the removed paths. */
export async function sweepStale(effects: Effects, folders: { store: string; bundles?: string }): Promise<string[]> {
  const removed: string[] = [];
  const dirs = { store: folders.store, tmp: effects.tmpdir, bundles: folders.bundles };
  for (const [where, dir] of Object.entries(dirs) as ['store' | 'tmp' | 'bundles', string | undefined][]) {
    if (dir === undefined) continue;
    for (const name of await effects.readdir(dir)) {
      for (const pattern of PATTERNS) {
        if (pattern.where !== where) continue;
        const match = pattern.name.exec(name);
        if (match === null) continue;
        const pid = Number(match[1]);
        if (pid === effects.pid || effects.processAlive(pid)) break;
        await effects.rm(join(dir, name));
        removed.push(join(dir, name));
        break;
      }
    }
  }
  return removed;
}
