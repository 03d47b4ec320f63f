/** How past tool calls are written back, shared by the families that write them the same way. */
import { toPythonLiteral, type JsonValue } from '../chat/python-literal.js';
import type { ChatMessage } from '../chat/types.js';

/** A code-interpreter call ({"code": "..."} to `interpreter`) as the fenced block the model writes. */
export function interpreterCall(name: string, args: JsonValue): ChatMessage | undefined {
  if (name === 'interpreter' && args !== null && typeof args === 'object' && !Array.isArray(args) && typeof args['code'] === 'string') {
    return { role: 'assistant', metadata: 'interpreter', content: `\`\`\`python\n${args['code']}\n\`\`\`` };
  }
  return undefined;
}

/** ChatGLM3's convention: the tool name as metadata, then a fenced `tool_call(k=v, ...)` block. */
export function pythonToolCall(name: string, args: JsonValue): ChatMessage {
  const code = interpreterCall(name, args);
  if (code !== undefined) return code;
  const kwargs = args !== null && typeof args === 'object' && !Array.isArray(args) ? Object.entries(args) : [];
  const py = kwargs.map(([k, v]) => `${k}=${toPythonLiteral(v)}`).join(', ');
  return { role: 'assistant', metadata: name, content: `\`\`\`python\ntool_call(${py})\n\`\`\`` };
}

/**
 * The tool-list system message with the caller's system text put first, on the same message (the
 * ChatGLM3 layout: its models learned the tool list after the standard instruction line).
 */
export function systemTextBeforeTools(toolSystemMessage: (tools: JsonValue) => ChatMessage): (tools: JsonValue, system: string | undefined) => ChatMessage[] {
  return (tools, system) => {
    const sys = toolSystemMessage(tools);
    if (system === undefined || system === '') return [sys];
    return [{ ...sys, content: sys.content === '' ? system : `${system}\n${sys.content}` }];
  };
}
