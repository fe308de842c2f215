// The contract every tokenization algorithm implements (spm.ts, bpe.ts, wpm.ts); tokenizer.ts picks
// one per vocabulary kind. A leaf module, so that the algorithms and tokenizer.ts do not import each other.

/** One tokenization algorithm over plain text (special tokens already taken out). */
export interface TokenizerAlgorithm {
  /** Tokenize one run of text; `afterSpecial`: it starts the text or follows a special token. */
  encode(text: string, out: number[], afterSpecial: boolean): void;
  /** The bytes a normal, byte or user-defined token stands for. */
  tokenBytes(id: number): Uint8Array;
  /** Does decoding drop the space that encoding puts before the first word? */
  readonly stripsLeadingSpace: boolean;
}
