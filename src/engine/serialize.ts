/**
 * Values ↔ bytes for cell exports and outputs.
 *
 * Format (little-endian):
 *
 *   bytes 0..3   magic "LRV1"
 *   bytes 4..7   u32 length H of the JSON header
 *   bytes 8..    the header, UTF-8 JSON, padded with spaces to a multiple of 8
 *   then         the binary section: every typed-array payload, each starting 8-byte aligned
 *
 * The header is the value as JSON, with tagged nodes (objects whose first key is `$`) for
 * what JSON cannot hold: `{"$":"num","v":"NaN"}`, `{"$":"undef"}`, `{"$":"bigint","v":"12"}`,
 * `{"$":"date","v":0}`, `{"$":"map","v":[[k,v]…]}`, `{"$":"set","v":[…]}`,
 * `{"$":"Float32Array","o":offset,"n":length}`, `{"$":"tensor",…}`, and `{"$":"obj","v":{…}}`
 * for a plain object that itself has a `$` key. Payloads are copied byte for byte, so NaN
 * payloads and −0 survive. The same value always gives the same bytes (git-friendly).
 *
 * Tensors are duck-typed (`shape`, `dtype`, `dataSync()`), so this module needs no
 * TensorFlow.js; they come back as a plain {@link StoredTensor}.
 */

/**
 * A tensor as stored: its data, shape and dtype. The ML side turns it back into a tensor
 * with `tf.tensor(t.data, t.shape, t.dtype)`. It is plain data, so re-exporting a
 * StoredTensor stores it again unchanged.
 */
export interface StoredTensor {
  shape: number[];
  dtype: string;
  data: TypedArray;
}

export type TypedArray =
  | Int8Array
  | Uint8Array
  | Uint8ClampedArray
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

type TypedArrayConstructor = {
  new (length: number): TypedArray;
  new (buffer: ArrayBuffer, byteOffset: number, length: number): TypedArray;
  readonly BYTES_PER_ELEMENT: number;
  readonly name: string;
};

const typedArrayKinds: Record<string, TypedArrayConstructor> = {
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
};

const MAGIC = [0x4c, 0x52, 0x56, 0x31]; // "LRV1"

/** Thrown when a value cannot be stored; `path` names the export, e.g. `model.layers[0]`. */
export class SerializeError extends Error {
  constructor(
    /** Where in the value, e.g. `model.layers[0]`; empty for the root. */
    readonly path: string,
    /** What is there, e.g. `a function`. */
    readonly what: string,
  ) {
    super(`export "${path || '(root)'}" is ${what}; export plain data`);
    this.name = 'SerializeError';
  }
}

/**
 * Encodes a cell's `{ exports, outputs, meta }`: like {@link encode}, but an error names
 * the export path without the `exports.` prefix (`export "model.layers[0]" is …`).
 */
