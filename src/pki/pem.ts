/** PEM in and out: a PEM file may hold several certificates or CRLs; anything malformed is an InputError. */
import { X509Certificate, X509Crl, Pkcs10CertificateRequest } from './x509.js';
import { InputError } from '../errors.js';

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

export interface PemBlock {
  readonly type: string;
  readonly der: Buffer;
}

export function parsePemBlocks(text: string, source: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  for (const m of text.matchAll(BLOCK)) {
    const body = (m[2] ?? '').replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body) || body.length === 0) throw new InputError(`${source}: a ${m[1] ?? '?'} block is not valid base64`);
    blocks.push({ type: m[1] ?? '', der: Buffer.from(body, 'base64') });
  }
  return blocks;
}

function typed<T>(input: string | Uint8Array, source: string, type: string, what: string, make: (der: Buffer) => T): T[] {
  const text = typeof input === 'string' ? input : Buffer.from(input).toString('latin1');
  const blocks = parsePemBlocks(text, source).filter((b) => b.type === type);
  if (blocks.length === 0) {
    if (typeof input !== 'string' && input.length > 0 && input[0] === 0x30) {
      // DER input: a single object
      try {
        return [make(Buffer.from(input))];
      } catch (e) {
        throw new InputError(`${source}: not a valid DER ${what}`, { cause: e });
      }
    }
    throw new InputError(`${source}: no ${what} found (expected PEM "-----BEGIN ${type}-----")`);
  }
  return blocks.map((b, i) => {
    try {
      return make(b.der);
    } catch (e) {
      throw new InputError(`${source}: ${what} #${i + 1} is malformed`, { cause: e });
    }
  });
}

export function parseCertificates(input: string | Uint8Array, source: string): X509Certificate[] {
  return typed(input, source, 'CERTIFICATE', 'certificate', (der) => new X509Certificate(der));
}

export function parseCrls(input: string | Uint8Array, source: string): X509Crl[] {
  return typed(input, source, 'X509 CRL', 'CRL', (der) => new X509Crl(der));
}

export function parseCsr(input: string | Uint8Array, source: string): Pkcs10CertificateRequest {
  const all = typed(input, source, 'CERTIFICATE REQUEST', 'certificate request', (der) => new Pkcs10CertificateRequest(der));
  if (all.length !== 1) throw new InputError(`${source}: expected one certificate request, found ${all.length}`);
  return all[0] as Pkcs10CertificateRequest;
}

export function toPem(der: Uint8Array | ArrayBuffer, type: string): string {
  const b64 = Buffer.from(der instanceof ArrayBuffer ? new Uint8Array(der) : der).toString('base64');
  return `-----BEGIN ${type}-----\n${(b64.match(/.{1,64}/g) ?? []).join('\n')}\n-----END ${type}-----\n`;
}

export function certsToPem(certs: readonly X509Certificate[]): string {
  return certs.map((c) => toPem(c.rawData, 'CERTIFICATE')).join('');
}
