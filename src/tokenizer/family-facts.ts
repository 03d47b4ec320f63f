/**
 * What the loaders need to know about a model family, as plain data: how to recognise its files,
 * which special tokens its vocabulary appends, how its RoPE stretches. Each file in families/
 * fills one in; the API layer passes the list down, so tokenizer/ and model/ never import families/.
 */
import { ChatGLMError } from '../errors.js';

/** What a Hugging Face model directory shows, read once and handed to every family's detector. */
export interface ModelDirFiles {
  /** config.json as parsed ({} when absent or broken: the model loader reports that). */
  config: Record<string, unknown>;
  /** tokenizer_config.json, as text, when present. */
  tokenizerConfig?: string;
  /** tokenization_chatglm.py, as text, when present. */
  tokenizationPy?: string;
  /** tokenizer.model is a tiktoken rank file (not a SentencePiece protobuf). */
  tiktoken: boolean;
}

/** The tokenizer.ggml.* fields a GGUF detector looks at. */
export interface GgufVocabularyFacts {
  /** tokenizer.ggml.model: "llama" (SentencePiece) or "gpt2" (byte-level BPE). */
  model: string;
  /** tokenizer.ggml.pre */
  pre?: string;
  tokens: readonly string[];
}

export interface FamilyFacts {
  /** The family's name: the `family` option, `--format`, ChatFormat.name. */
  readonly name: string;
  /** The name people write (in messages). */
  readonly displayName: string;
  /** The vocabulary file it ships: SentencePiece tokenizer.model or a tiktoken file (GGUF: llama / gpt2). */
  readonly vocabulary: 'sentencepiece' | 'tiktoken';
  /** Special tokens appended after a SentencePiece vocabulary (what tokenization_chatglm.py adds). */
  readonly sentencePieceSpecials?: readonly string[];
  /**
   * An appended special decodes to its own name (ChatGLM3's convert_id_to_token) rather than to
   * nothing (ChatGLM2's), as the Hugging Face tokenizer does.
   */
  readonly specialsDecodeAsNames?: boolean;
  /**
   * A tiktoken family's vocabulary beyond the rank file: its special tokens in id order (right
   * after the last rank), its pre-tokenizer, and the tokenizer.ggml.pre names a GGUF file gives it.
   */
  readonly tiktoken?: { readonly specials: readonly string[]; readonly pattern: RegExp; readonly ggufPre: readonly string[] };
  /** How RoPE is stretched for long-context variants (model/config's RopeScaling). */
  readonly ropeScaling: 'base' | 'position';
  /**
   * Tokens that also end a turn besides the one eos id a GGUF file stores (the HF config lists
   * them in eos_token_id; llama.cpp keeps only one).
   */
  readonly endOfTurnTokens?: readonly string[];
  /**
   * How the family is recognised. Families are asked newest first (the reverse of the order they
   * are registered in), because a newer family's files also carry an older one's markers.
   */
  readonly detect: {
    /** config.json alone shows the family (a vocabulary size, a telling name). */
    config(config: Record<string, unknown>): boolean;
    /** The directory's tokenizer files show it; asked only when no family claimed the config. */
    files(dir: ModelDirFiles): boolean;
    /** A GGUF file's vocabulary (undefined when it carries none) and embedding rows show it. */
    gguf(vocab: GgufVocabularyFacts | undefined, vocabRows: number): boolean;
  };
}

function newestFirst<F extends FamilyFacts>(families: readonly F[]): F[] {
  return [...families].reverse();
}

/** The family config.json alone shows, if any. */
export function familyFromConfig<F extends FamilyFacts>(families: readonly F[], config: Record<string, unknown>): F | undefined {
  return newestFirst(families).find((f) => f.detect.config(config));
}

/** The family of a model directory: config.json first, then its tokenizer files. */
export function familyFromFiles<F extends FamilyFacts>(families: readonly F[], dir: ModelDirFiles): F {
  const found = familyFromConfig(families, dir.config) ?? newestFirst(families).find((f) => f.detect.files(dir));
  if (found === undefined) throw noFamily(families, 'the model directory');
  return found;
}

/** The family a GGUF file's vocabulary shows. */
export function familyFromGguf<F extends FamilyFacts>(families: readonly F[], vocab: GgufVocabularyFacts | undefined, vocabRows: number): F {
  const found = newestFirst(families).find((f) => f.detect.gguf(vocab, vocabRows));
  if (found === undefined) throw noFamily(families, 'the GGUF file');
  return found;
}

/** The family called `name`; a ChatGLMError naming the known ones otherwise. */
export function familyNamed<F extends FamilyFacts>(families: readonly F[], name: string): F {
  const found = families.find((f) => f.name === name);
  if (found === undefined) {
    throw new ChatGLMError('BAD_ARGUMENT', `unknown chat format "${name}" (use one of: ${families.map((f) => f.name).join(', ')})`);
  }
  return found;
}

function noFamily(families: readonly FamilyFacts[], what: string): ChatGLMError {
  return new ChatGLMError('UNSUPPORTED', `${what} matches none of the model families this engine knows (${families.map((f) => f.name).join(', ')})`);
}
