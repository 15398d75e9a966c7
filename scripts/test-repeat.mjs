#!/usr/bin/env node
// npm run test:repeat -- N [--out FILE] [--keep] [--resume]
//
// Runs the whole suite (`npm test`, as CI does) N times on clean clones of HEAD, to show that it does not flake:
// half of the runs alone, the other half two at a time (two clones side by side on the same cores, as when two CI
// jobs share a machine), interleaved (a pair, then two alone, …) so that a summary cut short still has both kinds. Each clone gets `npm ci` once. Every run's closing line ("tests: N passed,
// N failed, N skipped") and the names of its failed tests (from vitest's JSON report) are collected; the summary
// is printed and written as JSON to --out after every run (default: test-repeat.json in the work directory, which
// is kept only with --keep or when a run failed). Exit 0 when every run passed.
//
// --resume continues the summary in --out (a campaign cut short, e.g. by a machine's shutdown): the same commit is
// cloned again (not HEAD), the runs already recorded count, and the interleaving goes on where it stopped.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { out: { type: 'string' }, keep: { type: 'boolean', default: false }, resume: { type: 'boolean', default: false } } });
const n = Number(positionals[0] ?? 20);
if (!Number.isSafeInteger(n) || n < 1) {
  console.error(`test:repeat: N must be a positive integer, got ${positionals[0]}`);
  process.exit(2);
}
const repo = resolve(new URL('..', import.meta.url).pathname);
const out = values.out === undefined ? undefined : resolve(values.out);
if (values.resume && (out === undefined || !existsSync(out))) {
  console.error(`test:repeat: --resume needs --out naming an existing summary${values.out === undefined ? '' : `; ${out} does not exist`}`);
  process.exit(2);
}
if (!values.resume && out !== undefined && existsSync(out)) {
  console.error(`test:repeat: ${out} exists already: pass --resume to continue it, or name another --out`);
  process.exit(2);
}
const previous = values.resume && out !== undefined ? JSON.parse(readFileSync(out, 'utf8')) : undefined;
const work = mkdtempSync(join(tmpdir(), 'kf-repeat-'));
const summaryFile = out ?? join(work, 'test-repeat.json');
const head = previous?.commit ?? spawnSync('git', ['-C', repo, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).stdout.trim();
const singles = Math.ceil(n / 2);
const pairs = Math.floor((n - singles) / 2);
const extra = n - singles - 2 * pairs; // an odd remainder runs alone at the end

function run(cmd, args, cwd, logFile, env = {}) {
  return new Promise((resolvePromise) => {
    const t0 = Date.now();
    const p = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks = [];
    p.stdout.on('data', (d) => chunks.push(d));
    p.stderr.on('data', (d) => chunks.push(d));
    p.on('close', (code) => {
      const text = Buffer.concat(chunks).toString('utf8');
      writeFileSync(logFile, text);
      resolvePromise({ code, text, seconds: Math.round((Date.now() - t0) / 1000) });
    });
  });
}

async function prepare(name) {
  const dir = join(work, name);
  const c = spawnSync('git', ['clone', '-q', repo, dir], { stdio: 'inherit' });
  if (c.status !== 0) throw new Error(`git clone into ${dir} failed`);
  const co = spawnSync('git', ['-C', dir, 'checkout', '-q', '--detach', head], { stdio: 'inherit' });
  if (co.status !== 0) throw new Error(`git checkout ${head} in ${dir} failed`);
  const r = await run('npm', ['ci'], dir, join(work, `${name}-npm-ci.log`));
  if (r.code !== 0) throw new Error(`npm ci in ${dir} failed: see ${join(work, `${name}-npm-ci.log`)}`);
  return dir;
}

const results = previous?.results ?? [];
async function suite(dir, index, mode) {
  const report = join(work, `run-${index}.json`);
  const log = join(work, `run-${index}.log`);
  const r = await run('npm', ['test'], dir, log, { KEYFRAME_TEST_REPORT: report });
  const closing = r.text.split('\n').filter((l) => l.startsWith('tests: ')).at(-1) ?? '(no closing line)';
  const failures = [];
  if (existsSync(report)) {
    const j = JSON.parse(readFileSync(report, 'utf8'));
    for (const f of j.testResults ?? []) {
      for (const a of f.assertionResults ?? []) if (a.status === 'failed') failures.push(`${f.name.replace(`${dir}/`, '')} › ${a.fullName}`);
      if (f.status === 'failed' && (f.assertionResults ?? []).every((a) => a.status !== 'failed')) failures.push(`${f.name.replace(`${dir}/`, '')} › (file failed: ${String(f.message ?? '').split('\n')[0]})`);
    }
  } else if (r.code !== 0) {
    failures.push(`(no test report: npm test failed before the tests; see ${log})`);
  }
  const entry = { run: index, mode, exitCode: r.code, seconds: r.seconds, closing, failures, log };
  results.push(entry);
  console.log(`run ${index} (${mode}): ${r.code === 0 ? 'passed' : 'FAILED'} in ${r.seconds} s — ${closing}${failures.length > 0 ? `\n  ${failures.join('\n  ')}` : ''}`);
}

console.log(`test:repeat: ${n} runs of npm test on clean clones of ${head.slice(0, 12)} (${singles + extra} alone, ${pairs} pairs side by side), ${cpus().length} cores; work in ${work}`);
const pairsRecorded = Math.floor(results.filter((r) => r.mode === 'pair').length / 2);
const a = await prepare('a');
const b = pairsRecorded < pairs ? await prepare('b') : undefined;
function summarise(final) {
  const failed = results.filter((r) => r.exitCode !== 0);
  const summary = {
    commit: head,
    date: new Date().toISOString(),
    complete: final,
    planned: n,
    machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
    runs: results.length,
    alone: results.filter((r) => r.mode === 'alone').length,
    sideBySide: results.filter((r) => r.mode === 'pair').length,
    failedRuns: failed.length,
    failures: failed.flatMap((r) => r.failures.map((f) => ({ run: r.run, mode: r.mode, test: f }))),
    results,
  };
  writeFileSync(summaryFile, `${JSON.stringify(summary, null, 2)}\n`);
  return summary;
}

let index = results.reduce((m, r) => Math.max(m, r.run), 0);
let alone = results.filter((r) => r.mode === 'alone').length;
if (previous !== undefined) console.log(`test:repeat: resuming ${summaryFile}: ${results.length} runs recorded (${alone} alone, ${pairsRecorded} pairs)`);
for (let p = pairsRecorded; p < pairs || alone < singles + extra; p++) {
  if (p < pairs) {
    const first = ++index;
    const second = ++index;
    await Promise.all([suite(a, first, 'pair'), suite(b, second, 'pair')]);
    summarise(false);
  }
  for (let k = 0; k < 2 && alone < singles + extra; k++, alone++) {
    await suite(a, ++index, 'alone');
    summarise(false);
  }
}

const summary = summarise(true);
const failed = results.filter((r) => r.exitCode !== 0);
console.log(`test:repeat: ${results.length} runs, ${failed.length} failed${failed.length > 0 ? `: ${summary.failures.map((f) => `run ${f.run} ${f.test}`).join('; ')}` : ''}; summary in ${summaryFile}`);
if (failed.length === 0 && !values.keep) {
  for (const d of ['a', 'b']) rmSync(join(work, d), { recursive: true, force: true });
}
process.exit(failed.length === 0 ? 0 : 1);
