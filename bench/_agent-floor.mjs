// The camera agent benchmark's floor (bench/camera-agent-bench.mjs): the least a live uploader in Node does for the
// same stream on this machine, as its own process. It reads the same clip with the agent's Annex-B splitter and
// access-unit assembler (a picture may be several slices), paces
// it in real time picture by picture (as the agent's file source does), and streams it to a TLS server as the
// agent's live streamer does: one chunked HTTPS PUT per second of video (a GOP), a write per 200 ms (a CMAF chunk).
// No signing, no packaging, no ring buffer, no records, no status: what is left when all of that costs nothing.
//
//   node bench/_agent-floor.mjs CLIP PORT   (runs until killed)
import { createReadStream } from 'node:fs';
import { Agent, request } from 'node:https';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

const [clip, port] = process.argv.slice(2);
const { AccessUnitAssembler, AnnexBSplitter, isVcl, nalType } = await import(new URL('../dist/media/h264/index.js', import.meta.url).href);
const FPS = 25;
const PER_CHUNK = 5; // 200 ms
const PER_SEGMENT = 25; // 1 s
const agent = new Agent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false });
const t0 = performance.now();
let delivered = 0;
let req;
let pending = [];

function put() {
  const r = request({ host: '127.0.0.1', port: Number(port), method: 'PUT', path: '/floor', agent, headers: { 'content-type': 'application/octet-stream' } });
  r.on('response', (res) => res.resume());
  r.on('error', (e) => {
    console.error(`floor: ${e.message}`);
    process.exit(1);
  });
  return r;
}

const hasPicture = (au) => au.nals.some((n) => isVcl(nalType(n)));
async function send(au) {
  if (hasPicture(au)) {
    const wait = t0 + (delivered * 1000) / FPS - performance.now();
    if (wait > 1) await sleep(wait);
    delivered++;
    if (delivered % PER_SEGMENT === 1) {
      req?.end();
      req = put();
    }
  }
  pending.push(...au.nals);
  if (hasPicture(au) && delivered % PER_CHUNK === 0) {
    req.write(Buffer.concat(pending));
    pending = [];
  }
}

for (;;) {
  const splitter = new AnnexBSplitter();
  const assembler = new AccessUnitAssembler();
  for await (const chunk of createReadStream(clip, { highWaterMark: 1 << 20 })) for (const nal of splitter.push(chunk)) for (const au of assembler.push(nal)) await send(au);
  for (const nal of splitter.flush()) for (const au of assembler.push(nal)) await send(au);
  for (const au of assembler.flush()) await send(au);
}
