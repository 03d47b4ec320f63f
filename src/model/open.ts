/**
 * Opening a model from disk: a Hugging Face model directory (config.json + safetensors or .bin,
 * single or sharded) or a GGUF file. Validates the checkpoint against its config before loading
 * tensor by tensor into the chosen backend.
 */
import { checkKVType, isKVType, type KVType } from '../backend/kv-type.js';
import { ChatGLMError } from '../errors.js';
import type { Backend } from '../backend/types.js';
import { createBackend, type BackendName } from '../backend/select.js';
import type { TensorInfo, TensorSource } from '../formats/tensor-source.js';
import { openHFCheckpoint, type WeightsLayout } from '../formats/hf-checkpoint.js';
import { openGgufCheckpoint, type GgufTokenizerInfo } from '../formats/gguf-checkpoint.js';
import { metaString } from '../formats/gguf.js';
import { quantizeRows } from '../numeric/ggml-quants.js';
import { detectModelFamily } from '../tokenizer/load.js';
import { familyFromGguf, familyNamed, type FamilyFacts } from '../tokenizer/family-facts.js';
import { parseGLMConfig, type GLMConfig, type RopeScaling } from './config.js';
import { GLMModel } from './glm.js';
import { resolveModelRef } from '../hub/cache.js';
import { loadWeights, validateTensors, type LoadProgress } from './load.js';
import { checkModelPath } from './check-path.js';

export type QuantizeType = 'q8_0' | 'q4_0';

export interface OpenModelOptions {
  /** A backend instance, or its name (default 'auto'). */
  backend?: Backend | BackendName;
  /** Quantize F32/F16/BF16 matrices while loading (GGUF files keep their own types). */
  quantize?: QuantizeType;
  onProgress?: (p: LoadProgress) => void;
  /** The families a checkpoint may belong to, each with its detector (the API layer passes families/registry's). */
  families: readonly FamilyFacts[];
  /** Name of the family to use instead of the one detected from the checkpoint. */
  family?: string;
  /** Overrides how rope_ratio applies (default: from the family / GGUF metadata). */
  ropeScaling?: RopeScaling;
  /** Threads of the native backend created here (default: all cores); ignored with a backend instance. */
  threads?: number;
  /** Element type of the model's KV caches (default 'f16'; 'q8_0' about halves their memory). */
  kvType?: KVType;
}

/** A checkpoint opened but not loaded: what `info` shows, and what `openModel` loads. */
export interface CheckpointHandle {
  path: string;
  format: 'hf' | 'gguf';
  /** HF weight layout (safetensors / sharded / bin / sharded bin). */
  layout?: WeightsLayout;
  weightFiles: string[];
  config: GLMConfig;
  /** The family's name: detected from the checkpoint, or the one asked for. */
  family: string;
  source: TensorSource;
  /** tokenizer.model of an HF directory, when present. */
  tokenizerFile?: string;
  /** The vocabulary embedded in a GGUF file, when present. */
  ggufTokenizer?: GgufTokenizerInfo;
}

export interface OpenedModel extends Omit<CheckpointHandle, 'source'> {
  model: GLMModel;
  backend: Backend;
}


