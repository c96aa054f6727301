/**
 * Removes secrets from text bound for D1 or logs (CONTRACT 4.8). Every credential value the
 * configuration holds (and each token issued at run time) is replaced wherever it occurs, in
 * the forms it can take on the way out: as is, percent-encoded (a URL or query, by us or by a URL
 * parser), form-encoded, JSON-escaped (inside a body or an error message) and base64 (inside a
 * Basic-auth value).
 * Headers are never stored at all; this is the net for everything else.
 *
 * Longer forms are replaced first, so a secret that contains another one is removed whole
 * instead of leaving its remainder behind. Outside sandbox mode every credential is at least
 * 16 characters (src/config.ts), so replacing them never blanks out ordinary words.
 */
export const REDACTED = "[REDACTED]";

export class Redactor {
  private readonly forms = new Set<string>();
  private ordered: string[] = [];

  constructor(secrets: Iterable<string | null | undefined> = []) {
    for (const s of secrets) this.add(s);
  }

  add(secret: string | null | undefined): void {
    if (!secret) return;
    for (const form of encodedForms(secret)) this.forms.add(form);
    this.ordered = [...this.forms].sort((a, b) => b.length - a.length);
  }

  /** The longest form replaced: a cut of a text this far from a point cannot hide a whole secret. */
  get longest(): number {
    return this.ordered[0]?.length ?? 0;
  }

  /**
   * The first `max` characters of `text`, redacted, with a note of what was cut. Redacts a
   * window just past the cut instead of the whole text (a vendor's answer can be megabytes),
   * then drops the window's tail, where a secret cut in half could have survived.
   */
  redactTruncated(text: string | null, max: number): string | null {
    if (text === null) return null;
    if (text.length <= max) return this.redact(text);
    const window = max + 2 * this.longest;
    // Whole text inside the window: nothing was cut through, nothing to drop.
    if (text.length <= window) return `${this.redact(text).slice(0, max)}…[truncated ${text.length - max} chars]`;
    const head = this.redact(text.slice(0, window));
    return `${head.slice(0, Math.min(max, head.length - this.longest))}…[truncated ${text.length - max} chars]`;
  }

  redact(text: string): string;
  redact(text: string | null): string | null;
  redact(text: string | null): string | null {
    if (text === null) return null;
    let out = text;
    for (const form of this.ordered) if (out.includes(form)) out = out.split(form).join(REDACTED);
    return out;
  }
}

function encodedForms(secret: string): string[] {
  const forms = [
    secret,
    encodeURIComponent(secret),
    new URLSearchParams({ s: secret }).toString().slice(2),
    JSON.stringify(secret).slice(1, -1),
    // As a URL parser leaves it in `request.url` or an error quoting one (spaces encoded, `/+=@` kept).
    new URL(`http://x/${secret}`).pathname.slice(1),
    new URL(`http://x/?${secret}`).search.slice(1),
  ];
  const base64 = toBase64(secret);
  // base64 of the secret alone; inside `user:secret` its alignment varies, so the exact
  // Basic values a connector sends are registered as secrets of their own (connectors/index.ts).
  if (base64) forms.push(base64.replace(/=+$/, ""));
  // An encoding never shortens a secret; a shorter "form" is a fragment (a URL parser stops at
  // `#` or `?`), and replacing it would blank out ordinary text.
  return forms.filter((f) => f.length >= secret.length);
}

function toBase64(text: string): string | null {
  try {
    let binary = "";
    for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
    return btoa(binary);
  } catch {
    return null;
  }
}
