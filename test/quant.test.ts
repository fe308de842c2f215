// The quantized formats: block layouts, quantize -> dequantize error bounds, edge cases.
// Bounds come from each format's rounding rule against its stored (f16-rounded) scales; see each test.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dequantizeMatrix, firstNonFinite, nearestInt, QUANT_FORMATS, quantizeMatrix, roundAway, type QuantType } from '../src/quant/formats.js';
import { scaleMinK4 } from '../src/quant/q4_k.js';
import { f16ToF32, GGMLType } from '../src/base/tensor.js';

const f16At = (b: Uint8Array, o: number) => f16ToF32(b[o]! | (b[o + 1]! << 8));
const SUB = 2 ** -24; // f16's smallest subnormal: absolute rounding of tiny scales is at most half of it
/** Random rows of `blocks` blocks: mixed magnitudes, occasional exact zeros and repeated values. */
const matrix = (blockSize: number) =>
  fc.record({ rows: fc.integer({ min: 1, max: 3 }), blocks: fc.integer({ min: 1, max: 3 }), scale: fc.constantFrom(1e-6, 0.02, 1, 300) }).chain((s) =>
    fc.record({
      s: fc.constant(s),
      x: fc.array(fc.oneof(fc.float({ min: -1, max: 1, noNaN: true }), fc.constant(0), fc.constant(0.5)), { minLength: s.rows * s.blocks * blockSize, maxLength: s.rows * s.blocks * blockSize }).map((a) => Float32Array.from(a, (v) => v * s.scale)),
    }),
  );


/**
 * A 16-bit-input kernel's outputs (got4: N inputs x rows; got1: the one-input kernel on input 0) against
 * the float64 product of the dequantized weights `deq` and the dequantized 16-bit inputs (q, and the
 * [d, d sum q] pairs ds): as the "_i16" kernels, exact integer block sums, then f32 scaling and summing:
 * (cols/4 + 16) * 2^-24 * 2 * sum |w x|; the one-input kernel equal to the four-input one bit for bit.
 */
function expectInt16Product(got1: Float32Array, got4: Float32Array, deq: Float32Array, q: Int16Array, ds: Float32Array, rows: number, cols: number, N: number): void {
  const xHat = Float64Array.from(q, (v, i) => v * ds[2 * Math.floor(i / 32)]!);
  for (let t = 0; t < N; t++)
    for (let r = 0; r < rows; r++) {
      let ref = 0, mag = 0;
      for (let c = 0; c < cols; c++) { ref += deq[r * cols + c]! * xHat[t * cols + c]!; mag += Math.abs(deq[r * cols + c]! * xHat[t * cols + c]!); }
      expect(Math.abs(got4[t * rows + r]! - ref)).toBeLessThanOrEqual((cols / 4 + 16) * 2 ** -24 * 2 * mag + 1e-30);
      if (t === 0) expect(got1[r]).toBe(got4[r]);
    }
}
describe('rounding helpers', () => {
  it('nearestInt rounds half to even like ggml; roundAway like C roundf', () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, 2.4, -2.6].map((v) => nearestInt(v) + 0)).toEqual([0, 2, 2, 0, -2, 2, -3]);
    expect([0.5, 1.5, 2.5, -0.5, -2.5, 2.4].map(roundAway)).toEqual([1, 2, 3, -1, -3, 2]);
  });
});

describe('Q8_0', () => {
  it('every value within half a step of d (plus d\'s f16 rounding times |q| <= 127)', () => {
    fc.assert(fc.property(matrix(32), ({ s, x }) => {
      const cols = s.blocks * 32;
      const m = quantizeMatrix(GGMLType.Q8_0, x, s.rows, cols);
      expect(m.data.length).toBe(s.rows * s.blocks * 34);
      const y = dequantizeMatrix(m);
      for (let b = 0; b < s.rows * s.blocks; b++) {
        let amax = 0;
        for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]!));
        const d = amax / 127;
        // |q d16 - x| <= |q d - x| + |q| |d16 - d| <= d/2 + 127 (d 2^-11 + SUB/2), with f32 slack.
        const tol = d / 2 + 127 * (d * 2 ** -11 + SUB / 2) + amax * 2 ** -22;
        for (let j = 0; j < 32; j++) expect(Math.abs(y[b * 32 + j]! - x[b * 32 + j]!)).toBeLessThanOrEqual(tol);
      }
    }), { numRuns: 200 });
  });
});

describe('Q4_0', () => {
  it('the largest-magnitude value is exact up to f16; every value within one step |d| (half a step, or a clamp at 15)', () => {
    fc.assert(fc.property(matrix(32), ({ s, x }) => {
      const m = quantizeMatrix(GGMLType.Q4_0, x, s.rows, s.blocks * 32);
      expect(m.data.length).toBe(s.rows * s.blocks * 18);
      const y = dequantizeMatrix(m);
      for (let b = 0; b < s.rows * s.blocks; b++) {
        let amax = 0;
        for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]!));
        const d = amax / 8;
        // q = min(15, trunc(x/d + 8.5)): half a step inside the grid, a whole step where 16 clamps to 15;
        // then d's f16 rounding times |q - 8| <= 8.
        const tol = d + 8 * (d * 2 ** -11 + SUB / 2) + amax * 2 ** -22;
        for (let j = 0; j < 32; j++) expect(Math.abs(y[b * 32 + j]! - x[b * 32 + j]!)).toBeLessThanOrEqual(tol);
      }
    }), { numRuns: 200 });
  });
});

