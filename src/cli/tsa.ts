/** CLI plumbing shared by the commands that obtain RFC 3161 tokens: `--tsa DIR` (keyframe's own TSA) or `--url URL`. */
import { resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { parseCertificates, parseCrls } from '../pki/pem.js';
import type { X509Certificate, X509Crl } from '../pki/x509.js';
import { httpStamper, localStamper, type Stamper } from '../tsp/stamper.js';
import { readFileOrThrow } from '../util/fs.js';

export async function readRoots(path: string, option: string): Promise<X509Certificate[]> {
  const roots = parseCertificates(await readFileOrThrow(resolve(path), `${option} certificate`), path);
  if (roots.length === 0) throw new UsageError(`${option} holds no certificate`);
  return roots;
}

export async function readCrls(paths: readonly string[]): Promise<X509Crl[] | undefined> {
  if (paths.length === 0) return undefined;
  const crls: X509Crl[] = [];
  for (const c of paths) crls.push(...parseCrls(await readFileOrThrow(resolve(c), 'CRL'), c));
  return crls;
}

export interface StamperFlags {
  /** A TSA identity directory (`keyframe ca tsa-cert`). */
  readonly tsa?: string;
  /** An RFC 3161 TSA over HTTP. */
  readonly url?: string;
  /** Trust anchors for the TSA (required with a URL; default for a local TSA: the operator CA in its chain.pem). */
  readonly tsaRoot?: string;
  readonly crls?: readonly X509Crl[];
}

/** The stamper the flags name, or undefined when neither --tsa nor the URL option is given. */
export async function openStamper(flags: StamperFlags, names: { readonly tsa: string; readonly url: string }): Promise<Stamper | undefined> {
  if (flags.tsa !== undefined && flags.url !== undefined) throw new UsageError(`give either ${names.tsa} or ${names.url}, not both`);
  const roots = flags.tsaRoot !== undefined ? await readRoots(flags.tsaRoot, '--tsa-root') : undefined;
  const crls = flags.crls !== undefined ? { crls: flags.crls } : {};
  if (flags.url !== undefined) {
    if (!/^https?:\/\//.test(flags.url)) throw new UsageError(`${names.url}: "${flags.url}" is not an http(s) URL`);
    if (roots === undefined) throw new UsageError(`${names.url} needs --tsa-root: the TSA's tokens are verified before they are stored`);
    return httpStamper(flags.url, { roots, ...crls });
  }
  if (flags.tsa !== undefined) return localStamper(resolve(flags.tsa), { ...(roots !== undefined ? { roots } : {}), ...crls });
  return undefined;
}
