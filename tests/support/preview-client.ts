/**
 * Test doubles of a browser for the preview: a server-sent events reader and raw HTTP
 * requests (written byte for byte on a socket, so no client library normalises the path).
 */
import { request } from 'node:http';
import { connect } from 'node:net';
import { applyPageEvent, type PageEvent } from '../../src/engine/page-patch.ts';

export interface SseEvent {
  event: string;
  data: any;
}

export interface EventReader {
  /** Every event received so far, in order. */
  events: SseEvent[];
  /**
   * The first event after the ones already taken that matches; waits up to `timeoutMs`.
   * Events before it are taken too.
   */
  next(match: (event: SseEvent) => boolean, timeoutMs?: number): Promise<SseEvent>;
  /** Forgets the events taken so far (a long run must not keep them all). */
  forget(): void;
  close(): void;
}

/** Parses a text/event-stream: frames separated by a blank line, `event:` and `data:` lines, `:` comments. */
export function parseSse(buffer: string): { events: SseEvent[]; rest: string } {
  const events: SseEvent[] = [];
  const frames = buffer.split('\n\n');
  const rest = frames.pop()!;
  for (const frame of frames) {
    let event = 'message';
    const data: string[] = [];
    for (const line of frame.split('\n')) {
      if (line.startsWith(':') || line === '') continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    if (data.length > 0) events.push({ event, data: JSON.parse(data.join('\n')) });
  }
  return { events, rest };
}

/** Opens `/__preview/events` of the preview at `baseUrl` (a page at `since`, when given). */
export function openEvents(baseUrl: string, since?: number): Promise<EventReader> {
  return new Promise((resolvePromise, reject) => {
    const events: SseEvent[] = [];
    let page: { version: number; body: string } | undefined;
    let taken = 0;
    const waiters = new Set<() => void>();
    const req = request(new URL(`__preview/events${since === undefined ? '' : `?v=${since}`}`, baseUrl), (res) => {
      if (res.statusCode !== 200 || !String(res.headers['content-type']).startsWith('text/event-stream')) {
        reject(new Error(`events: HTTP ${res.statusCode} ${res.headers['content-type']}`));
        return;
      }
      res.setEncoding('utf8');
      let chunks: string[] = [];
      res.on('data', (chunk: string) => {
        // Parsed only when a frame ended in this chunk: a page of megabytes comes in many
        // chunks, and parsing the whole buffer at each one would be quadratic.
        const ended = chunk.includes('\n\n') || (chunk.startsWith('\n') && chunks.at(-1)?.endsWith('\n') === true);
        chunks.push(chunk);
        if (!ended) return;
        const parsed = parseSse(chunks.join(''));
        chunks = [parsed.rest];
        if (parsed.events.length === 0) return;
        // A page sent as an edit of the one before gets its whole body back, as the page's script makes it.
        for (const event of parsed.events) {
          if (event.event !== 'page') continue;
          const body = applyPageEvent(event.data as PageEvent, page);
          if (body === undefined) continue;
          event.data.body = body;
          page = { version: event.data.version as number, body };
        }
        events.push(...parsed.events);
        for (const wake of [...waiters]) wake();
      });
      res.on('error', () => {});
      resolvePromise({
        events,
        next(match, timeoutMs = 20_000) {
          return new Promise((done, fail) => {
            const look = (): boolean => {
              for (let i = taken; i < events.length; i++) {
                if (match(events[i]!)) {
                  taken = i + 1;
                  done(events[i]!);
                  return true;
                }
              }
              return false;
            };
            if (look()) return;
            const timer = setTimeout(() => {
              waiters.delete(wake);
              fail(new Error(`no matching event within ${timeoutMs} ms; got ${events.slice(taken).map((e) => e.event).join(', ') || 'nothing'}`));
            }, timeoutMs);
            const wake = (): void => {
              if (look()) {
                clearTimeout(timer);
                waiters.delete(wake);
              }
            };
            waiters.add(wake);
          });
        },
        forget() {
          events.splice(0, taken);
          taken = 0;
        },
        close() {
          req.destroy();
        },
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** A request written as raw bytes: `<method> <target> HTTP/1.1` with the given headers; the status and body. */
export function rawRequest(
  port: number,
  target: string,
  options: { method?: string; host?: string; headers?: Record<string, string>; address?: string } = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolvePromise, reject) => {
    const socket = connect(port, options.address ?? '127.0.0.1');
    let response = '';
    socket.setEncoding('utf8');
    socket.on('connect', () => {
      const headers = { Host: options.host ?? `127.0.0.1:${port}`, Connection: 'close', ...options.headers };
      socket.write(`${options.method ?? 'GET'} ${target} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`);
    });
    socket.on('data', (chunk: string) => (response += chunk));
    socket.on('end', () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(response)?.[1] ?? 0);
      resolvePromise({ status, body: response.slice(response.indexOf('\r\n\r\n') + 4) });
    });
    socket.on('error', reject);
  });
}