describe('Q5_0', () => {
  it('every value within one step |d| = max|x| / 16 (half a step, or a clamp at 31), the 5th bits where ggml puts them', () => {
    fc.assert(fc.property(matrix(32), ({ s, x }) => {
      const m = quantizeMatrix(GGMLType.Q5_0, x, s.rows, s.blocks * 32);
      expect(m.data.length).toBe(s.rows * s.blocks * 22);
      const y = dequantizeMatrix(m);
      for (let b = 0; b < s.rows * s.blocks; b++) {
        let amax = 0;
        for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]!));
        const d = amax / 16;
        // as Q4_0 with 32 levels: half a step inside, a whole step where 32 clamps to 31; d's f16 rounding times |q - 16| <= 16
        const tol = d + 16 * (d * 2 ** -11 + SUB / 2) + amax * 2 ** -22;
        for (let j = 0; j < 32; j++) expect(Math.abs(y[b * 32 + j]! - x[b * 32 + j]!)).toBeLessThanOrEqual(tol);
      }
    }), { numRuns: 200 });
  });

  it('decodes a hand-made block: qh bit j is the 5th bit of value j', () => {
    const block = new Uint8Array(22);
    block[0] = 0x00; block[1] = 0x3c; // d = 1.0 in f16
    block[2] = 0b0000_0001; block[4] = 0b0000_0001; // qh bits 0 and 16: values 0 and 16 get +16
    block[6] = 0x21; // byte 0: value 0 low nibble 1, value 16 high nibble 2
    const out = new Float32Array(32);
    QUANT_FORMATS[GGMLType.Q5_0].dequantize(block, 0, out, 0);
    expect([out[0], out[16], out[1], out[17]]).toEqual([1 + 16 - 16, 2 + 16 - 16, -16, -16]);
  });
});

for (const [name, type, levels, bytes] of [['Q4_1', GGMLType.Q4_1, 15, 20], ['Q5_1', GGMLType.Q5_1, 31, 24]] as const)
  describe(name, () => {
    it(`every value within half a step d = (max - min) / ${levels} of the grid d * q + min (plus the f16 rounding of d and min)`, () => {
      fc.assert(fc.property(matrix(32), ({ s, x }) => {
        const m = quantizeMatrix(type, x, s.rows, s.blocks * 32);
        expect(m.data.length).toBe(s.rows * s.blocks * bytes);
        const y = dequantizeMatrix(m);
        for (let b = 0; b < s.rows * s.blocks; b++) {
          const block = x.subarray(b * 32, b * 32 + 32);
          const [min, max] = [Math.min(...block), Math.max(...block)];
          const d = (max - min) / levels;
          // half a step; d stored as f16 (relative 2^-11, or half the subnormal step) times q <= levels;
          // min stored as f16 likewise; f32 rounding of (x - min) / d and of d * q + m.
          const tol = d / 2 + levels * (d * 2 ** -11 + SUB / 2) + (Math.abs(min) * 2 ** -11 + SUB / 2) + (Math.abs(min) + Math.abs(max)) * 2 ** -21;
          for (let j = 0; j < 32; j++) expect(Math.abs(y[b * 32 + j]! - block[j]!)).toBeLessThanOrEqual(tol);
        }
      }), { numRuns: 200 });
    });
  });

describe('Q5_1 layout', () => {
  it('decodes a hand-made block: d * q + m, qh bit j the 5th bit of value j', () => {
    const block = new Uint8Array(24);
    block.set([0x00, 0x3c, 0x00, 0xbc]); // d = 1.0, m = -1.0 (f16)
    block[4] = 0b0000_0001; block[6] = 0b0000_0001; // qh bits 0 and 16: values 0 and 16 get +16
    block[8] = 0x21; // byte 0: value 0 low nibble 1, value 16 high nibble 2
    const out = new Float32Array(32);
    QUANT_FORMATS[GGMLType.Q5_1].dequantize(block, 0, out, 0);
    expect([out[0], out[16], out[1], out[17]]).toEqual([1 + 16 - 1, 2 + 16 - 1, -1, -1]);
  });
});

/** Q4_K / Q5_K: every value on its sub-block's grid d*sc*q - dmin*m (q in 0..levels) within half a step, or clamped to it. */
function kQuantOnGrid(type: QuantType, blockBytes: number, levels: number): void {
  fc.assert(fc.property(matrix(256), ({ s, x }) => {
    const m = quantizeMatrix(type, x, s.rows, s.blocks * 256);
    expect(m.data.length).toBe(s.rows * s.blocks * blockBytes);
    const y = dequantizeMatrix(m);
    for (let b = 0; b < s.rows * s.blocks; b++) {
      const off = b * blockBytes;
      const [d, dmin] = [f16At(m.data, off), f16At(m.data, off + 2)];
      for (let j = 0; j < 8; j++) {
        const [sc, mn] = scaleMinK4(j, m.data, off + 4);
        const [step, low] = [d * sc, -dmin * mn];
        for (let i = 0; i < 32; i++) {
          const k = b * 256 + 32 * j + i;
          const v = x[k]!;
          const clampedTo = Math.min(Math.max(v, low), low + levels * step); // the nearest point of the grid's span
          // half a step, the distance to the grid's span, and f32 rounding of d*sc*q - dmin*m
          const tol = (step ? step / 2 : 0) + Math.abs(v - clampedTo) + 1e-6 * (Math.abs(v) + Math.abs(low) + levels * step) + 1e-30;
          expect(Math.abs(y[k]! - v)).toBeLessThanOrEqual(tol);
        }
      }
    }
  }), { numRuns: 60 });
}

describe('Q4_K', () => {
  it('every value on its sub-block grid d*sc*q - dmin*m (q in 0..15) within half a step, or clamped to the grid', () => kQuantOnGrid(GGMLType.Q4_K, 144, 15));

  it('is a good 4-bit code on Gaussian-like data: SNR above 18 dB (uniform 4-bit over the range gives about 20)', () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const x = Float32Array.from({ length: 256 * 64 }, () => Math.sqrt(-2 * Math.log(rnd() + 1e-12)) * Math.cos(2 * Math.PI * rnd()));
    for (const type of [GGMLType.Q4_K, GGMLType.Q4_0] as QuantType[]) {
      const y = dequantizeMatrix(quantizeMatrix(type, x, 64, 256));
      let sig = 0, err = 0;
      x.forEach((v, i) => { sig += v * v; err += (v - y[i]!) ** 2; });
      expect(10 * Math.log10(sig / err)).toBeGreaterThan(18);
    }
  });
});

