/** A test document: front matter (seed 3, and `verify: measured:` with `patterns` when any), then `lines`. */
export function docWithMeasured(patterns: string[], lines: string[]): string {
  return ['---', 'seed: 3', ...(patterns.length > 0 ? ['verify:', '  measured:', ...patterns.map((p) => `    - '${p}'`)] : []), '---', '', ...lines].join('\n');
}
