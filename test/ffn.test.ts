import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { activate, erf, gated, gelu, softcap, swiglu } from '../src/stages/ffn.js';
import { smallFloat } from './helpers.js';

// Each output is computed in float64 and rounded once to f32: within 2^-24 relative (1e-6 with margin).
describe('swiglu', () => {
  it('gate = silu(gate) * up, elementwise, as in float64', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(smallFloat(fc, 20), smallFloat(fc, 20)), { minLength: 1, maxLength: 200 }), (pairs) => {
        const g = Float32Array.from(pairs.map((p) => p[0]));
        const u = Float32Array.from(pairs.map((p) => p[1]));
        const ref = pairs.map(([a, b]) => (Math.fround(a) / (1 + Math.exp(-Math.fround(a)))) * Math.fround(b));
        swiglu(g, u);
        ref.forEach((r, i) => expect(Math.abs(g[i]! - r)).toBeLessThanOrEqual(1e-6 * Math.abs(r) + 1e-38));
      }),
      { numRuns: 200 },
    );
  });

  it('gelu (tanh approximation) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), as in float64', () => {
    fc.assert(
      fc.property(fc.array(smallFloat(fc, 8), { minLength: 1, maxLength: 200 }), (xs) => {
        const x = Float32Array.from(xs);
        const ref = Array.from(x, (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))));
        gelu(x);
        // float64 then one rounding to f32 (2^-24 relative); the x / (1 + e^-2z) form differs from
        // the tanh form by float64 noise only, except that for x < -5 the tanh form cancels (1 + tanh
        // loses digits), so there the reference itself is only good to ~1e-16 absolute.
        ref.forEach((r, i) => expect(Math.abs(x[i]! - r)).toBeLessThanOrEqual(1e-6 * Math.abs(r) + 1e-14));
      }),
      { numRuns: 200 },
    );
  });
});



// erf, independently: 2/sqrt(pi) times the integral of e^(-t^2) from a to b by composite Simpson's rule
// with 4000 intervals (error <= (b - a) h^4 max|f''''| / 180 ~ 1e-13 relative for spans up to 8).
function gaussIntegral(a: number, b: number): number {
  const n = 4000, h = (b - a) / n;
  let s = Math.exp(-a * a) + Math.exp(-b * b);
  for (let i = 1; i < n; i++) s += (i % 2 ? 4 : 2) * Math.exp(-((a + i * h) ** 2));
  return ((s * h) / 3) * (2 / Math.sqrt(Math.PI));
}
const erfSimpson = (x: number) => gaussIntegral(0, x);
/** 1 + erf(x) without cancellation for negative x: erfc(-x), the tail integral from -x to -x + 8. */
const onePlusErf = (x: number) => (x >= 0 ? 1 + erfSimpson(x) : gaussIntegral(-x, -x + 8));

describe('erf and the other activations', () => {
  it('erf agrees with numerical integration to 1e-12 over [-7, 7]', () => {
    for (let x = -7; x <= 7; x += 0.0625) expect(Math.abs(erf(x) - erfSimpson(x))).toBeLessThanOrEqual(1e-12);
    expect(erf(0)).toBe(0);
    expect(erf(Infinity)).toBe(1);
    expect(erf(-Infinity)).toBe(-1);
    expect(Number.isNaN(erf(NaN))).toBe(true);
  });

  // Each output is computed in float64 and rounded once to f32 (2^-24 relative; 1e-6 with margin).
  it('gelu_erf = 0.5 x (1 + erf(x / sqrt 2)), relu = max(x, 0), GeGLU = gelu(gate) * up, softcap = c tanh(x / c)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(smallFloat(fc, 8), smallFloat(fc, 8)), { minLength: 1, maxLength: 100 }), fc.double({ min: 0.5, max: 50, noNaN: true }), (pairs, cap) => {
        const xs = pairs.map((p) => Math.fround(p[0])), us = pairs.map((p) => Math.fround(p[1]));
        const close = (got: Float32Array, ref: number[]) => ref.forEach((r, i) => expect(Math.abs(got[i]! - r)).toBeLessThanOrEqual(1e-6 * Math.abs(r) + 1e-38));
        const e = Float32Array.from(xs);
        activate(e, 'gelu_erf');
        close(e, xs.map((v) => 0.5 * v * onePlusErf(v / Math.SQRT2)));
        const r = Float32Array.from(xs);
        activate(r, 'relu');
        close(r, xs.map((v) => Math.max(v, 0)));
        const g = Float32Array.from(xs);
        gated(g, Float32Array.from(us), 'gelu');
        // The reference's tanh form cancels for x < -5 (1 + tanh): good to ~1e-16 absolute there, times |up|.
        const geglu = xs.map((v, i) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))) * us[i]!);
        geglu.forEach((r, i) => expect(Math.abs(g[i]! - r)).toBeLessThanOrEqual(1e-6 * Math.abs(r) + 1e-14 * Math.abs(us[i]!) + 1e-38));
        const c = Float32Array.from(xs);
        softcap(c, cap);
        close(c, xs.map((v) => cap * Math.tanh(v / cap)));
      }),
      { numRuns: 200 },
    );
  });
});
