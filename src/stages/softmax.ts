// Numerically stable softmax over x[offset .. offset+n), in place: subtract the max before exp.

export function softmax(x: Float32Array | Float64Array, offset = 0, n = x.length - offset): void {
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (x[offset + i]! > max) max = x[offset + i]!;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const e = Math.exp(x[offset + i]! - max);
    x[offset + i] = e;
    sum += e;
  }
  for (let i = 0; i < n; i++) x[offset + i] = x[offset + i]! / sum;
}
