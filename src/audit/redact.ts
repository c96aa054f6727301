/**
 * Removes secrets from text bound for D1 or logs. Every credential value the configuration
 * holds (and each token issued at run time) is replaced wherever it occurs in a URL or a body,
 * so a vendor echoing a key back cannot leak it either. Headers are never stored at all.
 */
const MIN_SECRET_LENGTH = 6; // shorter values would blank out ordinary words

export class Redactor {
  private readonly secrets = new Set<string>();

  constructor(secrets: Iterable<string | null | undefined> = []) {
    for (const s of secrets) this.add(s);
  }

  add(secret: string | null | undefined): void {
    if (!secret || secret.length < MIN_SECRET_LENGTH) return;
    this.secrets.add(secret);
    this.secrets.add(encodeURIComponent(secret));
  }

  redact(text: string): string;
  redact(text: string | null): string | null;
  redact(text: string | null): string | null {
    if (text === null) return null;
    let out = text;
    for (const secret of this.secrets) if (out.includes(secret)) out = out.split(secret).join("[REDACTED]");
    return out;
  }
}
