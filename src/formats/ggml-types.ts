/** The ggml tensor types GGUF files name by id, and the bytes a tensor of each takes. */
import { ChatGLMError } from '../errors.js';

/** ggml tensor types: id, block size in elements, bytes per block. */
export interface GgmlTypeInfo {
  id: number;
  name: string;
  blockSize: number;
  typeSize: number;
}

const GGML_TYPE_LIST: GgmlTypeInfo[] = [
  { id: 0, name: 'F32', blockSize: 1, typeSize: 4 },
  { id: 1, name: 'F16', blockSize: 1, typeSize: 2 },
  { id: 2, name: 'Q4_0', blockSize: 32, typeSize: 18 },
  { id: 3, name: 'Q4_1', blockSize: 32, typeSize: 20 },
  { id: 6, name: 'Q5_0', blockSize: 32, typeSize: 22 },
  { id: 7, name: 'Q5_1', blockSize: 32, typeSize: 24 },
  { id: 8, name: 'Q8_0', blockSize: 32, typeSize: 34 },
  { id: 9, name: 'Q8_1', blockSize: 32, typeSize: 36 },
  { id: 10, name: 'Q2_K', blockSize: 256, typeSize: 84 },
  { id: 11, name: 'Q3_K', blockSize: 256, typeSize: 110 },
  { id: 12, name: 'Q4_K', blockSize: 256, typeSize: 144 },
  { id: 13, name: 'Q5_K', blockSize: 256, typeSize: 176 },
  { id: 14, name: 'Q6_K', blockSize: 256, typeSize: 210 },
  { id: 15, name: 'Q8_K', blockSize: 256, typeSize: 292 },
  { id: 16, name: 'IQ2_XXS', blockSize: 256, typeSize: 66 },
  { id: 17, name: 'IQ2_XS', blockSize: 256, typeSize: 74 },
  { id: 18, name: 'IQ3_XXS', blockSize: 256, typeSize: 98 },
  { id: 19, name: 'IQ1_S', blockSize: 256, typeSize: 50 },
  { id: 20, name: 'IQ4_NL', blockSize: 32, typeSize: 18 },
  { id: 21, name: 'IQ3_S', blockSize: 256, typeSize: 110 },
  { id: 22, name: 'IQ2_S', blockSize: 256, typeSize: 82 },
  { id: 23, name: 'IQ4_XS', blockSize: 256, typeSize: 136 },
  { id: 24, name: 'I8', blockSize: 1, typeSize: 1 },
  { id: 25, name: 'I16', blockSize: 1, typeSize: 2 },
  { id: 26, name: 'I32', blockSize: 1, typeSize: 4 },
  { id: 27, name: 'I64', blockSize: 1, typeSize: 8 },
  { id: 28, name: 'F64', blockSize: 1, typeSize: 8 },
  { id: 29, name: 'IQ1_M', blockSize: 256, typeSize: 56 },
  { id: 30, name: 'BF16', blockSize: 1, typeSize: 2 },
  { id: 34, name: 'TQ1_0', blockSize: 256, typeSize: 54 },
  { id: 35, name: 'TQ2_0', blockSize: 256, typeSize: 66 },
];

export const GGML_TYPES: ReadonlyMap<number, GgmlTypeInfo> = new Map(GGML_TYPE_LIST.map((t) => [t.id, t]));
export const GGML_TYPE_BY_NAME: ReadonlyMap<string, GgmlTypeInfo> = new Map(GGML_TYPE_LIST.map((t) => [t.name, t]));

/** The ggml type id for a name such as 'Q8_0'; throws for unknown names (a programming error). */
export function ggmlTypeId(name: string): number {
  const t = GGML_TYPE_BY_NAME.get(name);
  if (t === undefined) throw new ChatGLMError('UNSUPPORTED', `unknown ggml type ${name}`);
  return t.id;
}

export function ggmlTypeName(id: number): string {
  return GGML_TYPES.get(id)?.name ?? `type#${id}`;
}

/** Bytes a tensor of `ne` elements (innermost first) takes in ggml type `id`; undefined if unknown. */
export function ggmlTensorBytes(id: number, ne: readonly number[]): number | undefined {
  const t = GGML_TYPES.get(id);
  if (t === undefined) return undefined;
  const inner = ne.length === 0 ? 1 : ne[0]!;
  if (inner % t.blockSize !== 0) return undefined;
  let n = inner / t.blockSize;
  for (let i = 1; i < ne.length; i++) n *= ne[i]!;
  return n * t.typeSize;
}

