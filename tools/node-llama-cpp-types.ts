/**
 * The few parts of node-llama-cpp's API the benchmark and comparison tools use. Its own types are
 * not a dependency of this package: it is installed on demand into .bench/llama.
 */
export interface LlamaSequence {
  evaluate(tokens: number[], options?: { temperature?: number; yieldEogToken?: boolean }): AsyncGenerator<number, void, void>;
  clearHistory(): Promise<void>;
}
export interface LlamaContext {
  getSequence(): LlamaSequence;
  dispose(): Promise<void>;
}
export interface LlamaModel {
  createContext(o: { contextSize: number; batchSize: number; threads: number; sequences: number; flashAttention?: boolean }): Promise<LlamaContext>;
  dispose(): Promise<void>;
}
export interface Llama {
  loadModel(o: { modelPath: string; gpuLayers: number }): Promise<LlamaModel>;
}
export interface NodeLlamaCpp {
  getLlama(o: Record<string, unknown>): Promise<Llama>;
}