/** Opens a model directory or .gguf file and validates its tensors; reads no weights yet. */
export async function openCheckpoint(modelPath: string, options: Pick<OpenModelOptions, 'families' | 'family' | 'ropeScaling'>): Promise<CheckpointHandle> {
  // A path, or a model name (OWNER/NAME[@rev]) found in the Hugging Face cache.
  modelPath = resolveModelRef(modelPath);
  const asked = options.family !== undefined ? familyNamed(options.families, options.family) : undefined;
  const isDir = (await checkModelPath(modelPath)) === 'hf';
  let handle: CheckpointHandle;
  if (isDir) {
    const ck = await openHFCheckpoint(modelPath);
    try {
      const family = asked ?? (await detectModelFamily(modelPath, ck.config, options.families));
      const config = parseGLMConfig(ck.config, `${modelPath}/config.json`, { ropeScaling: options.ropeScaling ?? family.ropeScaling });
      handle = { path: modelPath, format: 'hf', layout: ck.layout, weightFiles: ck.weightFiles, config, family: family.name, source: ck.source };
      if (ck.tokenizerFile !== undefined) handle.tokenizerFile = ck.tokenizerFile;
    } catch (err) {
      await ck.source.close();
      throw err;
    }
  } else {
    const ck = await openGgufCheckpoint(modelPath);
    try {
      const embd = ck.header.tensors.find((t) => t.name === 'token_embd.weight');
      // The stop tokens follow the file's own vocabulary, whatever family its chat format is asked to be.
      const shown = familyFromGguf(options.families, ck.tokenizer, embd?.ne[1] ?? 0);
      const family = asked ?? shown;
      // GGUF spells ChatGLM2-32k's position interpolation as linear RoPE scaling
      const linear = metaString(ck.header, 'chatglm.rope.scaling.type') === 'linear';
      const config = parseGLMConfig(withEndOfTurn(ck.config, ck.tokenizer, shown), modelPath, { ropeScaling: options.ropeScaling ?? (linear ? 'position' : 'base') });
      handle = { path: modelPath, format: 'gguf', weightFiles: [modelPath], config, family: family.name, source: ck.source };
      if (ck.tokenizer !== undefined) handle.ggufTokenizer = ck.tokenizer;
    } catch (err) {
      await ck.source.close();
      throw err;
    }
  }
  try {
    validateTensors(handle.source, handle.config);
  } catch (err) {
    await handle.source.close();
    throw err;
  }
  return handle;
}

/**
 * A GGUF file stores one eos id; the family's other end-of-turn tokens (found in the file's own
 * vocabulary) join it, as the Hugging Face config lists them.
 */
function withEndOfTurn(config: Record<string, unknown>, tok: GgufTokenizerInfo | undefined, family: FamilyFacts): Record<string, unknown> {
  const extra = family.endOfTurnTokens;
  if (tok?.eosId === undefined || extra === undefined) return config;
  const eos = [tok.eosId];
  for (const s of extra) {
    const id = tok.tokens.indexOf(s);
    if (id >= 0 && !eos.includes(id)) eos.push(id);
  }
  return { ...config, eos_token_id: eos };
}

/**
 * Opens and loads a model. `backend` defaults to 'auto'; with `quantize` every float matrix is
 * re-encoded as q8_0/q4_0 as it is read.
 */
export async function openModel(modelPath: string, options: OpenModelOptions): Promise<OpenedModel> {
  const backend =
    typeof options.backend === 'object' ? options.backend : await createBackend(options.backend ?? 'auto', options.threads !== undefined ? { threads: options.threads } : {});
  const handle = await openCheckpoint(modelPath, options);
  try {
    const quantize = options.quantize;
    if (quantize !== undefined && quantize !== 'q8_0' && quantize !== 'q4_0') {
      throw new ChatGLMError('BAD_ARGUMENT', `cannot quantize to ${JSON.stringify(quantize)}; choose q8_0 or q4_0`);
    }
    const kvType = options.kvType;
    if (kvType !== undefined) {
      if (!isKVType(kvType)) throw new ChatGLMError('BAD_ARGUMENT', `unknown KV cache type ${JSON.stringify(kvType)}; choose f16 or q8_0`);
      checkKVType(kvType, handle.config.headDim);
    }
    const weights = await loadWeights(handle.source, handle.config, backend, {
      ...(options.onProgress !== undefined ? { onProgress: options.onProgress } : {}),
      ...(quantize !== undefined ? { quantizer: (src: Float32Array, rows: number, cols: number) => ({ type: quantize, bytes: quantizeRows(quantize, src, rows, cols) }) } : {}),
    });
    const { source: _source, ...rest } = handle;
    const model = new GLMModel(handle.config, weights, backend);
    if (kvType !== undefined) model.kvType = kvType;
    return { ...rest, model, backend };
  } finally {
    await handle.source.close();
  }
}

/** Weight dtypes of a checkpoint, with the parameter count of each (for `info`). */
export function dtypeSummary(tensors: readonly TensorInfo[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of tensors) out[t.dtype] = (out[t.dtype] ?? 0) + t.shape.reduce((a, b) => a * b, 1);
  return out;
}
