/**
 * What every administration command over the KMS's mutual-TLS API shares (`keyframe kms …`, `user`, `grant`,
 * `audit`): the options naming the KMS and the administrator identity, and a client opened and closed around one
 * piece of work. Kept apart from the commands so that a command loads only the client, not the KMS server.
 */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { KMS_DEFAULTS } from '../kms/config.js';
import type { KmsClient } from '../kms/client.js';
import { openAdminClient } from '../kms/open.js';

export const DEFAULT_URL = `https://127.0.0.1:${KMS_DEFAULTS.port}`;

export interface AdminOptions {
  url?: string;
  identity?: string;
  json?: boolean;
}

export function adminOptions(cmd: Command): Command {
  return cmd
    .option('--url <URL>', `KMS address (default $KEYFRAME_KMS_URL or ${DEFAULT_URL})`)
    .option('--identity <DIR>', 'administrator identity: an operator-CA client certificate directory (default $KEYFRAME_KMS_ADMIN)')
    .option('--json', 'JSON output', false);
}

export async function withAdmin<T>(o: AdminOptions, fn: (c: KmsClient) => Promise<T>): Promise<T> {
  const identity = o.identity ?? process.env['KEYFRAME_KMS_ADMIN'];
  if (identity === undefined || identity === '') throw new UsageError('--identity <DIR> (or $KEYFRAME_KMS_ADMIN) is required: the operator-CA client identity of an administrator');
  const client = await openAdminClient(o.url ?? process.env['KEYFRAME_KMS_URL'] ?? DEFAULT_URL, resolve(identity));
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}
