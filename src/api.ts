/**
 * The library API: load a model, then talk to it in the shape of OpenAI's Chat Completions
 * (`createChatCompletion`), or generate over token ids. Everything here is a thin layer over
 * chat/ and generate/, in small files under api/; this module gathers them for importers.
 *
 *   const model = await loadChatModel('path/to/chatglm3-6b');
 *   const r = await model.createChatCompletion({ messages: [{ role: 'user', content: '你好' }] });
 *   console.log(r.choices[0].message.content);
 */
export type {
  ChatCompletionTool,
  ChatCompletionMessageToolCall,
  ChatCompletionContent,
  ChatCompletionMessageParam,
  ChatCompletionRequest,
  ChatCompletionMessage,
  FinishReason,
  ChatCompletionUsage,
  ChatCompletion,
  ChatCompletionChunkToolCall,
  ChatCompletionChunk,
} from './api/types.js';
export { type LoadChatModelOptions, bundledModelPath, loadGgufTokenizer, loadChatModel } from './api/load.js';
export { type ChatModelParts, type GenerateIdsOptions, ChatModel } from './api/chat-model.js';
