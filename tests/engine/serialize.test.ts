import { describe, expect, it } from 'vitest';
import { decode, decodeLazily, encode, type StoredTensor } from '../../src/engine/serialize.ts';

function roundTrip<T>(value: T): T {
  return decode(encode(value)) as T;
}

function bytesOf(a: ArrayBufferView): number[] {
  return [...new Uint8Array(a.buffer, a.byteOffset, a.byteLength)];
}

describe('serialize', () => {
  it('round-trips primitives including special numbers', () => {
    const value = {
      u: undefined,
      n: null,
      t: true,
      f: false,
      int: 42,
      frac: 0.1,
      nan: NaN,
      inf: Infinity,
      ninf: -Infinity,
      negZero: -0,
      s: 'héllo ✓',
      big: 12345678901234567890n,
      negBig: -5n,
    };
    const back = roundTrip(value);
    expect(back).toEqual(value);
    expect(Object.is(back.negZero, -0)).toBe(true);
    expect(Number.isNaN(back.nan)).toBe(true);
    expect('u' in back).toBe(true);
    expect(typeof back.big).toBe('bigint');
  });

  it('round-trips every typed array kind bit for bit', () => {
    const kinds = [
      new Int8Array([-128, 0, 127]),
      new Uint8Array([0, 1, 255]),
      new Uint8ClampedArray([0, 128, 255]),
      new Int16Array([-32768, 5, 32767]),
      new Uint16Array([0, 65535]),
      new Int32Array([-(2 ** 31), 7]),
      new Uint32Array([2 ** 32 - 1, 3]),
      new Float32Array([1.5, -0, Infinity, NaN]),
      new Float64Array([Math.PI, -0, -Infinity, NaN]),
      new BigInt64Array([-(2n ** 63n), 9n]),
      new BigUint64Array([2n ** 64n - 1n, 0n]),
    ];
    // A non-canonical NaN payload in a Float32Array must survive.
    const f32 = kinds[7] as Float32Array;
    new DataView(f32.buffer).setUint32(12, 0x7fc01234, true);
    const back = roundTrip(kinds);
    expect(back).toHaveLength(kinds.length);
    for (let i = 0; i < kinds.length; i++) {
      const a = kinds[i]!;
      const b = back[i]!;
      expect(b.constructor).toBe(a.constructor);
      expect(bytesOf(b)).toEqual(bytesOf(a));
    }
    expect(new DataView((back[7] as Float32Array).buffer).getUint32(12, true)).toBe(0x7fc01234);
  });

  it('keeps subarray views to their own bytes and aligns payloads', () => {
    const base = new Float64Array([1, 2, 3, 4]);
    const view = base.subarray(1, 3);
    const odd = new Uint8Array([1, 2, 3]);
    const back = roundTrip({ odd, view });
    expect([...back.view]).toEqual([2, 3]);
    expect([...back.odd]).toEqual([1, 2, 3]);
    expect(back.view.byteOffset % 8).toBe(0);
  });

  it('round-trips nested Map, Set, Date and $-keyed objects', () => {
    const value = {
      history: new Map<unknown, unknown>([
        ['loss', [0.5, 0.25]],
        [3, new Set([1, 'a', new Date(0)])],
      ]),
      when: new Date('2026-11-21T10:00:00Z'),
      invalid: new Date(NaN),
      dollar: { $: 'not a tag', v: 1 },
      nested: [[{ a: [new Map([[new Date(5), new Set()]])] }]],
      proto: JSON.parse('{"__proto__": 1}') as Record<string, unknown>,
    };
    const back = roundTrip(value);
    expect(back).toEqual(value);
    expect(back.history.get(3)).toBeInstanceOf(Set);
    expect(Number.isNaN(back.invalid.getTime())).toBe(true);
    expect(Object.getPrototypeOf(back.proto)).toBe(Object.prototype);
    expect(Object.keys(back.proto)).toEqual(['__proto__']);
  });

  it('stores a duck-typed tensor as data + shape + dtype', () => {
    const data = new Float32Array([1, 2, 3, 4, 5, 6]);
    const tensor = { shape: [2, 3], dtype: 'float32', dataSync: () => data, dispose() {} };
    const back = decode(encode({ weights: tensor })) as { weights: StoredTensor };
    expect(back.weights.shape).toEqual([2, 3]);
    expect(back.weights.dtype).toBe('float32');
    expect(back.weights.data).toBeInstanceOf(Float32Array);
    expect([...back.weights.data]).toEqual([1, 2, 3, 4, 5, 6]);
    // A StoredTensor is plain data and stores again unchanged.
    expect(roundTrip(back)).toEqual(back);
  });

  it('stores a Node Buffer as a Uint8Array', () => {
    const back = roundTrip({ png: Buffer.from([137, 80, 78, 71]) });
    expect(back.png.constructor).toBe(Uint8Array);
    expect([...back.png]).toEqual([137, 80, 78, 71]);
  });

  it('names the export path of a function or class instance', () => {
    const model = { layers: [() => 1] };
    expect(() => encode({ model })).toThrow('export "model.layers[0]" is a function; export plain data');
    class Sequential {}
    expect(() => encode({ net: { inner: new Sequential() } })).toThrow(
      'export "net.inner" is an instance of Sequential',
    );
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    expect(() => encode({ cyclic })).toThrow('export "cyclic.self" is a circular reference');
  });

  it('gives the same bytes for the same value and rejects garbage', () => {
    const value = { a: new Float32Array([1, 2]), b: new Map([['x', 1]]) };
    expect(encode(value)).toEqual(encode({ a: new Float32Array([1, 2]), b: new Map([['x', 1]]) }));
    expect(() => decode(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]))).toThrow('bad magic');
  });

  it('is fast for 10 MB of Float32', () => {
    const big = new Float32Array(2_500_000).map((_, i) => Math.sin(i));
    const t0 = performance.now();
    const bytes = encode({ big });
    const back = decode(bytes) as { big: Float32Array };
    const ms = performance.now() - t0;
    expect(bytes.byteLength).toBeLessThan(big.byteLength + 256);
    expect(back.big[12345]).toBe(big[12345]);
    expect(ms).toBeLessThan(1000);
  });
});

