/**
 * Rendering untrusted text: Markdown with raw HTML shown as text, then sanitized by DOMPurify (no
 * <img>, no script, no event handlers); tool output through textContent; images only as PNG data
 * URLs from the interpreter.
 */
import { Marked, type Tokens } from 'marked';
import DOMPurify from 'dompurify';
import hljs from 'highlight.js/lib/core';
import python from 'highlight.js/lib/languages/python';
import json from 'highlight.js/lib/languages/json';
import javascript from 'highlight.js/lib/languages/javascript';
import bash from 'highlight.js/lib/languages/bash';
import { PNG_DATA_URL, type Item } from './types.js';

hljs.registerLanguage('python', python);
hljs.registerLanguage('json', json);
hljs.registerLanguage('javascript', javascript);
hljs.registerLanguage('bash', bash);

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const markdown = new Marked({
  gfm: true,
  breaks: true,
  // Raw HTML in a reply is shown as the text it is, never parsed as markup.
  renderer: { html: (token: Tokens.HTML | Tokens.Tag) => escapeHtml(token.text) },
});

function renderMarkdown(target: HTMLElement, text: string): void {
  const html = markdown.parse(text, { async: false });
  target.innerHTML = DOMPurify.sanitize(html, {
    FORBID_TAGS: ['img', 'style', 'form', 'input', 'button', 'textarea', 'select', 'iframe', 'svg', 'math', 'video', 'audio', 'source', 'picture'],
    FORBID_ATTR: ['style', 'srcset'],
    ALLOW_DATA_ATTR: false,
  });
  for (const a of target.querySelectorAll('a')) {
    a.target = '_blank';
    a.rel = 'noopener noreferrer';
  }
  for (const code of target.querySelectorAll<HTMLElement>('pre code')) highlight(code);
}

function highlight(code: HTMLElement): void {
  const lang = /language-(\w+)/.exec(code.className)?.[1];
  if (lang !== undefined && hljs.getLanguage(lang) === undefined) return;
  hljs.highlightElement(code);
}

function codeBlock(text: string, lang: string): HTMLElement {
  const pre = document.createElement('pre');
  const code = document.createElement('code');
  code.className = `language-${lang}`;
  code.textContent = text;
  pre.append(code);
  highlight(code);
  return pre;
}

function el(tag: string, className: string, text?: string): HTMLElement {
  const e = document.createElement(tag);
  e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** The code of an interpreter call (`{"code": "..."}`), else the raw arguments. */
function codeOf(args: string): string {
  try {
    const v = JSON.parse(args) as { code?: unknown };
    if (typeof v.code === 'string') return v.code;
  } catch {
    // shown as written
  }
  return args;
}

function prettyJson(args: string): string {
  try {
    return JSON.stringify(JSON.parse(args), null, 2);
  } catch {
    return args;
  }
}

export function renderItem(item: Item): HTMLElement {
  switch (item.kind) {
    case 'user':
      return el('div', 'msg user', item.text);
    case 'error':
      return el('div', 'msg error', item.text);
    case 'assistant': {
      const box = el('div', 'msg assistant');
      const body = el('div', 'body');
      renderMarkdown(body, item.text);
      box.append(body);
      if (item.stats !== undefined) box.append(el('div', 'stats', item.stats));
      return box;
    }
    case 'tool_call': {
      const card = el('div', 'card call');
      card.dataset['callId'] = item.id;
      const isCode = item.name === 'interpreter';
      card.append(el('h3', '', isCode ? 'Code' : `Tool call: ${item.name}`));
      card.append(isCode ? codeBlock(codeOf(item.arguments), 'python') : codeBlock(prettyJson(item.arguments), 'json'));
      return card;
    }
    case 'tool_result': {
      const card = el('div', 'card result');
      card.dataset['callId'] = item.id;
      card.append(el('h3', '', item.name === 'interpreter' ? 'Output' : `Result: ${item.name}${item.ok ? '' : ' (error)'}`));
      if (item.output !== '' || item.images.length === 0) card.append(el('pre', 'output', item.output));
      for (const url of item.images) {
        if (!PNG_DATA_URL.test(url)) continue;
        const img = document.createElement('img');
        img.alt = 'plot';
        img.src = url;
        card.append(img);
      }
      return card;
    }
  }
}
