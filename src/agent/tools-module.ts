/**
 * Loading user tools from an ES module whose default export is an array of tools: defineTool(...)
 * results, or plain {name, description, parameters, run} objects (checked by defineTool here).
 * The module is the user's own code and runs with their rights, like any script they start.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ChatGLMError } from '../errors.js';
import { defineTool, isTool, type AnyTool, type ToolDefinition } from './tool.js';

export async function loadToolsModule(file: string): Promise<AnyTool[]> {
  const abs = path.resolve(file);
  if (!existsSync(abs)) throw new ChatGLMError('FILE_NOT_FOUND', `tools module not found: ${file} (check the path)`, { file });
  let mod: { default?: unknown };
  try {
    mod = (await import(pathToFileURL(abs).href)) as { default?: unknown };
  } catch (err) {
    throw new ChatGLMError('BAD_FORMAT', `${file}: the tools module failed to load (${(err as Error).message})`, { file, cause: err });
  }
  if (!Array.isArray(mod.default)) {
    throw new ChatGLMError('BAD_FORMAT', `${file}: the default export must be an array of tools, e.g. export default [defineTool({ name, description, parameters, run })]`, { file });
  }
  return mod.default.map((t: unknown, i: number) => {
    if (isTool(t)) return t as AnyTool;
    try {
      return defineTool(t as ToolDefinition) as unknown as AnyTool;
    } catch (err) {
      throw new ChatGLMError('BAD_FORMAT', `${file}: tool ${i}: ${(err as Error).message}`, { file, cause: err });
    }
  });
}
