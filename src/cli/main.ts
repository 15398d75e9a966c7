/**
 * The `keyframe` command. Every error ends as one line on stderr, `keyframe: <message>`, and a non-zero exit:
 * 2 for usage and input errors and ordinary I/O failures (a missing directory, permission denied, a full disk, an
 * address in use: src/errors.ts knownError), 1 for anything refused or failed; "internal error" is a bug.
 * `keyframe` without a command is a usage error: help on stderr, exit 2 (`keyframe --help`: stdout, exit 0).
 */
import { Command, CommanderError } from 'commander';
import { errnoCode, knownError } from '../errors.js';
import { dieBySignal, installSignalCleanup, removeTemporariesSync } from '../util/cleanup.js';
import { endWithSupervisor } from '../supervisor/supervisor.js';
import type { CliContext } from './context.js';

type Register = (program: Command, ctx: CliContext) => void;

/**
 * Each command module, loaded only when its command runs: a command's module graph (X.509, the servers, SQLite,
 * argon2) costs up to 0.6 s of CPU to load, and `keyframe` runs as one short command at a time in scripts and tests.
 * The list's order is the order of `keyframe --help`; `names` are the top-level commands a module registers.
 */
const MODULES: readonly { names: readonly string[]; load: () => Promise<Register> }[] = [
  { names: ['ca'], load: async () => (await import('./commands/ca.js')).registerCaCommands },
  { names: ['device'], load: async () => (await import('./commands/device.js')).registerDeviceCommands },
  { names: ['cert'], load: async () => (await import('./commands/cert.js')).registerCertCommands },
  { names: ['package', 'decrypt'], load: async () => (await import('./commands/media.js')).registerMediaCommands },
  { names: ['sign', 'verify'], load: async () => (await import('./commands/signing.js')).registerSigningCommands },
  { names: ['record', 'timestamp', 'export', 'seal'], load: async () => (await import('./commands/recording.js')).registerRecordingCommands },
  { names: ['groupkey'], load: async () => (await import('./commands/groupkey.js')).registerGroupKeyCommands },
  { names: ['kms'], load: async () => (await import('./commands/kms.js')).registerKmsCommands },
  { names: ['user', 'grant'], load: async () => (await import('./commands/access.js')).registerAccessCommands },
  { names: ['audit'], load: async () => (await import('./commands/audit.js')).registerAuditCommands },
  { names: ['nvr'], load: async () => (await import('./commands/nvr.js')).registerNvrCommands },
  { names: ['camera'], load: async () => (await import('./commands/camera.js')).registerCameraCommands },
  { names: ['demo'], load: async () => (await import('./commands/demo.js')).registerDemoCommand },
  { names: ['up'], load: async () => (await import('./commands/up.js')).registerUpCommand },
];

/** The command modules `argv` needs: the one registering its first word, or all of them (help, a typo, no command). */
async function registersFor(argv: readonly string[]): Promise<Register[]> {
  const first = argv[0];
  const one = MODULES.find((m) => first !== undefined && m.names.includes(first));
  return Promise.all((one !== undefined ? [one] : MODULES).map((m) => m.load()));
}

export const VERSION = '0.1.0';

export async function buildProgram(ctx: CliContext, argv: readonly string[] = []): Promise<Command> {
  const program = new Command('keyframe');
  program
    .description('keyframe: end-to-end encrypted, tamper-evident video surveillance')
    .version(VERSION)
    .showHelpAfterError(false)
    .configureOutput({
      writeOut: (s) => ctx.stdout.write(s),
      writeErr: (s) => ctx.stderr.write(s),
      outputError: (s, write) => write(`keyframe: ${s.replace(/^error: /, '').trim()}\n`),
    })
    .exitOverride();
  for (const register of await registersFor(argv)) register(program, ctx);
  // every subcommand inherits output and exit handling
  const inherit = (cmd: Command): void => {
    for (const sub of cmd.commands) {
      sub.copyInheritedSettings(cmd);
      inherit(sub);
    }
  };
  inherit(program);
  return program;
}

function oneLine(message: string): string {
  return message.replace(/\s*\n\s*/g, ' ').trim();
}

export async function main(argv: string[], io: Partial<Pick<CliContext, 'stdout' | 'stderr'>> = {}): Promise<number> {
  let exitCode = 0;
  const ctx: CliContext = {
    stdout: io.stdout ?? process.stdout,
    stderr: io.stderr ?? process.stderr,
    setExitCode: (code) => {
      exitCode = code;
    },
  };
  try {
    const program = await buildProgram(ctx, argv);
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version exit 0; help shown because no command was given is a usage error (commander has
      // written it to stderr); commander has already printed its one line for the other usage errors
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return 0;
      if (e.code === 'commander.help') return e.exitCode === 0 ? 0 : 2;
      return 2;
    }
    const known = knownError(e);
    if (known !== undefined) {
      ctx.stderr.write(`keyframe: ${oneLine(known.message)}\n`);
      if (process.env['KEYFRAME_DEBUG'] === '1' && e instanceof Error && e.stack) ctx.stderr.write(`${e.stack}\n`);
      return known.exitCode;
    }
    const message = e instanceof Error ? e.message : String(e);
    ctx.stderr.write(`keyframe: internal error: ${oneLine(message)}\n`);
    if (process.env['KEYFRAME_DEBUG'] === '1' && e instanceof Error && e.stack) ctx.stderr.write(`${e.stack}\n`);
    return 1;
  }
}

/**
 * The process entry point (bin/keyframe.js): SIGINT/SIGTERM remove the temporaries and end the process as killed
 * by the signal, status 130/143 (or stop a command that stops cleanly); a closed stdout (`keyframe … | head -1`)
 * ends it quietly as SIGPIPE ends other tools, status 141; then `main`.
 */
export async function run(argv: string[]): Promise<void> {
  installSignalCleanup();
  endWithSupervisor();
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: unknown) => {
      if (errnoCode(e) === 'EPIPE') dieBySignal('SIGPIPE');
      removeTemporariesSync();
      if (stream === process.stdout) process.stderr.write(`keyframe: cannot write to standard output: ${errnoCode(e) ?? String(e)}\n`);
      process.exit(2);
    });
  }
  process.exitCode = await main(argv);
}
