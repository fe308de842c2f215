// Token embedding: copy row `token` of the [vocab][dim] table into out at `offset`.

export function embed(out: Float32Array, offset: number, table: Float32Array, token: number, dim: number): void {
  out.set(table.subarray(token * dim, (token + 1) * dim), offset);
}
