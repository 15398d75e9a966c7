/**
 * Playback of a recorded range with Shaka Player: the NVR's DASH manifest for [from, to) (src/nvr/mpd.ts: a Period
 * per camera session and key epoch, each with its KID and the KMS's ClearKey licence URL), segments and manifest
 * fetched with the access token, licences asked of the KMS with the session's cookie and CSRF token. Presentation
 * time t is wall-clock time from + t·1000 ms (Period@start is the run's start relative to the range's start).
 */
import shaka from 'shaka-player/dist/shaka-player.dash-es2021.js';
import type { Api } from './api.js';

let installed = false;

export interface PlaybackEvents {
  /** A problem worth showing: a refused key, a missing segment, an unsupported browser. */
  error(message: string): void;
  /** The bytes of a media or init segment as the player got them, with its URL (for the viewer's own check). */
  segment?(url: string, data: ArrayBuffer): void;
}

interface ShakaError {
  code?: number;
  category?: number;
  data?: unknown[];
}

/** What to tell the viewer about a Shaka error. */
export function describeShakaError(e: ShakaError): string {
  const nested = (e.data ?? []).find((d): d is ShakaError => typeof d === 'object' && d !== null && 'code' in d);
  const status = (e.data ?? []).find((d): d is number => typeof d === 'number' && d >= 400 && d < 600) ?? (nested?.data ?? []).find((d): d is number => typeof d === 'number' && d >= 400 && d < 600);
  // 6007 LICENSE_REQUEST_FAILED (status 403: no grant), 6012 NO_LICENSE_SERVER_GIVEN, 1001 BAD_HTTP_STATUS
  if (e.code === 6007) return status === 403 ? 'No key: your grants do not cover this recording (camera, time or right), or they have expired.' : 'The key server could not be reached or refused the request.';
  if (e.code === 1001 && status === 403) return 'Your grants do not cover this recording.';
  if (e.code === 1001 && status === 404) return 'A segment of this range is no longer on the NVR.';
  return `Playback failed (Shaka error ${e.code ?? '?'}).`;
}

export class RangePlayer {
  private readonly player: shaka.Player;

  private constructor(
    private readonly video: HTMLVideoElement,
    player: shaka.Player,
  ) {
    this.player = player;
  }

  static async create(video: HTMLVideoElement, api: Api, events: PlaybackEvents): Promise<RangePlayer> {
    if (!installed) {
      shaka.polyfill.installAll();
      installed = true;
    }
    if (!shaka.Player.isBrowserSupported()) throw new Error('This browser cannot play DASH with encrypted media.');
    const player = new shaka.Player();
    await player.attach(video);
    player.configure({
      streaming: { bufferingGoal: 20, rebufferingGoal: 1, bufferBehind: 30, retryParameters: { maxAttempts: 3, baseDelay: 500, timeout: 15_000 } },
      manifest: { retryParameters: { maxAttempts: 2, timeout: 15_000 } },
      drm: { retryParameters: { maxAttempts: 1, timeout: 15_000 } },
    });
    const LICENSE: number = shaka.net.NetworkingEngine.RequestType.LICENSE;
    const engine = player.getNetworkingEngine();
    engine?.registerRequestFilter(async (type: number, request: { uris: string[]; headers: Record<string, string>; allowCrossSiteCredentials: boolean }) => {
      if (type === LICENSE) {
        request.allowCrossSiteCredentials = true;
        const csrf = api.session?.csrf;
        if (csrf !== undefined) request.headers['x-csrf-token'] = csrf;
        return;
      }
      // the NVR's own manifests and media (same origin) carry the access token
      if (request.uris.every((u) => new URL(u, location.href).origin === location.origin)) request.headers['authorization'] = `Bearer ${await api.accessToken()}`;
    });
    const SEGMENT: number = shaka.net.NetworkingEngine.RequestType.SEGMENT;
    engine?.registerResponseFilter((type: number, response: { uri: string; data: ArrayBuffer | ArrayBufferView }) => {
      if (type !== SEGMENT || events.segment === undefined) return;
      const d = response.data;
      events.segment(response.uri, d instanceof ArrayBuffer ? d : (d.buffer.slice(d.byteOffset, d.byteOffset + d.byteLength) as ArrayBuffer));
    });
    player.addEventListener('error', (ev: Event) => events.error(describeShakaError((ev as Event & { detail: ShakaError }).detail)));
    return new RangePlayer(video, player);
  }

  /** Loads [from, to) and starts at wall-clock time `at` (ms). */
  async load(serial: string, from: number, to: number, at: number): Promise<void> {
    const q = new URLSearchParams({ from: new Date(from).toISOString(), to: new Date(to).toISOString() });
    await this.player.load(`/v1/cameras/${encodeURIComponent(serial)}/manifest.mpd?${q.toString()}`, Math.max(0, (at - from) / 1000));
    this.video.muted = true;
    await this.video.play().catch(() => undefined);
  }

  async destroy(): Promise<void> {
    await this.player.destroy();
  }
}
