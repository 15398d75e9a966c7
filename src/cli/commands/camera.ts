/**
 * keyframe camera
 *   camera run     the camera agent: source → signer → CENC → CMAF → ring buffer → NVR, until SIGINT / SIGTERM
 *   camera status  what the running agent last wrote to its status file
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { formatCameraStatus, readCameraStatus, runCameraAgent } from '../../camera/agent.js';
import { loadCameraConfig } from '../../camera/config.js';
import { NotFoundError, errnoCode } from '../../errors.js';
import { createLogger } from '../../server/log.js';
import { onInterrupt } from '../../util/cleanup.js';
import { println, type CliContext } from '../context.js';

export function registerCameraCommands(program: Command, ctx: CliContext): void {
  const camera = program.command('camera').description('the camera agent: record continuously to the ring buffer and upload to the NVR');

  camera
    .command('run')
    .description('run the camera agent until SIGINT or SIGTERM (the session is ended cleanly; JSON log lines on stdout)')
    .requiredOption('--config <FILE>', 'camera config (camera.json)')
    .action(async (o: { config: string }) => {
      const config = loadCameraConfig(resolve(o.config));
      const logger = createLogger('camera', { level: process.env['KEYFRAME_LOG_LEVEL'] ?? config.logLevel });
      const abort = new AbortController();
      const release = onInterrupt(() => {
        logger.info({ event: 'stopping' }, 'stopping: ending the session cleanly');
        abort.abort();
      });
      try {
        await runCameraAgent({ config, logger, signal: abort.signal });
        logger.info({ event: 'stopped' }, 'stopped');
      } finally {
        release();
      }
    });

  camera
    .command('status')
    .description("the agent's source state, epoch and KID, ring use, upload lag and last error (from its status file)")
    .requiredOption('--config <FILE>', 'camera config (camera.json)')
    .option('--json', 'JSON output', false)
    .action((o: { config: string; json: boolean }) => {
      const config = loadCameraConfig(resolve(o.config));
      let status;
      try {
        status = readCameraStatus(config.statusFile);
      } catch (e) {
        if (errnoCode(e) === 'ENOENT') throw new NotFoundError(`no status file ${config.statusFile}: the camera agent has not run with this config`);
        throw e;
      }
      if (o.json) println(ctx.stdout, JSON.stringify(status, null, 2));
      else ctx.stdout.write(formatCameraStatus(status));
    });
}
