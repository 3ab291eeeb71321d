/** A page boundary: the (score, id) of the last message of the previous page. */
export interface Boundary {
  score: number;
  id: string;
}

const ID = /^[0-9A-HJKMNP-TV-Z]{26}$/;

export function encodeCursor({ score, id }: Boundary): string {
  return Buffer.from(`${score}:${id}`).toString('base64url');
}

/** Returns null for anything that is not a cursor this API issued. */
export function decodeCursor(cursor: string): Boundary | null {
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(cursor)) return null;
  const text = Buffer.from(cursor, 'base64url').toString();
  const match = /^(-?\d{1,16}):([0-9A-Z]{26})$/.exec(text);
  if (!match || !ID.test(match[2]!)) return null;
  const score = Number(match[1]);
  return Number.isSafeInteger(score) ? { score, id: match[2]! } : null;
}
