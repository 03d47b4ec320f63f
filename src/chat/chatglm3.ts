/**
 * ChatGLM3 (HF `build_chat_input`, `process_response`):
 * [gMASK] sop, then per message <|role|> + encode(metadata + "\n") + encode(content) (two separate
 * encodes, so each gets its own dummy-prefix ▁), then <|assistant|>. Tool calls come back as
 * "name\n```python\ntool_call(k=v, ...)\n```" and are parsed, never evaluated.
 */
import { ChatGLMError } from '../errors.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { parsePythonCall, PythonSyntaxError, type JsonValue } from './python-literal.js';
import { checkJsonDepth } from './json-depth.js';
import { parseSegments, type ArgumentDecoder } from './reply.js';
import type { ChatFormat, ChatMessage, ParsedReply, PromptPiece, RenderedPrompt } from './types.js';

/** The instruction line ChatGLM3's own tool demos put before the tool definitions. */
/** ChatGLM3's code-interpreter system prompt (composite_demo demo_ci.py; chatglm.cpp examples/system/code_interpreter.txt). */
export const CHATGLM3_CODE_INTERPRETER_PROMPT =
  '你是一位智能AI助手，你叫ChatGLM，你连接着一台电脑，但请注意不能联网。在使用Python解决任务时，你可以运行代码并得到结果，如果运行结果有错误，你需要尽可能对代码进行改进。你可以处理用户上传到电脑上的文件，文件默认存储路径是/mnt/data/。';

export const CHATGLM3_TOOL_INSTRUCTION = 'Answer the following questions as best as you can. You have access to the following tools:';

const ROLES = new Set(['system', 'user', 'assistant', 'observation']);

export function systemTextWithTools(content: string, tools: JsonValue): string {
  // json.dumps(tools, indent=4, ensure_ascii=False) == JSON.stringify(tools, null, 4) for JSON data.
  checkJsonDepth(tools, 'the tool definitions');
  return `${content}\n${JSON.stringify(tools, null, 4)}`;
}

/** tool_call(k=v, ...) in a ```python fence: the original drops the first and last lines, then evals. */
export const decodeToolCall: ArgumentDecoder = (content) => {
  const lines = content.trim().split('\n');
  if (lines.length < 3) return { ok: false, error: 'the tool call is not a fenced ```python block' };
  const code = lines.slice(1, -1).join('\n');
  try {
    const call = parsePythonCall(code);
    if (call.name !== 'tool_call') return { ok: false, error: `expected tool_call(...), found ${call.name}(...)` };
    return { ok: true, arguments: call.kwargs };
  } catch (err) {
    if (err instanceof PythonSyntaxError) return { ok: false, error: `cannot parse the tool call arguments: ${err.message}` };
    throw err;
  }
};

export const chatglm3: ChatFormat = {
  name: 'chatglm3',
  trainingDate: '2023年',
  prefix: ['[gMASK]', 'sop'],
  segmentToken: '<|assistant|>',

  stopIds(tokenizer: Tokenizer): number[] {
    return [2, tokenizer.specialId('<|user|>') ?? 64795, tokenizer.specialId('<|observation|>') ?? 64797];
  },

  render(messages: readonly ChatMessage[]): RenderedPrompt {
    const pieces: PromptPiece[] = [{ special: '[gMASK]' }, { special: 'sop' }];
    for (const m of messages) {
      if (!ROLES.has(m.role)) throw new ChatGLMError('BAD_ARGUMENT', `chatglm3: unknown role "${m.role}" (use system, user, assistant or observation)`);
      // The metadata line ends at the first newline: one inside it (a replayed tool name) would forge the content.
      if (m.metadata !== undefined && /[\r\n]/.test(m.metadata)) {
        throw new ChatGLMError('BAD_ARGUMENT', `chatglm3: a ${m.role} message's metadata (tool name) ${JSON.stringify(m.metadata.slice(0, 40))} contains a line break; use a one-line name`);
      }
      const content = m.role === 'system' && m.tools !== undefined ? systemTextWithTools(m.content, m.tools) : m.content;
      pieces.push({ special: `<|${m.role}|>` }, { text: `${m.metadata ?? ''}\n` }, { text: content });
    }
    pieces.push({ special: '<|assistant|>' });
    return { pieces };
  },

  toolSystemMessage(tools: JsonValue): ChatMessage {
    return { role: 'system', content: CHATGLM3_TOOL_INSTRUCTION, tools };
  },

  // Header and content are encoded separately, as in the chat layout.
  forcedCallPieces(name: string): PromptPiece[] {
    return [{ text: `${name}\n` }, { text: '```python\ntool_call(' }];
  },

  parse(segments: readonly string[], options: { tools: boolean }): ParsedReply {
    return parseSegments(segments, options.tools, decodeToolCall);
  },
};