export function encodeResult(value: { exports: Record<string, unknown>; outputs: unknown[]; meta?: Record<string, unknown> }): Uint8Array {
  try {
    return encode(value);
  } catch (error) {
    if (error instanceof SerializeError && error.path.startsWith('exports')) {
      throw new SerializeError(error.path.replace(/^exports\.?/, ''), error.what);
    }
    throw error;
  }
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Encodes a value (usually a cell's exports object) into bytes. */
export function encode(value: unknown): Uint8Array {
  const chunks: Uint8Array[] = [];
  let binaryLength = 0;
  const seen = new Set<object>();

  const addPayload = (bytes: Uint8Array): number => {
    const offset = align8(binaryLength);
    if (offset > binaryLength) chunks.push(new Uint8Array(offset - binaryLength));
    chunks.push(bytes);
    binaryLength = offset + bytes.byteLength;
    return offset;
  };

  const fail = (path: string, what: string): never => {
    throw new SerializeError(path, what);
  };

  const walk = (v: unknown, path: string): Json => {
    switch (typeof v) {
      case 'undefined':
        return { $: 'undef' };
      case 'boolean':
      case 'string':
        return v;
      case 'number':
        if (Number.isNaN(v)) return { $: 'num', v: 'NaN' };
        if (v === Infinity) return { $: 'num', v: 'Infinity' };
        if (v === -Infinity) return { $: 'num', v: '-Infinity' };
        if (Object.is(v, -0)) return { $: 'num', v: '-0' };
        return v;
      case 'bigint':
        return { $: 'bigint', v: v.toString() };
      case 'function':
        return fail(path, 'a function');
      case 'symbol':
        return fail(path, 'a symbol');
    }
    if (v === null) return null;
    const obj = v as object;
    if (seen.has(obj)) fail(path, 'a circular reference');
    seen.add(obj);
    try {
      return walkObject(obj, path);
    } finally {
      seen.delete(obj);
    }
  };

  const walkObject = (obj: object, path: string): Json => {
    if (ArrayBuffer.isView(obj) && !(obj instanceof DataView)) {
      // Subclasses (Node's Buffer is a Uint8Array) are stored as their base kind.
      const kind = Object.keys(typedArrayKinds).find((name) => obj instanceof typedArrayKinds[name]!);
      if (kind === undefined) fail(path, `an unsupported typed array (${obj.constructor.name})`);
      const ta = obj as TypedArray;
      const o = addPayload(new Uint8Array(ta.buffer, ta.byteOffset, ta.byteLength));
      return { $: kind!, o, n: ta.length };
    }
    if (obj instanceof ArrayBuffer) {
      return { $: 'ArrayBuffer', o: addPayload(new Uint8Array(obj)), n: obj.byteLength };
    }
    if (Array.isArray(obj)) {
      const out: Json[] = [];
      for (let i = 0; i < obj.length; i++) out.push(walk(obj[i], `${path}[${i}]`));
      return out;
    }
    if (obj instanceof Date) {
      const t = obj.getTime();
      return { $: 'date', v: Number.isNaN(t) ? 'NaN' : t };
    }
    if (obj instanceof Map) {
      const entries: Json[] = [];
      let i = 0;
      for (const [k, val] of obj) {
        const label = typeof k === 'string' || typeof k === 'number' ? JSON.stringify(k) : `#${i}`;
        entries.push([walk(k, `${path}<key ${i}>`), walk(val, `${path}.get(${label})`)]);
        i++;
      }
      return { $: 'map', v: entries };
    }
    if (obj instanceof Set) {
      const items: Json[] = [];
      let i = 0;
      for (const item of obj) items.push(walk(item, `${path}<item ${i++}>`));
      return { $: 'set', v: items };
    }
    if (isTensorLike(obj)) {
      let data: unknown;
      try {
        data = obj.dataSync();
      } catch (error) {
        fail(path, `a tensor whose data cannot be read (${(error as Error).message})`);
      }
      if (!ArrayBuffer.isView(data)) fail(path, 'a tensor whose dataSync() did not return a typed array');
      return { $: 'tensor', shape: obj.shape, dtype: obj.dtype, data: walkObject(data as object, `${path}.data`) };
    }
    const proto = Object.getPrototypeOf(obj) as object | null;
    if (proto !== Object.prototype && proto !== null) {
      const name = (proto.constructor as { name?: string } | undefined)?.name || 'an unknown class';
      fail(path, `an instance of ${name}`);
    }
    const out: { [key: string]: Json } = {};
    for (const key of Object.keys(obj)) {
      const child = walk((obj as Record<string, unknown>)[key], joinKey(path, key));
      defineKey(out, key, child);
    }
    return '$' in out ? { $: 'obj', v: out } : out;
  };

  const header = new TextEncoder().encode(JSON.stringify(walk(value, '')));
  const headerPadded = align8(header.byteLength);
  const start = 8 + headerPadded;
  const bytes = new Uint8Array(start + binaryLength);
  bytes.set(MAGIC, 0);
  new DataView(bytes.buffer).setUint32(4, header.byteLength, true);
  bytes.set(header, 8);
  bytes.fill(0x20, 8 + header.byteLength, start);
  let at = start;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return bytes;
}

/** Decodes bytes made by {@link encode}. Throws on malformed input. */
export function decode(bytes: Uint8Array): unknown {
  const { header, walk } = decoder(bytes, false);
  return walk(header);
}

/**
 * A decoder of bytes made by {@link encode} that gives the value afresh at each call, each
 * plain object's properties decoded only when first read (then they are ordinary data
 * properties: written, deleted, frozen as usual). The preview keeps one per stored result
 * (result-memo.ts): every rebuild gets its own copy of the exports, as from {@link decode},
 * but pays only for what its inline expressions read. Meant for bytes {@link decode} has
 * already accepted: malformed bytes throw when the part is read.
 */
export function decodeLazily(bytes: Uint8Array): () => unknown {
  const { header, walk } = decoder(bytes, true);
  return () => walk(header);
}

function decoder(bytes: Uint8Array, lazy: boolean): { header: Json; walk: (node: Json) => unknown } {
  if (bytes.byteLength < 8 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new Error('decode: not a stored value (bad magic)');
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint32(4, true);
  if (8 + headerLength > bytes.byteLength) throw new Error('decode: truncated header');
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength))) as Json;
  const binary = bytes.subarray(8 + align8(headerLength));

  const payload = (node: { [key: string]: Json }, elementSize: number): Uint8Array => {
    const o = node['o'];
    const n = node['n'];
    if (typeof o !== 'number' || typeof n !== 'number') throw new Error('decode: bad payload node');
    const end = o + n * elementSize;
    if (end > binary.byteLength) throw new Error('decode: payload out of range');
    return binary.subarray(o, end);
  };

  const walk = (node: Json): unknown => {
    if (node === null || typeof node !== 'object') return node;
    if (Array.isArray(node)) return node.map(walk);
    const tag = node['$'];
    if (typeof tag !== 'string') return decodeObj(node);
    const v = node['v'];
    switch (tag) {
      case 'undef':
        return undefined;
      case 'num':
        return v === '-0' ? -0 : Number(v);
      case 'bigint':
        return BigInt(v as string);
      case 'date':
        return new Date(v === 'NaN' ? NaN : (v as number));
      case 'map':
        return new Map((v as Json[][]).map(([k, val]) => [walk(k!), walk(val!)]));
      case 'set':
        return new Set((v as Json[]).map(walk));
      case 'obj':
        return decodeObj((v ?? {}) as { [key: string]: Json });
      case 'ArrayBuffer':
        return payload(node, 1).slice().buffer;
      case 'tensor':
        return { shape: node['shape'] as number[], dtype: node['dtype'] as string, data: walk(node['data']!) as TypedArray } satisfies StoredTensor;
    }
    const kind = typedArrayKinds[tag];
    if (kind === undefined) throw new Error(`decode: unknown tag "${tag}"`);
    const src = payload(node, kind.BYTES_PER_ELEMENT);
    const out = new kind(src.byteLength / kind.BYTES_PER_ELEMENT);
    new Uint8Array(out.buffer).set(src);
    return out;
  };

  const decodeObj = (obj: { [key: string]: Json }): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(obj)) {
      const node = obj[key]!;
      if (lazy && node !== null && typeof node === 'object') lazyKey(out, key, () => walk(node));
      else defineKey(out, key, walk(node));
    }
    return out;
  };

  return { header, walk };
}

