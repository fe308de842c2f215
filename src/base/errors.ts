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

/** The GPU went away (device lost, destroyed, out of memory): the caller may continue on the CPU. */
export class DeviceLostError extends PocketLMError {}

/**
 * A model's activations became NaN or infinite (its weights are finite, or loading would have said
 * so): numbers overflowed f32 somewhere in the forward pass. Continuing would only produce garbage.
 */
export class NonFiniteError extends PocketLMError {}
