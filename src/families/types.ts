/**
 * What one model family is, beyond the weights: its chat format (render + parse + stop ids), how a
 * past tool call and a tool list are written back into a conversation, and the facts the loaders
 * receive as parameters (FamilyFacts: model/ and tokenizer/ never import this folder).
 */
import type { ChatFormat, ChatMessage } from '../chat/types.js';
import type { JsonValue } from '../chat/python-literal.js';
import type { FamilyFacts } from '../tokenizer/family-facts.js';

/** The loaders' facts (detection, vocabulary, RoPE: FamilyFacts) and the chat protocol. */
export interface ModelFamilyInfo extends FamilyFacts {
  /** Render, parse and stop ids (one module per format under chat/). */
  readonly format: ChatFormat;
  /**
   * How the model writes a tool call: 'python' (ChatGLM3: a fenced tool_call(k=v, ...) block),
   * 'json' (GLM-4: the arguments as JSON), or 'none' (ChatGLM2 has no tool protocol).
   */
  readonly toolCalls: 'python' | 'json' | 'none';
  /** The system prompt that tells the model it has a code interpreter, when it was trained with one. */
  readonly interpreterSystemPrompt?: string;
  /**
   * The system messages that carry `tools`, keeping the caller's own system text (`system`, '' or
   * absent when there is none).
   */
  toolSystemMessages(tools: JsonValue, system: string | undefined): ChatMessage[];
  /**
   * A past assistant tool call as the model would have written it (header metadata + content),
   * from an OpenAI-style call: the function name, its arguments as parsed JSON and as sent.
   */
  toolCallMessage(name: string, args: JsonValue, argumentsJson: string): ChatMessage;
}