describe('Q5_K', () => {
  it('reads ggml\'s layout: a hand-built block (d = 1, dmin = 0, every scale 1) gives its 5-bit codes', () => {
    const b = new Uint8Array(176);
    b.set([0x00, 0x3c, 0, 0]); // d = 1.0 (f16), dmin = 0
    b.set([1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1], 4); // sc_j = 1, m_j = 0 (q4_k.ts's packing)
    // qh[l] bit 2g / 2g+1: the 5th bit of value 64g + l / 64g + 32 + l
    b[16 + 0] = 0b00000001; b[16 + 1] = 0b00000010; b[16 + 2] = 0b00000100; b[16 + 3] = 0b10000000;
    // qs[32g + l]: value 64g + l in the low nibble, 64g + 32 + l in the high one
    b[48 + 0] = 0x21; b[48 + 1] = 0x43; b[48 + 32 + 2] = 0x05; b[48 + 96 + 3] = 0x70;
    const y = dequantizeMatrix({ type: GGMLType.Q5_K, data: b, rows: 1, cols: 256 });
    const want = new Float32Array(256);
    Object.entries({ 0: 17, 32: 2, 1: 3, 33: 20, 66: 21, 227: 23 }).forEach(([i, v]) => (want[Number(i)] = v));
    expect(Array.from(y)).toEqual(Array.from(want));
  });

  it('every value on its sub-block grid d*sc*q - dmin*m (q in 0..31) within half a step, or clamped to the grid', () => kQuantOnGrid(GGMLType.Q5_K, 176, 31));

  it('is a good 5-bit code on Gaussian-like data: SNR above 24 dB (Q4_K\'s 18 plus 6 dB for the extra bit)', () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const x = Float32Array.from({ length: 256 * 64 }, () => Math.sqrt(-2 * Math.log(rnd() + 1e-12)) * Math.cos(2 * Math.PI * rnd()));
    const y = dequantizeMatrix(quantizeMatrix(GGMLType.Q5_K, x, 64, 256));
    let sig = 0, err = 0;
    x.forEach((v, i) => { sig += v * v; err += (v - y[i]!) ** 2; });
    expect(10 * Math.log10(sig / err)).toBeGreaterThan(24);
  });
});

describe('Q6_K', () => {
  it('every value within half a step of d*scale of its 16-value group, or clamped at -32 / 31 steps', () => {
    fc.assert(fc.property(matrix(256), ({ s, x }) => {
      const m = quantizeMatrix(GGMLType.Q6_K, x, s.rows, s.blocks * 256);
      expect(m.data.length).toBe(s.rows * s.blocks * 210);
      const y = dequantizeMatrix(m);
      for (let b = 0; b < s.rows * s.blocks; b++) {
        const off = b * 210;
        const d = f16At(m.data, off + 208);
        for (let g = 0; g < 16; g++) {
          const step = d * ((m.data[off + 192 + g]! << 24) >> 24);
          const [lo, hi] = [Math.min(-32 * step, 31 * step), Math.max(-32 * step, 31 * step)];
          for (let i = 0; i < 16; i++) {
            const k = b * 256 + 16 * g + i;
            const v = x[k]!;
            const tol = Math.abs(step) / 2 + Math.abs(v - Math.min(Math.max(v, lo), hi)) + 1e-6 * (Math.abs(v) + 32 * Math.abs(step)) + 1e-30;
            expect(Math.abs(y[k]! - v)).toBeLessThanOrEqual(tol);
          }
        }
      }
    }), { numRuns: 60 });
  });
});

describe('every format', () => {
  const types = Object.keys(QUANT_FORMATS).map(Number) as QuantType[];
  it('all-zero blocks come back as zeros; tiny values give finite results', () => {
    for (const t of types) {
      const n = QUANT_FORMATS[t].blockSize;
      expect(Array.from(dequantizeMatrix(quantizeMatrix(t, new Float32Array(n), 1, n)), (v) => v + 0)).toEqual(new Array(n).fill(0)); // + 0: -0 counts as 0
      const tiny = Float32Array.from({ length: n }, (_, i) => (i % 3 - 1) * 1e-30);
      expect(dequantizeMatrix(quantizeMatrix(t, tiny, 1, n)).every(Number.isFinite)).toBe(true);
    }
  });

  it('refuse NaN and infinities, and values too large for their f16 scales, naming the tensor', () => {
    for (const t of types) {
      const n = QUANT_FORMATS[t].blockSize;
      for (const bad of [NaN, Infinity, -Infinity]) {
        const x = new Float32Array(n);
        x[3] = bad;
        expect(() => quantizeMatrix(t, x, 1, n, 'blk.0.attn_q.weight')).toThrow(/blk\.0\.attn_q\.weight holds .* row 0, column 3: NaN and infinite/);
      }
      expect(() => quantizeMatrix(t, new Float32Array(n).fill(3e38), 1, n, 'big')).toThrow(/too large for .* f16 scales/);
      expect(() => quantizeMatrix(t, new Float32Array(n + 1), 1, n + 1)).toThrow(/multiple of/);
    }
  });
});

