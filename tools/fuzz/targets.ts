/**
 * What the fuzzer runs on each input: the same public paths a user's file or a model's reply goes
 * through, from parsing to use (a tokenizer encodes and decodes, a checkpoint loads into the
 * reference backend and generates two tokens, messages render into a prompt, a reply parses).
 * A target returns when the input was accepted and throws otherwise; the runner classifies the
 * throw (a ChatGLMError is a clean rejection, anything else a finding).
 */
import { writeFile } from 'node:fs/promises';
import { ChatGLMError } from '../../src/errors.js';
import { createReferenceBackend } from '../../src/backend/reference/index.js';
import { chatglm3 } from '../../src/chat/chatglm3.js';
import { glm4 } from '../../src/chat/glm4.js';
import { fitConversation } from '../../src/chat/fit.js';
import { parseChatMessages } from '../../src/chat/messages.js';
import { fencedCode } from '../../src/chat/reply.js';
import { openGgufCheckpoint } from '../../src/formats/gguf-checkpoint.js';
import { openSafetensors } from '../../src/formats/safetensors.js';
import type { TensorSource } from '../../src/formats/tensor-source.js';
import { openTorchBin } from '../../src/formats/torch-bin.js';
import { generateAll } from '../../src/generate/generator.js';
import { parseGLMConfig, type GLMConfig } from '../../src/model/config.js';
import { GLMModel } from '../../src/model/glm.js';
import { loadWeights, validateTensors } from '../../src/model/load.js';
import { tokenizerFromGguf } from '../../src/tokenizer/from-gguf.js';
import { ChatGLMTokenizer } from '../../src/tokenizer/chatglm.js';
import { SentencePieceTokenizer } from '../../src/tokenizer/sentencepiece.js';
import { TikTokenTokenizer, parseTikTokenRanks } from '../../src/tokenizer/tiktoken.js';
import type { Tokenizer } from '../../src/tokenizer/types.js';
import { configSeed, sentencePieceSeed, type SeedFormat } from './seeds.js';
import { FAMILIES, getFamily } from '../../src/families/registry.js';

const SAMPLE_TEXT = 'hello world  你好 xxxx <|assistant|> tab\there\n\n' + 'ab'.repeat(200) + ' 12345 ünïcödé \u2581';

function exercise(tok: Tokenizer): void {
  const ids = tok.encode(SAMPLE_TEXT);
  tok.decode(ids);
  const d = tok.createStreamDecoder();
  for (const id of ids.slice(0, 64)) d.push(id);
  d.flush();
  for (const name of ['<|user|>', '<|assistant|>', '[gMASK]']) tok.specialId(name);
}

let cachedTokenizer: ChatGLMTokenizer | undefined;
/** The seed tokenizer with ChatGLM3's specials (for rendering messages). */
function seedTokenizer(): ChatGLMTokenizer {
  cachedTokenizer ??= new ChatGLMTokenizer(SentencePieceTokenizer.fromBytes(sentencePieceSeed(), 'seed tokenizer.model'), getFamily('chatglm3'));
  return cachedTokenizer;
}

async function loadAndGenerate(source: TensorSource, config: GLMConfig): Promise<void> {
  validateTensors(source, config);
  const backend = createReferenceBackend();
  const weights = await loadWeights(source, config, backend);
  const model = new GLMModel(config, weights, backend);
  await generateAll(model, [1, 5, 7], { greedy: true, maxNewTokens: 2, contextLength: 16 });
}

/** Runs one input of `format`; `file` is a scratch path for readers that need one. */
export async function runTarget(format: SeedFormat, data: Uint8Array, file: string): Promise<void> {
  const text = (): string => Buffer.from(data).toString('utf8');
  switch (format) {
    case 'gguf': {
      await writeFile(file, data);
      const ck = await openGgufCheckpoint(file);
      try {
        const { tokenizer } = tokenizerFromGguf(ck.tokenizer, { file, families: FAMILIES });
        exercise(tokenizer);
        const config = parseGLMConfig(ck.config, file);
        await loadAndGenerate(ck.source, config);
      } finally {
        await ck.source.close();
      }
      return;
    }
    case 'safetensors':
    case 'torch': {
      await writeFile(file, data);
      const source = format === 'safetensors' ? await openSafetensors(file) : await openTorchBin(file);
      try {
        for (const t of source.list()) await source.read(t.name);
        // A file of other tensors (the hand-assembled seed) is only read; a model is also loaded and run.
        if (source.has('transformer.embedding.word_embeddings.weight')) await loadAndGenerate(source, parseGLMConfig(configSeed(), 'config.json'));
      } finally {
        await source.close();
      }
      return;
    }
    case 'sentencepiece':
      exercise(SentencePieceTokenizer.fromBytes(data, file));
      return;
    case 'tiktoken':
      exercise(new TikTokenTokenizer(parseTikTokenRanks(text(), file), { file }));
      return;
    case 'config':
      parseGLMConfig(parseJson(text(), file), file);
      return;
    case 'messages': {
      const messages = parseChatMessages(parseJson(text(), file), file);
      const tok = seedTokenizer();
      for (const format of [chatglm3, glm4]) format.render(messages);
      fitConversation(chatglm3, tok, messages, 8, 4096);
      return;
    }
    case 'toolcall': {
      const reply = text();
      const segments = reply.split('<|assistant|>');
      for (const tools of [true, false]) {
        for (const parsed of [chatglm3.parse(segments, { tools }), glm4.parse(segments, { tools })]) {
          if (parsed.type === 'tool_call') checkPlainArguments(parsed.arguments);
        }
      }
      fencedCode(reply);
      return;
    }
  }
}

/** JSON.parse with the clean error every caller in the project gives for text that is not JSON. */
function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ChatGLMError('BAD_FORMAT', `${file}: not valid JSON (${(err as Error).message})`, { file });
  }
}

/**
 * Parsed tool arguments must be plain data: ordinary prototypes all the way down and no key that
 * reaches prototype machinery. A violation is thrown as a plain Error, which the runner reports.
 */
function checkPlainArguments(root: unknown): void {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const v = stack.pop();
    if (v === null || typeof v !== 'object') continue;
    const proto: unknown = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== Array.prototype) throw new Error('invariant: parsed tool arguments hold an object with a foreign prototype');
    for (const [k, x] of Object.entries(v)) {
      if (k === '__proto__' || k === 'constructor' || k === 'prototype') throw new Error(`invariant: parsed tool arguments hold the key ${k}`);
      stack.push(x);
    }
  }
}
