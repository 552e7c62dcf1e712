/**
 * The preview's HTTP side: a fixed set of routes, server-sent events, and the guards that
 * keep a local preview local.
 *
 *   GET  /, /index.html, /<doc>.html   the current page (from memory, with the preview's script)
 *   GET  /__preview/client.js          the page's script (morphdom + preview-client.js, bundled once)
 *   GET  /__preview/events             server-sent events: `page` (new body) and `state` (cells, problems)
 *   GET  /__preview/figures/<sha256>.<png|svg>   a figure of the page, by the sha256 of its bytes
 *                                      (the page links its figures instead of inlining them)
 *   POST /__preview/stop/<cell id>     stops a running cell
 *   POST /__preview/run/<cell id>      runs a stopped cell again
 *
 * Nothing is read from disk per request: every answer is one of the strings above or a
 * figure held in memory, found by its content hash, so no request path can reach another
 * file (anything else is 404, whatever its dots or escapes).
 * Bound to 127.0.0.1 unless `--host` says otherwise; on the default host, a request whose
 * `Host` header names another machine is refused (DNS rebinding: a web page must not reach
 * the preview through a name it controls), and a POST from another origin is refused.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FIGURE_FILE, FIGURE_ROUTE } from './figure-links.ts';

export const DEFAULT_HOST = '127.0.0.1';

export interface PreviewHttpOptions {
  /** Interface to listen on; default 127.0.0.1. */
  host?: string;
  /** Port; 0 picks a free one. */
  port: number;
  /** The document's page names besides `/` and `/index.html`, e.g. `/report.html`. */
  pageNames: string[];
}

export interface PreviewRoutes {
  /** The current page, with the preview's script in it. */
  page(): string;
  /** The bundled client script. */
  clientScript(): Promise<string>;
  /** A figure of the page by its file name (`<sha256>.<png|svg>`), when the page links it. */
  figure(file: string): { data: Uint8Array; type: string } | undefined;
  /** A new event stream: send what it must know first (`since`: the page version the client shows). */
  onConnect(send: (event: string, data: unknown) => void, since: number | undefined): void;
  /** Stop button: true when the cell was running or queued. */
  stop(id: string): boolean;
  /** Run button: true when the cell was stopped. */
  run(id: string): boolean;
}

export interface PreviewHttp {
  url: string;
  host: string;
  port: number;
  /** Sends an event to every connected page. */
  /**
   * Sends an event to every page connected; resolves once each has been handed to the
   * operating system (a page of megabytes takes several turns of the event loop to flush).
   */
  broadcast(event: string, data: unknown): Promise<void>;
  /** Pages connected now. */
  clients(): number;
  close(): Promise<void>;
}

const LOOPBACK_NAMES = ['127.0.0.1', 'localhost', '[::1]'];
const CELL_ROUTE = /^\/__preview\/(stop|run)\/([a-z0-9-]+)$/;
/** A comment line every so often keeps proxies and idle timers from closing the stream. */
const HEARTBEAT_MS = 15_000;

