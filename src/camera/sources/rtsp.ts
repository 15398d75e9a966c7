/**
 * RTSP/RTSPS pull of an existing camera: ffmpeg over TCP interleaved (`-rtsp_transport tcp`), the H.264 copied as
 * it is (no re-encode). RTP carries only presentation times, and ffmpeg's guesses of the first decode times of a
 * stream with B-frames are wrong, so ffmpeg writes placeholder DTS (the packet count, through the setts bitstream
 * filter) and the source derives DTS from the PTS (dts.ts). A picture without a time stamp (ffmpeg's first one
 * sometimes) gets PTS = placeholder and is dropped.
 *
 * The URL's credentials go to ffmpeg only: the description, status, errors and kept stderr show `***` instead.
 * (They are on ffmpeg's command line, so visible in /proc to local users of the same machine.)
 * RTSPS caveat: ffmpeg 5.1's RTSP demuxer opens TLS without verifying the camera's certificate (it has no
 * tls_verify/ca_file option), so rtsps:// here protects against passive eavesdroppers only, not against an active
 * man in the middle. Verifying it needs a TLS hop of our own (e.g. Node's tls.connect with the camera's CA,
 * relayed to ffmpeg over loopback) — not done yet.
 * Connection failures and a server that goes away are transient: 'lost', state 'reconnecting', retried with
 * back-off. A stream that is not H.264, or has no video, is a permanent SourceError naming the source.
 */
import { KeyframeError } from '../../errors.js';
import { FfmpegSource, SourceError, type FfmpegSourceOptions, type RunPlan } from './base.js';
import { FfmpegExitError, TS_OUTPUT_ARGS, type FfmpegProcess } from './ffmpeg.js';
import { NotH264Error, notH264Message, videoCodecName } from './mpegts.js';

export interface RtspOptions {
  /** ffmpeg's socket I/O time-out: a server silent this long is gone, ms (default 5000). */
  readonly ioTimeoutMs?: number;
  /** No picture for this long stops the run (then retried), ms (default 10 000). */
  readonly stallMs?: number;
}

/** The URL without credentials (`rtsp://***@host:port/path` when it has some). */
export function redactUrl(url: URL): string {
  const copy = new URL(url.href);
  const had = copy.username !== '' || copy.password !== '';
  copy.username = '';
  copy.password = '';
  return had ? copy.href.replace(/^(rtsps?:\/\/)/, '$1***@') : copy.href;
}

/** Parses and checks an rtsp:// or rtsps:// URL; an InputError-like SourceError otherwise. */
export function parseRtspUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new SourceError('RTSP source', 'not a valid URL', { permanent: true, code: 'KF_ERR_INPUT' });
  }
  if (url.protocol !== 'rtsp:' && url.protocol !== 'rtsps:') throw new SourceError(redactUrl(url), 'an RTSP source needs an rtsp:// or rtsps:// URL', { permanent: true, code: 'KF_ERR_INPUT' });
  if (url.hostname === '') throw new SourceError(redactUrl(url), 'the URL has no host', { permanent: true, code: 'KF_ERR_INPUT' });
  return url;
}

const VIDEO_CODEC = /Stream #\d+:\d+[^:]*: Video: ([A-Za-z0-9_]+)/;

export class RtspSource extends FfmpegSource {
  private readonly url: URL;
  private readonly secrets: string[];
  private readonly rtsp: RtspOptions;
  /** The codec ffmpeg reported for the input's video, when it is not H.264 (a permanent condition). */
  private wrongCodec: string | undefined;
  private noVideo = false;

  constructor(url: string | URL, options: RtspOptions = {}, ffmpeg: FfmpegSourceOptions = {}) {
    const parsed = typeof url === 'string' ? parseRtspUrl(url) : parseRtspUrl(url.href);
    super(redactUrl(parsed), ffmpeg);
    this.url = parsed;
    this.rtsp = options;
    const secrets = new Set<string>();
    for (const v of [parsed.username, parsed.password]) {
      if (v === '') continue;
      secrets.add(v);
      try {
        secrets.add(decodeURIComponent(v));
      } catch {
        // not percent-encoded
      }
    }
    // longest first, so that a password containing the user name is removed whole
    this.secrets = [...secrets].filter((s) => s.length > 0).sort((a, b) => b.length - a.length);
  }

  protected override redact(text: string): string {
    let out = text.split(this.url.href).join(this.description);
    for (const s of this.secrets) out = out.split(s).join('***');
    return out;
  }

  protected plan(): RunPlan {
    const io = this.rtsp.ioTimeoutMs ?? 5000;
    const args = [
      '-nostdin', '-hide_banner', '-loglevel', 'info', '-nostats',
      '-rtsp_transport', 'tcp', '-timeout', String(io * 1000),
      '-i', this.url.href,
      '-map', '0:v:0', '-c', 'copy',
      // placeholder DTS: the packet count, 10 s before any PTS (ffmpeg shifts all by the same amount to make them positive)
      '-bsf:v', 'setts=dts=N-900000:pts=if(eq(PTS\\,NOPTS)\\,N-900000\\,PTS)',
      ...TS_OUTPUT_ARGS,
    ];
    return { args, stallMs: this.rtsp.stallMs ?? 10_000, ptsOnly: true };
  }

  protected override onStart(proc: FfmpegProcess): void {
    proc.onStderr = (text) => {
      const m = VIDEO_CODEC.exec(text);
      if (m !== null && m[1] !== 'h264') {
        this.wrongCodec = m[1];
        void proc.stop();
      }
      if (/matches no streams/.test(text)) this.noVideo = true;
    };
  }

  protected override permanentError(error: unknown): SourceError | undefined {
    // ffmpeg's stream report and the demuxer's PMT race to notice a wrong codec: both say the same sentence
    if (this.wrongCodec !== undefined) return new SourceError(this.description, notH264Message(videoCodecName(this.wrongCodec)), { permanent: true });
    if (error instanceof NotH264Error) return new SourceError(this.description, notH264Message(error.codec), { permanent: true });
    if (this.noVideo) return new SourceError(this.description, 'the stream has no video', { permanent: true });
    if (error instanceof FfmpegExitError && /cannot run ffmpeg/.test(error.message)) return new SourceError(this.description, error.message, { permanent: true, code: 'KF_ERR_UNAVAILABLE' });
    if (error instanceof SourceError && error.permanent) return error;
    if (error instanceof KeyframeError && !(error instanceof FfmpegExitError) && error.code !== 'KF_ERR_MEDIA') return new SourceError(this.description, error.message, { permanent: true, code: error.code });
    return undefined;
  }

  protected retryAfter(): boolean {
    return true;
  }
}
