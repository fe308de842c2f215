// Typed errors. Every error a user can provoke with bad input is one of these, and its message says
// which file (or input) was wrong, what was wrong, and where it helps, how to fix it.

/** Base class of every error pocketlm throws on purpose. */
export class PocketLMError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A model or tokenizer file is malformed: truncated, wrong magic, bad offsets, wrong shapes... */
export class ModelFormatError extends PocketLMError {
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
  }
}

/** The file is well-formed but asks for something pocketlm does not implement (yet). */
export class UnsupportedModelError extends PocketLMError {
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
  }
}

/** A caller passed an invalid argument: a prompt longer than the context, a bad option value... */
export class InvalidInputError extends PocketLMError {}

/** Downloading or verifying a model file failed. */
export class DownloadError extends PocketLMError {
  constructor(
    readonly url: string,
    readonly problem: string,
  ) {
    super(`${url}: ${problem}`);
  }
}

/**
 * A buffer pocketlm needs does not fit where it must live: the CPU's WebAssembly memory (4 GiB at
 * most), the JavaScript heap, or one buffer of the WebGPU adapter. The message says what was asked
 * for and what to make smaller (the context length, or the model).
 */
export class OutOfMemoryError extends PocketLMError {}

/** Bytes as people read them: 1.5 GB, 12.0 MB, 512 B. */
export function formatBytes(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(1)} GB` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} kB` : `${n} B`;
}

/** make(), with a failed allocation (V8's RangeError) reported as an OutOfMemoryError of `bytes`. */
export function allocating<T>(bytes: number, make: () => T): T {
  try {
    return make();
  } catch (e) {
    if (e instanceof RangeError) throw new OutOfMemoryError(`could not allocate ${formatBytes(bytes)} (${e.message})`);
    throw e;
  }
}

/** The GPU went away (device lost, destroyed, out of memory): the caller may continue on the CPU. */
export class DeviceLostError extends PocketLMError {}

/**
 * A model's activations became NaN or infinite (its weights are finite, or loading would have said
 * so): numbers overflowed f32 somewhere in the forward pass. Continuing would only produce garbage.
 */
export class NonFiniteError extends PocketLMError {}