/** One server-sent event: `event: <name>` and the JSON data on one `data:` line. */
export function sseFrame(event: string, data: unknown): string {
  // JSON.stringify escapes newlines inside strings, so the data is a single line.
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

export async function startPreviewHttp(options: PreviewHttpOptions, routes: PreviewRoutes): Promise<PreviewHttp> {
  const host = options.host ?? DEFAULT_HOST;
  const explicit = options.host !== undefined && options.host !== DEFAULT_HOST;
  const streams = new Set<ServerResponse>();
  const pages = new Set(['/', '/index.html', ...options.pageNames]);
  let port = options.port;

  /** Host names this server answers to (any, when it was told to listen on all interfaces). */
  const hostAllowed = (header: string | undefined): boolean => {
    if (explicit && (host === '0.0.0.0' || host === '::')) return true;
    if (header === undefined) return false;
    const names = [...LOOPBACK_NAMES, ...(explicit ? [host.includes(':') ? `[${host}]` : host] : [])];
    return names.some((name) => header === `${name}:${port}` || (port === 80 && header === name));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const target = req.url ?? '';
    if (!hostAllowed(req.headers.host)) {
      return text(res, 403, `the preview answers only requests addressed to ${host}:${port} or localhost:${port}; start it with --host to serve other names\n`);
    }
    if (!target.startsWith('/')) return text(res, 400, 'bad request target\n');
    const pathname = target.split('?', 1)[0]!;
    if (req.method === 'POST') {
      const origin = req.headers.origin;
      if (origin !== undefined && origin !== `http://${req.headers.host}`) return text(res, 403, 'cross-origin request refused\n');
      const match = CELL_ROUTE.exec(pathname);
      if (match === null) return text(res, 404, 'not found\n');
      const done = match[1] === 'stop' ? routes.stop(match[2]!) : routes.run(match[2]!);
      return text(res, done ? 200 : 409, done ? 'ok\n' : `cell "${match[2]}" is not ${match[1] === 'stop' ? 'running' : 'stopped'}\n`);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD, POST');
      return text(res, 405, 'method not allowed\n');
    }
    if (pages.has(pathname)) return send(res, 200, 'text/html; charset=utf-8', routes.page(), req.method === 'HEAD');
    if (pathname === '/__preview/client.js') {
      return send(res, 200, 'text/javascript; charset=utf-8', await routes.clientScript(), req.method === 'HEAD');
    }
    if (pathname === '/__preview/events') return openStream(req, res, target);
    if (pathname.startsWith(FIGURE_ROUTE)) {
      const file = pathname.slice(FIGURE_ROUTE.length);
      const figure = FIGURE_FILE.test(file) ? routes.figure(file) : undefined;
      if (figure === undefined) return text(res, 404, 'not found\n');
      return sendFigure(res, figure, req.method === 'HEAD');
    }
    return text(res, 404, 'not found\n');
  };

  const openStream = (req: IncomingMessage, res: ServerResponse, target: string): void => {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    res.write('retry: 1000\n\n');
    streams.add(res);
    const heartbeat = setInterval(() => res.write(': ping\n\n'), HEARTBEAT_MS);
    heartbeat.unref();
    const forget = (): void => {
      clearInterval(heartbeat);
      streams.delete(res);
    };
    req.on('close', forget);
    res.on('error', forget);
    const since = Number(new URLSearchParams(target.split('?')[1] ?? '').get('v'));
    routes.onConnect((event, data) => res.write(sseFrame(event, data)), Number.isFinite(since) && since > 0 ? since : undefined);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) text(res, 500, `preview error: ${(error as Error).message}\n`);
      else res.end();
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => {
      server.off('error', reject);
      resolvePromise();
    });
  });
  port = (server.address() as AddressInfo).port;
  const urlHost = host === '0.0.0.0' || host === '::' ? DEFAULT_HOST : host.includes(':') ? `[${host}]` : host;

  return {
    url: `http://${urlHost}:${port}/`,
    host,
    port,
    broadcast(event, data) {
      if (streams.size === 0) return Promise.resolve();
      const frame = sseFrame(event, data);
      // A stream that errors or closes mid-write calls back with the error: never rejects.
      return Promise.all([...streams].map((res) => new Promise<void>((flushed) => res.write(frame, () => flushed())))).then(() => undefined);
    },
    clients: () => streams.size,
    async close() {
      for (const res of streams) res.end();
      streams.clear();
      await new Promise<void>((resolvePromise) => {
        server.close(() => resolvePromise());
        server.closeAllConnections();
      });
    },
  };
}

function send(res: ServerResponse, status: number, type: string, body: string, head = false): void {
  res.writeHead(status, {
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(head ? undefined : body);
}

/**
 * A figure: its name is its content hash, so it is never stale and may be kept. An SVG may
 * hold script; opened on its own it must not run in the preview's origin (whose POSTs stop
 * cells): the policy forbids script and sandboxes it.
 */
function sendFigure(res: ServerResponse, figure: { data: Uint8Array; type: string }, head: boolean): void {
  res.writeHead(200, {
    'Content-Type': figure.type,
    'Content-Length': figure.data.byteLength,
    'Cache-Control': 'private, max-age=31536000, immutable',
    'X-Content-Type-Options': 'nosniff',
    'Content-Security-Policy': "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox",
  });
  res.end(head ? undefined : figure.data);
}

function text(res: ServerResponse, status: number, body: string): void {
  send(res, status, 'text/plain; charset=utf-8', body);
}