/**
 * A property decoded when first read: the accessor replaces itself with a data property
 * holding the value (or the value written first). On an object frozen before that, the
 * accessor stays and gives the same value each time.
 */
function lazyKey(target: Record<string, unknown>, key: string, make: () => unknown): void {
  let made = false;
  let value: unknown;
  const settle = (v: unknown): void => {
    Object.defineProperty(target, key, { value: v, enumerable: true, writable: true, configurable: true });
  };
  Object.defineProperty(target, key, {
    enumerable: true,
    configurable: true,
    get() {
      if (!made) {
        value = make();
        made = true;
        try {
          settle(value);
        } catch {
          // sealed or frozen since: the accessor stays
        }
      }
      return value;
    },
    set(v: unknown) {
      settle(v);
    },
  });
}

/** True for objects that look like a tf.Tensor: `shape`, `dtype`, `dataSync()`. */
export function isTensorLike(v: unknown): v is { shape: number[]; dtype: string; dataSync(): unknown } {
  if (typeof v !== 'object' || v === null) return false;
  const t = v as { shape?: unknown; dtype?: unknown; dataSync?: unknown };
  return Array.isArray(t.shape) && typeof t.dtype === 'string' && typeof t.dataSync === 'function';
}

function align8(n: number): number {
  return (n + 7) & ~7;
}

function joinKey(path: string, key: string): string {
  if (/^[A-Za-z_$][\w$]*$/.test(key)) return path ? `${path}.${key}` : key;
  return `${path}[${JSON.stringify(key)}]`;
}

/** Sets a key without invoking the `__proto__` setter. */
function defineKey(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') {
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    target[key] = value;
  }
}