describe('decodeLazily', () => {
  const value = {
    n: 1,
    s: 'text',
    big: 5n,
    arr: [1, { deep: new Float32Array([1, 2, 3]) }, [new Date(0)]],
    map: new Map<unknown, unknown>([['k', { v: new Set([1]) }]]),
    obj: { a: { b: { c: [NaN, -0, undefined] } }, dollar: { $: 'not a tag', v: 2 } },
    tensor: { shape: [2], dtype: 'float32', dataSync: () => new Float32Array([7, 8]), dispose() {} },
    proto: JSON.parse('{"__proto__": {"x": 1}, "after": 2}') as Record<string, unknown>,
    bytes: new Uint8Array([9, 8, 7]).buffer,
  };

  it('gives what decode gives: the same values, keys in the same order, the same bytes again', () => {
    const bytes = encode(value);
    const eager = decode(bytes);
    const lazy = decodeLazily(bytes)();
    expect(lazy).toEqual(eager);
    expect(JSON.stringify(lazy, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))).toBe(JSON.stringify(eager, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)));
    expect(Object.keys((lazy as typeof value).proto)).toEqual(['__proto__', 'after']);
    expect(Object.getPrototypeOf((lazy as typeof value).proto)).toBe(Object.prototype);
    expect(encode(decodeLazily(bytes)())).toEqual(encode(eager));
  });

  it('gives a new copy at each call: writing one changes neither the next nor the bytes', () => {
    const bytes = encode(value);
    const fresh = decodeLazily(bytes);
    const first = fresh() as any;
    first.arr[1].deep[0] = 100;
    (first.arr as unknown[]).reverse();
    first.obj.a.b.c.push(4);
    first.obj.a = 'replaced';
    delete first.s;
    (first.map as Map<unknown, unknown>).clear();
    let second = fresh() as any;
    expect(second).toEqual(decode(bytes));
    expect(second.arr[1].deep[0]).toBe(1);
    expect(second.obj.a.b.c).toHaveLength(3);
    // A part not read yet is decoded when read; one read stays the same object.
    second = fresh() as any;
    expect(second.obj).toBe(second.obj);
    expect(Object.getOwnPropertyDescriptor(second.obj, 'a')?.get).toBeDefined();
    expect(second.obj.a).toBe(second.obj.a);
    expect(Object.getOwnPropertyDescriptor(second.obj, 'a')?.value).toBe(second.obj.a);
    // Frozen before it was read: still readable, and writing throws as for any frozen object.
    const third = fresh() as any;
    Object.freeze(third.obj);
    expect(third.obj.a.b.c).toHaveLength(3);
    expect(() => {
      third.obj.a = 1;
    }).toThrow(TypeError);
  });
});
