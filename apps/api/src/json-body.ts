import { isUtf8 } from 'node:buffer';
import type { FastifyInstance } from 'fastify';
import { InvalidField } from './errors.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The route checks the text of each item of its body itself, so that one ill-formed item
     * refuses only that item (a batch): the parser lets lone surrogates through to it.
     */
    textCheckedPerItem?: boolean;
  }
}

/** What a lone UTF-16 surrogate in a text field is refused with. */
export const ILL_FORMED_TEXT = 'is not well-formed Unicode (a lone UTF-16 surrogate)';

/**
 * JSON bodies through Fastify's own parser (prototype-poisoning keys refused), and also refused
 * when an object names a key twice (JSON.parse would keep the last silently, and a proxy or log
 * reading the first would disagree with what was stored) or when a string or key is not
 * well-formed Unicode: bytes that are not UTF-8 (which decoding would silently turn into U+FFFD)
 * or a lone surrogate written as an escape (see `illFormedText`).
 */
export function registerJsonParser(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const bytes = body as Buffer;
    if (!isUtf8(bytes)) return done(new InvalidField('/', 'is not valid UTF-8 (bytes that no text is made of)'), undefined);
    const text = bytes.toString('utf8');
    parse(request, text, (err, value) => {
      if (err) {
        const poisoned = (err as { code?: string }).code === 'FST_ERR_CTP_INVALID_JSON_BODY' && isJson(text);
        return done(poisoned ? new InvalidField('/', 'contains a forbidden key (__proto__ or constructor.prototype)') : err, undefined);
      }
      const duplicate = duplicateKey(text);
      if (duplicate !== null) return done(new InvalidField(`/${duplicate}`, 'appears more than once in one object'), undefined);
      if (!request.routeOptions.config.textCheckedPerItem && !isWellFormedBody(value)) {
        return done(new InvalidField(illFormedText(value) ?? '/', ILL_FORMED_TEXT), undefined);
      }
      done(null, value);
    });
  });
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** The first key named twice in one object of a valid JSON text, or null. Iterative: any depth. */
export function duplicateKey(text: string): string | null {
  const objects: (Set<string> | null)[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let end = i + 1;
      while (text.charCodeAt(end) !== 0x22) end += text.charCodeAt(end) === 0x5c /* \ */ ? 2 : 1;
      const keys = objects[objects.length - 1];
      if (keys && expectKey) {
        const key = JSON.parse(text.slice(i, end + 1)) as string;
        if (keys.has(key)) return key;
        keys.add(key);
        expectKey = false;
      }
      i = end;
    } else if (c === 0x7b /* { */) {
      objects.push(new Set());
      expectKey = true;
    } else if (c === 0x5b /* [ */) {
      objects.push(null);
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      objects.pop();
    } else if (c === 0x2c /* , */) {
      expectKey = objects[objects.length - 1] != null;
    }
  }
  return null;
}

/**
 * Whether every string and object key of a parsed body is well-formed Unicode: the walk of
 * `illFormedText` without its pointers, which only a refusal needs. Iterative, unlike the store's
 * isWellFormedText, whose recursion a deeply nested body would overflow.
 */
function isWellFormedBody(value: unknown): boolean {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const current = stack.pop();
    if (typeof current === 'string') {
      if (!current.isWellFormed()) return false;
    } else if (Array.isArray(current)) {
      for (const item of current) stack.push(item);
    } else if (current !== null && typeof current === 'object') {
      for (const key of Object.keys(current)) {
        if (!key.isWellFormed()) return false;
        stack.push((current as Record<string, unknown>)[key]);
      }
    }
  }
  return true;
}

/**
 * JSON pointer of the first string or object key holding a lone UTF-16 surrogate (`"\ud800"`),
 * or null. Such text cannot be encoded as UTF-8: Redis would get U+FFFD instead, and Lua's cjson
 * refuses it outright, failing a write half-way through the request. Iterative: any depth.
 */
export function illFormedText(value: unknown): string | null {
  const stack: { value: unknown; path: string }[] = [{ value, path: '' }];
  while (stack.length > 0) {
    const { value: current, path } = stack.pop()!;
    if (typeof current === 'string') {
      if (!current.isWellFormed()) return path || '/';
    } else if (Array.isArray(current)) {
      current.forEach((item, i) => stack.push({ value: item, path: `${path}/${i}` }));
    } else if (current !== null && typeof current === 'object') {
      for (const [key, item] of Object.entries(current)) {
        const keyPath = `${path}/${pointerToken(key.toWellFormed())}`;
        if (!key.isWellFormed()) return keyPath;
        stack.push({ value: item, path: keyPath });
      }
    }
  }
  return null;
}

function pointerToken(key: string): string {
  return key.replaceAll('~', '~0').replaceAll('/', '~1');
}
