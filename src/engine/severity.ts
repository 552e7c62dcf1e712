/**
 * Which problems fail a command. Every message is reported; these decide the exit code and
 * whether a build counts as good (its HTML replaces the last good one) or failed.
 */
import type { VFile } from 'vfile';

/**
 * Rules that are reported but do not fail the command: the problem was repaired
 * (corrupt-result), or the results are fresh and only stored under the previous key
 * scheme (old-key-scheme: `report --migrate-keys` re-keys them; at a cell, `report` says
 * why a previous-scheme result is not adopted and runs the cell again), or a measured
 * pattern names nothing stored (measured-unmatched: only `--verify` reads it, and a pattern
 * naming nothing excuses nothing), or a stale cell was left out on request (not-run: `report
 * --only`; the partial page goes beside the last good one, not over it).
 */
export const WARNING_RULES = new Set(['corrupt-result', 'old-key-scheme', 'measured-unmatched', 'not-run']);
/**
 * At reduced profiles (quick, …) the science is not expected to hold: claims and inline
 * values are evaluated and reported, but only the full profile's must be true.
 */
export const REDUCED_PROFILE_WARNINGS = new Set(['claim-false', 'claim-error', 'inline-error']);

/** True when a message with `ruleId` fails a command at `profile`. */
export function isFatalRule(ruleId: string | undefined, profile: string): boolean {
  const rule = ruleId ?? '';
  return !(WARNING_RULES.has(rule) || (profile !== 'full' && REDUCED_PROFILE_WARNINGS.has(rule)));
}

/** Sets `fatal` on every message of `file`; returns true when none is fatal. */
export function markSeverity(file: VFile, profile: string): boolean {
  for (const message of file.messages) message.fatal = isFatalRule(message.ruleId, profile);
  return !file.messages.some((message) => message.fatal);
}
