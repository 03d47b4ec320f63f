/**
 * Loads @mlc-ai/web-xgrammar (xgrammar compiled to WebAssembly). The package is a UMD bundle under
 * `"type": "module"`, so neither `import` nor `require` gives its exports; it is compiled here as
 * the CommonJS module its UMD wrapper expects. Loaded once, on first use.
 */
import Module, { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { ChatGLMError } from '../errors.js';

/** The parts of xgrammar's API this project uses (its own .d.ts types handles as `any`). */
export interface XgTokenizerInfo {
  dispose(): void;
  getVocabSize(): number;
}
export interface XgCompiledGrammar {
  dispose(): void;
}
export interface XgGrammarCompiler {
  dispose(): void;
  compileGrammar(ebnf: string, rootRule?: string): Promise<XgCompiledGrammar>;
}
export interface XgGrammarMatcher {
  dispose(): void;
  acceptToken(id: number): boolean;
  getNextTokenBitmask(): Promise<Int32Array>;
  isTerminated(): boolean;
  reset(): void;
}
export interface XgGrammar {
  dispose(): void;
}
export interface Xgrammar {
  TokenizerInfo: {
    createTokenizerInfo(vocab: string[], vocabType?: string, prependSpace?: boolean, vocabSize?: number, stopIds?: number[]): Promise<XgTokenizerInfo>;
  };
  GrammarCompiler: { createGrammarCompiler(info: XgTokenizerInfo, cacheEnabled?: boolean): Promise<XgGrammarCompiler> };
  GrammarMatcher: {
    createGrammarMatcher(g: XgCompiledGrammar, stopIds?: number[], terminateWithoutStopToken?: boolean, maxRollback?: number): Promise<XgGrammarMatcher>;
  };
  Grammar: { fromEBNF(ebnf: string, rootRule?: string): Promise<XgGrammar> };
  Testings: { isGrammarAcceptString(g: XgGrammar, s: string): Promise<boolean> };
}

interface CjsModule {
  filename: string;
  paths: string[];
  exports: unknown;
  _compile(source: string, filename: string): void;
}
type CjsModuleClass = { new (id: string): CjsModule; _nodeModulePaths(dir: string): string[] };

let loaded: Xgrammar | undefined;

export function loadXgrammar(): Xgrammar {
  if (loaded) return loaded;
  let file: string;
  try {
    file = createRequire(import.meta.url).resolve('@mlc-ai/web-xgrammar');
  } catch (err) {
    throw new ChatGLMError('GRAMMAR', 'constrained decoding needs the @mlc-ai/web-xgrammar package; reinstall chatglm.ts (npm ci)', { cause: err });
  }
  const M = Module as unknown as CjsModuleClass;
  const m = new M(file);
  m.filename = file;
  m.paths = M._nodeModulePaths(file);
  m._compile(readFileSync(file, 'utf8'), file);
  loaded = m.exports as Xgrammar;
  return loaded;
}
