/**
 * The TypeScript compiler, loaded on first use. Loading it costs about half a second, so
 * the commands only pay for it when they really type-check (a cache miss) or explain a
 * failed inline expression; parsing cells uses esbuild instead.
 */
import { createRequire } from 'node:module';
import type ts from 'typescript';

const require = createRequire(import.meta.url);
let loaded: typeof ts | undefined;

export function typescript(): typeof ts {
  return (loaded ??= require('typescript') as typeof ts);
}

/** The installed compiler's version, without loading the compiler. */
export function typescriptVersion(): string {
  return (require('typescript/package.json') as { version: string }).version;
}
