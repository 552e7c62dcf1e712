/**
 * HTML → PDF with playwright-core and a headless Chromium.
 *
 * The browser is, in order: a path given by flag, $REPORT_BROWSER (or $CHROME_PATH), an
 * installed Chrome/Chromium on PATH, then the Chromium bundled by @sparticuz/chromium
 * (unpacked to /tmp on first use, ~1.5 s).
 */
import { constants } from 'node:fs';
import { access, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ReportError } from './errors.ts';

export type BrowserSource = 'flag' | 'env' | 'system' | 'sparticuz';

export interface FoundBrowser {
  path: string;
  source: BrowserSource;
}

const SYSTEM_NAMES = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];

/** Flags for a system Chromium running headless on a server or in CI. */
const SYSTEM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

async function maybeSystemBrowser(env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const dirs = [...new Set([...(env.PATH ?? '').split(path.delimiter).filter(Boolean), '/usr/bin'])];
  for (const name of SYSTEM_NAMES) {
    for (const dir of dirs) {
      const candidate = path.join(dir, name);
      if (await isExecutable(candidate)) return candidate;
    }
  }
  return undefined;
}

/** Finds a Chromium to print with; throws a ReportError when none can be found. */
export async function findBrowser(options: { flag?: string; env?: NodeJS.ProcessEnv }): Promise<FoundBrowser> {
  const env = options.env ?? process.env;
  if (options.flag !== undefined) {
    if (await isExecutable(options.flag)) return { path: options.flag, source: 'flag' };
    throw new ReportError(`--browser ${options.flag}: not an executable file; give the path of a Chrome or Chromium binary`);
  }
  for (const name of ['REPORT_BROWSER', 'CHROME_PATH'] as const) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    if (await isExecutable(value)) return { path: value, source: 'env' };
    throw new ReportError(`$${name}=${value}: not an executable file; unset it or point it at a Chrome or Chromium binary`);
  }
  const system = await maybeSystemBrowser(env);
  if (system !== undefined) return { path: system, source: 'system' };
  try {
    const chromium = (await import('@sparticuz/chromium')).default;
    return { path: await chromium.executablePath(), source: 'sparticuz' };
  } catch (error) {
    throw new ReportError(
      `no browser to print the PDF with: none given (--browser, $REPORT_BROWSER), none installed ` +
        `(${SYSTEM_NAMES.join(', ')}), and @sparticuz/chromium failed: ${(error as Error).message}`,
    );
  }
}

/** @sparticuz/chromium unpacks its binary to `<tmpdir>/chromium`; it needs its own flags. */
function isSparticuzPath(file: string): boolean {
  return path.resolve(file) === path.join(tmpdir(), 'chromium');
}

export async function launchArgs(found: FoundBrowser): Promise<string[]> {
  if (found.source !== 'sparticuz') return SYSTEM_ARGS;
  const chromium = (await import('@sparticuz/chromium')).default;
  return chromium.args;
}

/**
 * Prints `htmlPath` to `pdfPath` (A4, backgrounds, margins from the print stylesheet)
 * once the page and its fonts (KaTeX's) have loaded. Writes a temporary file, then renames.
 */
export async function printPdf(
  htmlPath: string,
  pdfPath: string,
  options: { browserPath?: string; env?: NodeJS.ProcessEnv },
): Promise<{ ms: number; browser: string }> {
  const started = performance.now();
  const found: FoundBrowser =
    options.browserPath !== undefined
      ? { path: options.browserPath, source: isSparticuzPath(options.browserPath) ? 'sparticuz' : 'flag' }
      : await findBrowser({ env: options.env ?? process.env });
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: found.path, args: await launchArgs(found) });
  const temporary = path.join(path.dirname(pdfPath), `.${path.basename(pdfPath)}.${process.pid}.tmp`);
  try {
    const page = await browser.newPage();
    await page.goto(pathToFileURL(path.resolve(htmlPath)).href, { waitUntil: 'load' });
    // `load` does not wait for web fonts used only by later layout: wait for KaTeX's.
    await page.evaluate('document.fonts.ready.then(() => document.fonts.size)');
    await page.emulateMedia({ media: 'print' });
    await page.pdf({ path: temporary, format: 'A4', printBackground: true, preferCSSPageSize: true });
    await rename(temporary, pdfPath);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  } finally {
    await browser.close();
  }
  return { ms: Math.round(performance.now() - started), browser: `${found.source}: ${found.path}` };
}
