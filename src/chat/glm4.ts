/**
 * GLM-4 (glm-4-9b-chat): [gMASK]<sop>, then per message <|role|> + encode(metadata + "\n") +
 * encode(content) (tiktoken: no dummy prefix, the newline is its own id 198), then <|assistant|>.
 * A tool call is the tool name on the first line, then the arguments as JSON.
 */
import { ChatGLMError } from '../errors.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { UNSAFE_KEYS, type JsonValue } from './python-literal.js';
import { checkJsonDepth } from './json-depth.js';
import { parseSegments, type ArgumentDecoder } from './reply.js';
import type { ChatFormat, ChatMessage, ParsedReply, PromptPiece, RenderedPrompt } from './types.js';

const ROLES = new Set(['system', 'user', 'assistant', 'observation']);

/** GLM-4's chat template introduction for a tool list (glm-4-9b-chat tokenizer_config.json). */
export const GLM4_TOOL_INTRO =
  '你是一个名为 ChatGLM 的人工智能助手。你是基于智谱AI训练的语言模型 GLM-4 模型开发的，你的任务是针对用户的问题和要求提供适当的答复和支持。';

export function glm4ToolSystemText(tools: JsonValue): string {
  checkJsonDepth(tools, 'the tool definitions');
  let text = `${GLM4_TOOL_INTRO}\n\n# 可用工具`;
  const list = Array.isArray(tools) ? tools : tools !== null && typeof tools === 'object' ? Object.values(tools) : [];
  for (const t of list) {
    // OpenAI style {type: "function", function: {...}} or the bare function object.
    const fn = t !== null && typeof t === 'object' && !Array.isArray(t) && t['function'] !== undefined ? t['function'] : t;
    const name = fn !== null && typeof fn === 'object' && !Array.isArray(fn) && typeof fn['name'] === 'string' ? fn['name'] : 'tool';
    text += `\n\n## ${name}\n\n${JSON.stringify(fn, null, 4)}\n在调用上述函数时，请使用 Json 格式表示调用的参数。`;
  }
  return text;
}

/** The first key anywhere in `root` that UNSAFE_KEYS forbids (iterative: parsed JSON may nest deeply). */
function findUnsafeKey(root: unknown): string | undefined {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const v = stack.pop();
    if (v === null || typeof v !== 'object') continue;
    if (Array.isArray(v)) {
      for (const x of v) stack.push(x);
      continue;
    }
    for (const [k, x] of Object.entries(v)) {
      if (UNSAFE_KEYS.has(k)) return k;
      stack.push(x);
    }
  }
  return undefined;
}

const decodeJsonArguments: ArgumentDecoder = (content) => {
  try {
    const v: unknown = JSON.parse(content.trim());
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return { ok: false, error: 'the tool call arguments are not a JSON object' };
    const unsafe = findUnsafeKey(v);
    if (unsafe !== undefined) return { ok: false, error: `the tool call arguments use the key ${unsafe}, which is not allowed` };
    return { ok: true, arguments: v as Record<string, JsonValue> };
  } catch (err) {
    return { ok: false, error: `cannot parse the tool call arguments as JSON: ${(err as Error).message}` };
  }
};

export const glm4: ChatFormat = {
  name: 'glm4',
  trainingDate: '2024年',
  prefix: ['[gMASK]', '<sop>'],
  segmentToken: '<|assistant|>',

  stopIds(tokenizer: Tokenizer): number[] {
    return [
      tokenizer.specialId('<|endoftext|>') ?? 151329,
      tokenizer.specialId('<|user|>') ?? 151336,
      tokenizer.specialId('<|observation|>') ?? 151338,
    ];
  },

  render(messages: readonly ChatMessage[]): RenderedPrompt {
    const pieces: PromptPiece[] = [{ special: '[gMASK]' }, { special: '<sop>' }];
    for (const m of messages) {
      if (!ROLES.has(m.role)) throw new ChatGLMError('BAD_ARGUMENT', `glm4: unknown role "${m.role}" (use system, user, assistant or observation)`);
      // The metadata line ends at the first newline: one inside it (a replayed tool name) would forge the content.
      if (m.metadata !== undefined && /[\r\n]/.test(m.metadata)) {
        throw new ChatGLMError('BAD_ARGUMENT', `glm4: a ${m.role} message's metadata (tool name) ${JSON.stringify(m.metadata.slice(0, 40))} contains a line break; use a one-line name`);
      }
      const content = m.role === 'system' && m.tools !== undefined ? `${m.content}${m.content ? '\n' : ''}${glm4ToolSystemText(m.tools)}` : m.content;
      pieces.push({ special: `<|${m.role}|>` }, { text: `${m.metadata ?? ''}\n` }, { text: content });
    }
    pieces.push({ special: '<|assistant|>' });
    return { pieces };
  },

  toolSystemMessage(tools: JsonValue): ChatMessage {
    return { role: 'system', content: '', tools };
  },

  // The JSON arguments follow the name line.
  forcedCallPieces(name: string): PromptPiece[] {
    return [{ text: `${name}\n` }];
  },

  parse(segments: readonly string[], options: { tools: boolean }): ParsedReply {
    return parseSegments(segments, options.tools, decodeJsonArguments, glm4.trainingDate);
  },
};
