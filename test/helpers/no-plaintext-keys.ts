/**
 * Scans files for unencrypted private keys: PEM private key blocks, and any DER PKCS#8 / SEC1 / PKCS#1 private
 * key, whether raw, inside a PEM block or inside a base64 string in JSON.
 */
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';

function parsesAsPrivateKey(der: Buffer): boolean {
  for (const type of ['pkcs8', 'sec1', 'pkcs1'] as const) {
    try {
      createPrivateKey({ key: der, format: 'der', type });
      return true;
    } catch {
      // not this form
    }
  }
  return false;
}

export function findPlaintextPrivateKeys(files: readonly string[]): string[] {
  const found: string[] = [];
  for (const file of files) {
    const buf = readFileSync(file);
    const text = buf.toString('latin1');
    if (/-----BEGIN (RSA |EC |)PRIVATE KEY-----/.test(text)) {
      found.push(`${file}: PEM private key`);
      continue;
    }
    if (parsesAsPrivateKey(buf)) {
      found.push(`${file}: DER private key`);
      continue;
    }
    for (const m of text.matchAll(/[A-Za-z0-9+/_-]{40,}={0,2}/g)) {
      const b64 = m[0];
      for (const enc of ['base64', 'base64url'] as const) {
        const der = Buffer.from(b64, enc);
        if (der.length > 0 && der[0] === 0x30 && parsesAsPrivateKey(der)) found.push(`${file}: base64 private key`);
      }
    }
  }
  return found;
}
