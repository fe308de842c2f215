// Shared test helpers: where the reference data lives, and float64 reference implementations.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** ../shared (or $POCKETLM_SHARED): read-only reference data, see ../shared/README.md. */
export const SHARED = resolve(process.env.POCKETLM_SHARED ?? join(ROOT, '..', 'shared'));
export const hasShared = existsSync(join(SHARED, 'weights', 'stories260K', 'stories260K.bin'));

if (!hasShared) {
  const msg = `reference data not found at ${SHARED} (set POCKETLM_SHARED): tests that need it are skipped`;
  // In CI the data must be there: fail loudly rather than pass by skipping.
  if (process.env.CI) throw new Error(msg);
  console.warn(msg);
}

export const sharedPath = (...p: string[]) => join(SHARED, ...p);
export const readShared = (...p: string[]) => new Uint8Array(readFileSync(sharedPath(...p)));

export const STORIES_BIN = sharedPath('weights', 'stories260K', 'stories260K.bin');
export const STORIES_TOK = sharedPath('weights', 'stories260K', 'tok512.bin');
export const TINY_GGUF = sharedPath('weights', 'llama-2-tiny-random', 'llama-2-tiny-random.gguf');

export interface GreedyReference {
  generated_ids: number[];
  text: string;
  logits_first16_at_pos0_1_2: number[][];
}
export const storiesReference = (): GreedyReference => JSON.parse(readFileSync(sharedPath('weights', 'stories260K', 'reference-greedy.json'), 'utf8'));

/** Float32 array from doubles (what the engine's f32 buffers hold). */
export const f32 = (xs: number[]) => Float32Array.from(xs);

/** f32-representable finite floats in [-range, range], for fast-check. */
export const smallFloat = (fc: typeof import('fast-check'), range = 4) =>
  fc.float({ min: Math.fround(-range), max: Math.fround(range), noNaN: true, noDefaultInfinity: true });
