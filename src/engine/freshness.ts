/**
 * Why a stored result is stale: compares the fingerprint stored with the newest result of a
 * cell against the fingerprint of its key today, and names what changed — the code, an
 * option, an imported file, a dependency's result, a package version, the profile or seed.
 */
import type { KeyFingerprint } from './types.ts';

export function explainStale(stored: KeyFingerprint | undefined, current: KeyFingerprint | undefined): string[] {
  if (!stored || !current) return [];
  const reasons: string[] = [];
  if (stored.engine !== current.engine) reasons.push(`the key scheme changed (${stored.engine ?? 'literate-report-engine/1'} → ${current.engine ?? 'literate-report-engine/1'})`);
  if (stored.code !== current.code) reasons.push('its code changed');
  if (stored.options !== current.options) reasons.push(`its options changed ("${stored.options}" → "${current.options}")`);
  const changedFiles = diffKeys(stored.inputs, current.inputs);
  for (const file of changedFiles.changed) reasons.push(`${file} changed`);
  for (const file of changedFiles.added) reasons.push(`it now imports ${file}`);
  for (const file of changedFiles.removed) reasons.push(`it no longer imports ${file}`);
  const deps = diffKeys(stored.deps, current.deps);
  for (const id of deps.changed) reasons.push(`the result of cell "${id}" it imports changed`);
  for (const id of deps.added) reasons.push(`it now imports cell "${id}"`);
  for (const id of deps.removed) reasons.push(`it no longer imports cell "${id}"`);
  const packages = diffKeys(stored.packages, current.packages);
  for (const name of packages.changed) reasons.push(`${name} ${stored.packages[name]} → ${current.packages[name]}`);
  for (const name of packages.added) reasons.push(`it now imports ${name}`);
  for (const name of packages.removed) reasons.push(`it no longer imports ${name}`);
  if (stored.profile !== current.profile) reasons.push(`profile ${stored.profile} → ${current.profile}`);
  if (stored.seed !== current.seed) reasons.push(`seed ${stored.seed} → ${current.seed}`);
  return reasons;
}

function diffKeys(before: Record<string, string>, after: Record<string, string>): { changed: string[]; added: string[]; removed: string[] } {
  const changed: string[] = [];
  const added: string[] = [];
  const removed: string[] = [];
  for (const [name, value] of Object.entries(after)) {
    if (!(name in before)) added.push(name);
    else if (before[name] !== value) changed.push(name);
  }
  for (const name of Object.keys(before)) if (!(name in after)) removed.push(name);
  return { changed, added, removed };
}