describe('WebAssembly SIMD kernels for quantized matrix-vector products', () => {
  for (const relaxed of [false, true])
  it('equal the block-by-block float64 reference up to f32 accumulation, for every format (' + (relaxed ? 'relaxed SIMD' : 'SIMD 1.0') + ')', async () => {
    const simd = (await import('../src/backend/matmul-wasm.js')).relaxedSimd();
    if (relaxed && !simd.madd && !simd.dot) return;
    const { matmulWasmBytes, prepareKernelMemory, KERNEL_MEMORY_START } = await import('../src/backend/matmul-wasm.js');
    const { fillWasmSide, fillXSums, wasmSideLength, LANE_ORDER, permuteInputs } = await import('../src/backend/quant-wasm.js');
    const { quantMatmul, rowBytes } = await import('../src/quant/formats.js');
    const memory = new WebAssembly.Memory({ initial: 64, maximum: 1024, shared: true });
    prepareKernelMemory(memory);
    const k = new WebAssembly.Instance(new WebAssembly.Module(matmulWasmBytes(relaxed ? simd : undefined)), { env: { memory } }).exports as unknown as Record<string, (...a: number[]) => void>;
    // (the single- and four-input kernels of every format)
    const types = Object.keys(QUANT_FORMATS).map(Number) as QuantType[];
    fc.assert(fc.property(fc.constantFrom(...types), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 2 ** 31 }), (type, rows, blocks256, seed) => {
      const cols = 256 * blocks256;
      let st = seed;
      const rnd = () => ((st = (Math.imul(st, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
      const w = Float32Array.from({ length: rows * cols }, () => rnd() * (rnd() > 0.9 ? 4 : 1));
      const N = 4; // the x4 kernel takes four inputs, the plain one the first
      const x = Float32Array.from({ length: N * cols }, rnd);
      const m = quantizeMatrix(type, w, rows, cols);
      const ref = new Float32Array(N * rows);
      quantMatmul(ref, m, x, N);
      // Lay out w, side, x, xsum, out in the shared memory (16-byte aligned).
      const bytes = new Uint8Array(memory.buffer);
      let top = KERNEL_MEMORY_START;
      const place = (n: number) => { const at = Math.ceil(top / 16) * 16; top = at + n; return at; };
      const wp = place(m.data.length); bytes.set(m.data, wp);
      const side = new Float32Array(wasmSideLength(m)); fillWasmSide(m, side);
      const sp = place(side.byteLength); new Float32Array(memory.buffer, sp, side.length).set(side);
      // (Q8_0's and Q4_0's f32 kernels read the inputs in lane order)
      const xLanes = new Float32Array(x.length);
      if (LANE_ORDER.has(type)) permuteInputs(type, x, N, cols, xLanes); else xLanes.set(x);
      const xp = place(x.byteLength); new Float32Array(memory.buffer, xp, x.length).set(xLanes);
      const xs = new Float32Array(N * (cols / 32)); fillXSums(x, N, cols, xs);
      const xsp = place(xs.byteLength); new Float32Array(memory.buffer, xsp, xs.length).set(xs);
      const op1 = place(rows * 4), op4 = place(N * rows * 4);
      const name = { [GGMLType.Q8_0]: 'q8_0', [GGMLType.Q4_0]: 'q4_0', [GGMLType.Q4_1]: 'q4_1', [GGMLType.Q5_0]: 'q5_0', [GGMLType.Q5_1]: 'q5_1', [GGMLType.Q4_K]: 'q4_k', [GGMLType.Q5_K]: 'q5_k', [GGMLType.Q6_K]: 'q6_k' }[type];
      const f = QUANT_FORMATS[type];
      const args = [rowBytes(type, cols), cols / f.blockSize, 0, rows, cols * 4, (cols / 32) * 4, rows * 4];
      k[name]!(wp, sp, xp, xsp, op1, ...args);
      k[`${name}x4`]!(wp, sp, xp, xsp, op4, ...args);
      const got1 = new Float32Array(memory.buffer, op1, rows);
      const got4 = new Float32Array(memory.buffer, op4, N * rows);
      const deq = dequantizeMatrix(m);
      for (let t = 0; t < N; t++)
        for (let r = 0; r < rows; r++) {
          let mag = 0;
          for (let c = 0; c < cols; c++) mag += Math.abs(deq[r * cols + c]! * x[t * cols + c]!);
          // f32 partial sums (4 lanes, cols/4 terms each, plus the per-block scaling and the final
          // 4-way sum), the scales' own f32 rounding, and Q4_K's min term (sum of |m * xsum|):
          const bound = (cols / 4 + 16) * 2 ** -24 * 2 * mag + 1e-30;
          expect(Math.abs(got4[t * rows + r]! - ref[t * rows + r]!)).toBeLessThanOrEqual(bound);
          if (t === 0) expect(got1[r]).toBe(got4[r]); // the same arithmetic, in the same order
        }
    }), { numRuns: 150 });
  });

  it('block scales come from the f16 table: every f16 bit pattern as its definition says, and zero, subnormal, largest and negative scales in the kernels', async () => {
    const { matmulWasmBytes, prepareKernelMemory, KERNEL_MEMORY_START } = await import('../src/backend/matmul-wasm.js');
    const { F16_TABLE } = await import('../src/backend/quant-wasm.js');
    const { rowBytes } = await import('../src/quant/formats.js');
    const memory = new WebAssembly.Memory({ initial: 8, maximum: 64, shared: true });
    prepareKernelMemory(memory);
    // f16: sign, 5 exponent bits (bias 15), 10 mantissa bits; exponent 0 subnormal, 31 infinite or NaN
    const table = new Float32Array(memory.buffer, F16_TABLE, 65536);
    for (let h = 0; h < 65536; h++) {
      const [sign, e, m] = [h >> 15 ? -1 : 1, (h >> 10) & 31, h & 1023];
      const want = e === 0 ? sign * m * 2 ** -24 : e === 31 ? (m ? NaN : sign * Infinity) : sign * 2 ** (e - 15) * (1 + m / 1024);
      if (!Object.is(table[h], want)) expect([h, table[h]]).toEqual([h, want]);
    }
    const k = new WebAssembly.Instance(new WebAssembly.Module(matmulWasmBytes()), { env: { memory } }).exports as unknown as Record<string, (...a: number[]) => void>;
    const scales = [0x0000, 0x8000, 0x0001, 0x03ff, 0x8200, 0x0400, 0x3c00, 0x7bff, 0xfbff]; // 0, -0, subnormals, smallest normal, 1, +-65504
    const [rows, cols] = [scales.length, 64];
    const names = { [GGMLType.Q8_0]: 'q8_0', [GGMLType.Q4_0]: 'q4_0', [GGMLType.Q5_0]: 'q5_0', [GGMLType.Q4_1]: 'q4_1', [GGMLType.Q5_1]: 'q5_1' } as const;
    for (const [type, name] of Object.entries(names).map(([t, n]) => [Number(t) as QuantType, n] as const)) {
      const m = quantizeMatrix(type, Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i * 0.37)), rows, cols);
      const perRow = rowBytes(type, cols), perBlock = perRow / 2;
      // row r's blocks get scale r (and, in Q4_1 / Q5_1, the offset m of the next row's scale)
      for (let r = 0; r < rows; r++)
        for (let b = 0; b < 2; b++) {
          const at = r * perRow + b * perBlock;
          m.data[at] = scales[r]! & 0xff; m.data[at + 1] = scales[r]! >> 8;
          if (type === GGMLType.Q4_1 || type === GGMLType.Q5_1) { m.data[at + 2] = scales[(r + 1) % rows]! & 0xff; m.data[at + 3] = scales[(r + 1) % rows]! >> 8; }
        }
      const x = Float32Array.from({ length: cols }, (_, i) => Math.cos(i * 0.11) * 3);
      const xs = new Float32Array(cols / 32); fillXSumsRef(x, xs);
      const bytes = new Uint8Array(memory.buffer);
      const [wp, xp, xsp, op] = [KERNEL_MEMORY_START, KERNEL_MEMORY_START + 4096, KERNEL_MEMORY_START + 8192, KERNEL_MEMORY_START + 12288];
      bytes.set(m.data, wp);
      const xIn = new Float32Array(cols);
      if (type === GGMLType.Q8_0 || type === GGMLType.Q4_0) (await import('../src/backend/quant-wasm.js')).permuteInputs(type, x, 1, cols, xIn); else xIn.set(x);
      new Float32Array(memory.buffer, xp, cols).set(xIn);
      new Float32Array(memory.buffer, xsp, xs.length).set(xs);
      k[name]!(wp, 0, xp, xsp, op, perRow, 2, 0, rows, cols * 4, (cols / 32) * 4, rows * 4);
      const got = new Float32Array(memory.buffer, op, rows);
      const deq = dequantizeMatrix(m);
      for (let r = 0; r < rows; r++) {
        let ref = 0, mag = 0;
        for (let c = 0; c < cols; c++) { ref += deq[r * cols + c]! * x[c]!; mag += Math.abs(deq[r * cols + c]! * x[c]!); }
        // as above: f32 partial sums and the scale and offset terms, relative to sum |w x|
        expect(Math.abs(got[r]! - ref)).toBeLessThanOrEqual((cols / 4 + 16) * 2 ** -24 * 2 * mag + 1e-30);
      }
    }
  });

  for (const bits of [8, 16] as const)
  for (const relaxed of [false, true])
  it(`integer-input kernels ("_i8" with i8 values, "_i16" with i16) equal the float64 product of the dequantized weights and the dequantized ${bits}-bit inputs, for every format (${relaxed ? 'relaxed SIMD' : 'SIMD 1.0'})`, async () => {
    const simd = (await import('../src/backend/matmul-wasm.js')).relaxedSimd();
    if (relaxed && !simd.madd && !simd.dot) return;
    // i8 values for the relaxed dot product's "_i8" kernels (8-bit inputs in a module built with it), else i16 for "_i16"
    const i8 = bits === 8 && relaxed && simd.dot;
    const { matmulWasmBytes, prepareKernelMemory, KERNEL_MEMORY_START } = await import('../src/backend/matmul-wasm.js');
    const { activationBlock, fillWasmSide, quantizeActivations, wasmSideLength } = await import('../src/backend/quant-wasm.js');
    const { rowBytes } = await import('../src/quant/formats.js');
    const memory = new WebAssembly.Memory({ initial: 64, maximum: 1024, shared: true });
    prepareKernelMemory(memory);
    const k = new WebAssembly.Instance(new WebAssembly.Module(matmulWasmBytes(relaxed ? simd : undefined)), { env: { memory } }).exports as unknown as Record<string, (...a: number[]) => void>;
    const types = Object.keys(QUANT_FORMATS).map(Number) as QuantType[];
    fc.assert(fc.property(fc.constantFrom(...types), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 2 ** 31 }), (type, rows, blocks256, seed) => {
      const cols = 256 * blocks256;
      let st = seed;
      const rnd = () => ((st = (Math.imul(st, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
      const w = Float32Array.from({ length: rows * cols }, () => rnd() * (rnd() > 0.9 ? 4 : 1));
      const N = 4;
      const x = Float32Array.from({ length: N * cols }, () => rnd() * (rnd() > 0.95 ? 30 : 1));
      const m = quantizeMatrix(type, w, rows, cols);
      const q = i8 ? new Int8Array(N * cols) : new Int16Array(N * cols), ds = new Float32Array((N * cols) / 16);
      if (bits === 16) quantizeActivations(x, N, cols, 32, q, ds, 16);
      else quantizeActivations(x, N, cols, activationBlock(type), q, ds);
      const bytes = new Uint8Array(memory.buffer);
      let top = KERNEL_MEMORY_START;
      const place = (n: number) => { const at = Math.ceil(top / 16) * 16; top = at + n; return at; };
      const wp = place(m.data.length); bytes.set(m.data, wp);
      const side = new Float32Array(wasmSideLength(m)); fillWasmSide(m, side);
      const sp = place(side.byteLength); new Float32Array(memory.buffer, sp, side.length).set(side);
      const qp = place(q.byteLength); new Uint8Array(memory.buffer, qp, q.byteLength).set(new Uint8Array(q.buffer));
      const dp = place(ds.byteLength); new Float32Array(memory.buffer, dp, ds.length).set(ds);
      const op1 = place(rows * 4), op4 = place(N * rows * 4);
      const name = { [GGMLType.Q8_0]: 'q8_0', [GGMLType.Q4_0]: 'q4_0', [GGMLType.Q4_1]: 'q4_1', [GGMLType.Q5_0]: 'q5_0', [GGMLType.Q5_1]: 'q5_1', [GGMLType.Q4_K]: 'q4_k', [GGMLType.Q5_K]: 'q5_k', [GGMLType.Q6_K]: 'q6_k' }[type];
      const args = [rowBytes(type, cols), cols / QUANT_FORMATS[type].blockSize, 0, rows, cols * q.BYTES_PER_ELEMENT, (cols / 32) * 8, rows * 4];
      const suffix = i8 ? '_i8' : '_i16';
      k[`${name}${suffix}`]!(wp, sp, qp, dp, op1, ...args);
      k[`${name}x4${suffix}`]!(wp, sp, qp, dp, op4, ...args);
      const got1 = new Float32Array(memory.buffer, op1, rows);
      const got4 = new Float32Array(memory.buffer, op4, N * rows);
      const deq = dequantizeMatrix(m);
      const xHat = Float64Array.from(q, (v, i) => v * ds[2 * Math.floor(i / 32)]!); // the inputs the kernels see
      for (let t = 0; t < N; t++)
        for (let r = 0; r < rows; r++) {
          let ref = 0, mag = 0;
          for (let c = 0; c < cols; c++) {
            ref += deq[r * cols + c]! * xHat[t * cols + c]!;
            mag += Math.abs(deq[r * cols + c]! * xHat[t * cols + c]!);
          }
          // Integer block sums are exact; what is left is f32 rounding of the scales (weight scale
          // times input scale), of each block's scaled sum (16 bits: and of its conversion to f32, past
          // 2^24) and of the f32 lanes adding cols/32 of them, and Q4_K's min term: within the f32
          // kernels' bound, (cols/4 + 16) * 2^-24 * 2 * sum |w x|.
          const bound = (cols / 4 + 16) * 2 ** -24 * 2 * mag + 1e-30;
          expect(Math.abs(got4[t * rows + r]! - ref)).toBeLessThanOrEqual(bound);
          if (t === 0) expect(got1[r]).toBe(got4[r]);
        }
    }), { numRuns: 150 });
  });

  it('"_s16" kernels (16-bit inputs as byte planes, the relaxed dot product) equal the float64 product of the dequantized weights and the dequantized 16-bit inputs, for Q5_0, Q4_K, Q5_K and Q6_K; one input as the first of four, bit for bit', async () => {
    const { matmulWasmBytes, prepareKernelMemory, KERNEL_MEMORY_START, relaxedSimd } = await import('../src/backend/matmul-wasm.js');
    const simd = relaxedSimd();
    if (!simd.dot) return; // (the kernels are built only into modules with the relaxed dot product: Node 22+, Chrome)
    const { fillWasmSide, quantizeActivations, splitPlanes, wasmSideLength } = await import('../src/backend/quant-wasm.js');
    const { rowBytes } = await import('../src/quant/formats.js');
    const memory = new WebAssembly.Memory({ initial: 64, maximum: 1024, shared: true });
    prepareKernelMemory(memory);
    const k = new WebAssembly.Instance(new WebAssembly.Module(matmulWasmBytes(simd)), { env: { memory } }).exports as unknown as Record<string, (...a: number[]) => void>;
    const names = { [GGMLType.Q5_0]: 'q5_0', [GGMLType.Q4_K]: 'q4_k', [GGMLType.Q5_K]: 'q5_k', [GGMLType.Q6_K]: 'q6_k' } as Record<number, string>;
    fc.assert(fc.property(fc.constantFrom(GGMLType.Q5_0, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 2 ** 31 }), fc.constantFrom(1, 1e-3, 1e4), (type, rows, blocks256, seed, xScale) => {
      const cols = 256 * blocks256;
      let st = seed;
      const rnd = () => ((st = (Math.imul(st, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
      const w = Float32Array.from({ length: rows * cols }, () => rnd() * (rnd() > 0.9 ? 4 : 1));
      const N = 4;
      // (inputs whose blocks reach |q| = 32639, whose planes are 127 and 127, and -32639)
      const x = Float32Array.from({ length: N * cols }, (_, i) => (i % 97 === 0 ? (i % 2 ? 1 : -1) * 40 : rnd() * (rnd() > 0.95 ? 30 : 1)) * xScale);
      const m = quantizeMatrix(type as QuantType, w, rows, cols);
      const q = new Int16Array(N * cols), ds = new Float32Array((N * cols) / 16);
      quantizeActivations(x, N, cols, 32, q, ds, 16);
      let top = KERNEL_MEMORY_START;
      const place = (n: number) => { const at = Math.ceil(top / 16) * 16; top = at + n; return at; };
      const wp = place(m.data.length); new Uint8Array(memory.buffer).set(m.data, wp);
      const side = new Float32Array(wasmSideLength(m)); fillWasmSide(m, side);
      const sp = place(side.byteLength); new Float32Array(memory.buffer, sp, side.length).set(side);
      const pp = place(N * cols * 2), dp = place((N * cols / 32) * 16);
      splitPlanes(q, ds, new Int8Array(memory.buffer, pp, N * cols * 2), memory.buffer, dp);
      const op1 = place(rows * 4), op4 = place(N * rows * 4);
      const name = names[type]!;
      const args = [rowBytes(type, cols), cols / QUANT_FORMATS[type as QuantType].blockSize, 0, rows, cols * 2, (cols / 32) * 16, rows * 4];
      k[`${name}_s16`]!(wp, sp, pp, dp, op1, ...args);
      k[`${name}x4_s16`]!(wp, sp, pp, dp, op4, ...args);
      // (the integer sums are exact: the planes' products recombine to q's)
      expectInt16Product(new Float32Array(memory.buffer, op1, rows), new Float32Array(memory.buffer, op4, N * rows), dequantizeMatrix(m), q, ds, rows, cols, N);
    }), { numRuns: 150 });
  });

  it('Q4_0\'s "_p16" kernels (16-bit inputs in qrows16p\'s order) equal the float64 product of the dequantized weights and the dequantized 16-bit inputs; one input as the first of four, bit for bit (SIMD 1.0 and, where the runtime has it, a relaxed-SIMD module)', async () => {
    const { matmulWasmBytes, prepareKernelMemory, KERNEL_MEMORY_START, relaxedSimd, NO_RELAXED_SIMD } = await import('../src/backend/matmul-wasm.js');
    const { quantizeActivations } = await import('../src/backend/quant-wasm.js');
    const { rowBytes } = await import('../src/quant/formats.js');
    for (const simd of [NO_RELAXED_SIMD, ...(relaxedSimd().madd ? [relaxedSimd()] : [])]) {
      const memory = new WebAssembly.Memory({ initial: 64, maximum: 1024, shared: true });
      prepareKernelMemory(memory);
      const k = new WebAssembly.Instance(new WebAssembly.Module(matmulWasmBytes(simd)), { env: { memory } }).exports as unknown as Record<string, (...a: number[]) => void>;
      fc.assert(fc.property(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 2 ** 31 }), fc.constantFrom(1, 1e-3, 1e4), (rows, blocks, seed, xScale) => {
        const cols = 32 * blocks;
        let st = seed;
        const rnd = () => ((st = (Math.imul(st, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
        // (weights whose blocks reach both ends, n = 0 and n = 15: values -8 and 7 times the scale)
        const w = Float32Array.from({ length: rows * cols }, (_, i) => (i % 89 === 0 ? (i % 2 ? 8 : -8) : rnd() * (rnd() > 0.9 ? 4 : 1)));
        const N = 4;
        // (inputs whose blocks reach |q| = 32639)
        const x = Float32Array.from({ length: N * cols }, (_, i) => (i % 97 === 0 ? (i % 2 ? 1 : -1) * 40 : rnd() * (rnd() > 0.95 ? 30 : 1)) * xScale);
        const m = quantizeMatrix(GGMLType.Q4_0 as QuantType, w, rows, cols);
        const q = new Int16Array(N * cols), ds = new Float32Array((N * cols) / 16);
        quantizeActivations(x, N, cols, 32, q, ds, 16);
        // (qrows16p's order, written here from its definition: per 32 values 0, 2, ..., 14, 1, ..., 15, 16, ..., 30, 17, ..., 31)
        const order = [0, 1, 2, 3].flatMap((g) => Array.from({ length: 8 }, (_, i) => 16 * (g >> 1) + 2 * i + (g & 1)));
        const permuted = Int16Array.from(q, (_, i) => q[32 * (i >> 5) + order[i & 31]!]!);
        let top = KERNEL_MEMORY_START;
        const place = (n: number) => { const at = Math.ceil(top / 16) * 16; top = at + n; return at; };
        const wp = place(m.data.length); new Uint8Array(memory.buffer).set(m.data, wp);
        const pp = place(N * cols * 2); new Int16Array(memory.buffer, pp, N * cols).set(permuted);
        const dp = place(ds.byteLength); new Float32Array(memory.buffer, dp, ds.length).set(ds);
        const op1 = place(rows * 4), op4 = place(N * rows * 4);
        const args = [rowBytes(GGMLType.Q4_0, cols), blocks, 0, rows, cols * 2, (cols / 32) * 8, rows * 4];
        k.q4_0_p16!(wp, 0, pp, dp, op1, ...args);
        k.q4_0x4_p16!(wp, 0, pp, dp, op4, ...args);
        expectInt16Product(new Float32Array(memory.buffer, op1, rows), new Float32Array(memory.buffer, op4, N * rows), dequantizeMatrix(m), q, ds, rows, cols, N);
      }), { numRuns: 100 });
    }
  });

  it('"_dequant" kernels write each row as dequantizeMatrix does, for every format, leaving other rows alone', async () => {
    const { matmulWasmBytes, prepareKernelMemory, KERNEL_MEMORY_START } = await import('../src/backend/matmul-wasm.js');
    const { fillWasmSide, wasmSideLength } = await import('../src/backend/quant-wasm.js');
    const { rowBytes } = await import('../src/quant/formats.js');
    const memory = new WebAssembly.Memory({ initial: 64, maximum: 1024, shared: true });
    prepareKernelMemory(memory);
    const k = new WebAssembly.Instance(new WebAssembly.Module(matmulWasmBytes()), { env: { memory } }).exports as unknown as Record<string, (...a: number[]) => void>;
    const types = Object.keys(QUANT_FORMATS).map(Number) as QuantType[];
    fc.assert(fc.property(fc.constantFrom(...types), fc.integer({ min: 2, max: 9 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 2 ** 31 }), (type, rows, blocks256, seed) => {
      const cols = 256 * blocks256;
      let st = seed;
      const rnd = () => ((st = (Math.imul(st, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
      const m = quantizeMatrix(type, Float32Array.from({ length: rows * cols }, () => rnd() * (rnd() > 0.9 ? 4 : 1)), rows, cols);
      const bytes = new Uint8Array(memory.buffer);
      let top = KERNEL_MEMORY_START;
      const place = (n: number) => { const at = Math.ceil(top / 16) * 16; top = at + n; return at; };
      const wp = place(m.data.length); bytes.set(m.data, wp);
      const side = new Float32Array(wasmSideLength(m)); fillWasmSide(m, side);
      const sp = place(side.byteLength); new Float32Array(memory.buffer, sp, side.length).set(side);
      const op = place(rows * cols * 4);
      const got = new Float32Array(memory.buffer, op, rows * cols).fill(NaN);
      const name = { [GGMLType.Q8_0]: 'q8_0', [GGMLType.Q4_0]: 'q4_0', [GGMLType.Q4_1]: 'q4_1', [GGMLType.Q5_0]: 'q5_0', [GGMLType.Q5_1]: 'q5_1', [GGMLType.Q4_K]: 'q4_k', [GGMLType.Q5_K]: 'q5_k', [GGMLType.Q6_K]: 'q6_k' }[type];
      k[`${name}_dequant`]!(wp, sp, op, 0, 0, rowBytes(type, cols), cols / QUANT_FORMATS[type].blockSize, 1, rows, cols * 4, 0, 0);
      const ref = dequantizeMatrix(m);
      expect(got.subarray(0, cols).every(Number.isNaN)).toBe(true); // row 0 was not asked for
      for (let r = 1; r < rows; r++) {
        const row = ref.subarray(r * cols, (r + 1) * cols);
        const max = row.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
        // scale * q rounded once to f32, and Q4_K's "minus min" once more; |min| <= the sub-block's
        // largest magnitude (it is the value of q = 0), so each rounding is within 2^-24 * 2 max.
        for (let c = 0; c < cols; c++) expect(Math.abs(got[r * cols + c]! - row[c]!)).toBeLessThanOrEqual(2 ** -22 * max);
      }
    }), { numRuns: 100 });
  });

  it('quantizeActivations rounds like ggml: |q| <= 127, |x - d q| <= d/2 (plus the f16 rounding of Q8_0 scales), d * sum q per 32', async () => {
    const { quantizeActivations } = await import('../src/backend/quant-wasm.js');
    const { f16ToF32, f32ToF16 } = await import('../src/base/tensor.js');
    // A hand-worked Q8_0 block: max|x| = 1, so q = round-to-even(127 x): -63.5 -> -64, 31.75 -> 32, 0.5/127 * 127 = 0.5 -> 0.
    const x = new Float32Array(32);
    x.set([1, -0.5, 0.25, 0.5 / 127]);
    const q = new Int16Array(32), ds = new Float32Array(2);
    quantizeActivations(x, 1, 32, 32, q, ds);
    expect(Array.from(q.subarray(0, 5))).toEqual([127, -64, 32, 0, 0]);
    expect(ds[0]).toBe(f16ToF32(f32ToF16(1 / 127)));
    expect(ds[1]).toBe(Math.fround(ds[0]! * (127 - 64 + 32)));
    fc.assert(fc.property(fc.constantFrom(32 as const, 256 as const), fc.float32Array({ minLength: 512, maxLength: 512, noNaN: true, noDefaultInfinity: true, min: -1e4, max: 1e4 }), (block, v) => {
      const n = 2, cols = 256;
      const q = new Int16Array(n * cols), ds = new Float32Array((n * cols) / 16);
      quantizeActivations(v, n, cols, block, q, ds);
      for (let g = 0; g < (n * cols) / 32; g++) {
        const d = ds[2 * g]!;
        const b0 = Math.floor((32 * g) / block) * block;
        const exact = v.subarray(b0, b0 + block).reduce((m, y) => Math.max(m, Math.abs(y)), 0) / 127; // d before rounding
        let sum = 0;
        for (let j = 32 * g; j < 32 * g + 32; j++) {
          expect(Math.abs(q[j]!)).toBeLessThanOrEqual(127);
          // d/2 from rounding x / d, with f32 rounding of x / d and of d (2^-23 relative, |q| <= 127);
          // Q8_0 then multiplies q by d rounded to f16: relative 2^-11, or 2^-25 absolute when d is
          // an f16 subnormal (ggml's blocks of tiny values go to zero this way), times |q| <= 127.
          const f16Error = block === 32 ? 127 * Math.max(exact * 2 ** -11, 2 ** -25) : 0;
          expect(Math.abs(v[j]! - d * q[j]!)).toBeLessThanOrEqual(exact * (0.5 + 127 * 2 ** -22) + f16Error);
          sum += q[j]!;
        }
        expect(ds[2 * g + 1]).toBe(Math.fround(d * sum));
      }
    }), { numRuns: 200 });
  });
});

describe('16-bit inputs (activations int16)', () => {
  it('quantizeActivations(bits 16): d = fr(max|x| / 32639), |q| <= 32639 (Q16_MAX, two signed bytes), |x - d q| <= d (1/2 + 2^-9), d * sum q per 32; blocks of zeros, f32-subnormal and zero scales give no NaN', async () => {
    const { quantizeActivations } = await import('../src/backend/quant-wasm.js');
    fc.assert(fc.property(fc.float32Array({ minLength: 256, maxLength: 256, noNaN: true, noDefaultInfinity: true, min: -1e4, max: 1e4 }), fc.constantFrom(1, 1e-20, 1e-36, 1e-41), (v0, s) => {
      const v = v0.map((y) => Math.fround(y * s));
      v.fill(0, 0, 32); // a block of zeros
      const q = new Int16Array(256), ds = new Float32Array(16);
      quantizeActivations(v, 1, 256, 32, q, ds, 16);
      for (let g = 0; g < 8; g++) {
        const amax = v.subarray(32 * g, 32 * g + 32).reduce((m, y) => Math.max(m, Math.abs(y)), 0);
        const d = ds[2 * g]!;
        expect(d).toBe(Math.fround(amax / 32639));
        let sum = 0;
        for (let j = 32 * g; j < 32 * g + 32; j++) {
          expect(Math.abs(q[j]!)).toBeLessThanOrEqual(32639);
          // q = round(fr(x / d)): half from rounding, fr's 2^-24 relative of |x / d| <= 32768 is 2^-9.
          // d an f32 subnormal (amax under 32639 * 2^-126) is rounded by up to half its ulp 2^-149, so
          // x / d may pass 32639 and be clamped: amax - 32639 d <= 32639 * 2^-150 more; where d is 0
          // (amax under 32639 * 2^-150) q is 0: the values themselves. Either way under 2^-134 absolute.
          const err = Math.abs(v[j]! - d * q[j]!);
          if (d >= 2 ** -126) expect(err).toBeLessThanOrEqual(d * (0.5 + 2 ** -9));
          else expect(err).toBeLessThanOrEqual(d === 0 ? amax : d * (0.5 + 2 ** -9) + 32639 * 2 ** -150);
          sum += q[j]!;
        }
        expect(ds[2 * g + 1]).toBe(Math.fround(d * sum));
        expect(Number.isNaN(ds[2 * g + 1])).toBe(false);
      }
    }), { numRuns: 200 });
  });

  it('refuses a 16-bit form it cannot hold: blocks of 256, or an Int8Array', async () => {
    const { quantizeActivations } = await import('../src/backend/quant-wasm.js');
    const x = new Float32Array(256);
    expect(() => quantizeActivations(x, 1, 256, 256, new Int16Array(256), new Float32Array(16), 16)).toThrow(/per 32 values into an Int16Array/);
    expect(() => quantizeActivations(x, 1, 256, 32, new Int8Array(256), new Float32Array(16), 16)).toThrow(/per 32 values into an Int16Array/);
  });
});

/** Sums of each 32 inputs (what the Q4_1 / Q5_1 kernels read for their offset term), in float64 then rounded. */
function fillXSumsRef(x: Float32Array, out: Float32Array): void {
  for (let j = 0; j < out.length; j++) out[j] = x.subarray(32 * j, 32 * j + 32).reduce((a, v) => a + v, 0);
}

describe('firstNonFinite (the load-time check of every block scale)', () => {
  it('finds the first block, in block order, with a NaN or infinite f16 scale, in every format', () => {
    const types = Object.keys(QUANT_FORMATS).map(Number) as QuantType[];
    fc.assert(
      fc.property(fc.constantFrom(...types), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 3 }), fc.array(fc.record({ at: fc.nat(), scale: fc.nat(), bits: fc.constantFrom(0x7c00, 0x7e00, 0xfc00, 0x7c01) }), { maxLength: 3 }), (type, rows, blocksPerRow, poison) => {
        const f = QUANT_FORMATS[type];
        const cols = blocksPerRow * f.blockSize;
        const m = quantizeMatrix(type, Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i) * 0.1), rows, cols);
        const blocks = rows * blocksPerRow;
        for (const p of poison) {
          const o = (p.at % blocks) * f.blockBytes + f.scaleOffsets[p.scale % f.scaleOffsets.length]!;
          [m.data[o], m.data[o + 1]] = [p.bits & 0xff, p.bits >> 8];
        }
        // (the reference: every block's every scale, in order)
        let want: { row: number; block: number } | undefined;
        for (let b = 0; b < blocks && !want; b++)
          for (const o of f.scaleOffsets) if (!Number.isFinite(f16At(m.data, b * f.blockBytes + o))) want = { row: Math.floor(b / blocksPerRow), block: b % blocksPerRow };
        expect(firstNonFinite(m)).toEqual(want);
      }),
    );
  });
});
