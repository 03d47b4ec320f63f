/**
 * What one model family is, beyond the weights: its chat format (render + parse + stop ids), how a
 * past tool call and a tool list are written back into a conversation, and the defaults the lower
 * layers receive as parameters (model/ and tokenizer/ never import this folder).
 */
import type { ChatFormat, ChatMessage } from '../chat/types.js';
import type { JsonValue } from '../chat/python-literal.js';

export interface ModelFamilyInfo {
  /** The family's name: the `family` option, `--format`, and ChatFormat.name. */
  readonly name: string;
  /** Render, parse and stop ids (one module per format under chat/). */
  readonly format: ChatFormat;
  /** How RoPE is stretched for long-context variants (model/config's `ropeScaling`). */
  readonly ropeScaling: 'base' | 'position';
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
