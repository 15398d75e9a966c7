/**
 * One live tile: the camera's live view (live-player.ts) with its state in words — playing and how far behind the
 * camera (glass to glass, from the pixel clock), waiting, offline, or refused with the reason (no grant, session
 * ended) instead of a black picture. Live video is shown as it arrives, before its signed record exists: the badge
 * says so ("live, not yet verified"); recorded playback is where verification is shown.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { JSX } from 'preact';
import type { Api } from './api.js';
import { LivePlayer } from './live-player.js';
import type { LiveState } from './live-player.js';

function phaseText(s: LiveState): string {
  switch (s.phase) {
    case 'connecting':
      return 'connecting…';
    case 'waiting':
      return s.message ?? 'waiting for video…';
    case 'playing':
      return 'live';
    case 'refused':
      return s.message ?? 'refused';
    case 'offline':
      return s.message ?? 'offline';
  }
}

export function LiveTile(p: { readonly api: Api; readonly serial: string; readonly onOpen?: () => void; readonly large?: boolean }): JSX.Element {
  const video = useRef<HTMLVideoElement>(null);
  const [state, setState] = useState<LiveState>({ phase: 'connecting', frames: 0, stalls: 0 });
  useEffect(() => {
    const v = video.current;
    if (v === null) return undefined;
    const player = new LivePlayer(v, p.api, p.serial, setState);
    player.start();
    return () => player.stop();
  }, [p.api, p.serial]);
  const latency = state.latencyMs !== undefined ? `${(state.latencyMs / 1000).toFixed(2)} s` : undefined;
  return (
    <figure
      class={`tile phase-${state.phase}${p.large === true ? ' large' : ''}`}
      data-serial={p.serial}
      data-phase={state.phase}
      data-frames={state.frames}
      data-latency-ms={state.latencyMs ?? ''}
      data-first-frame-ms={state.firstFrameMs ?? ''}
      data-stalls={state.stalls}
    >
      <video ref={video} muted playsInline aria-label={`live view of ${p.serial}`} />
      {state.phase !== 'playing' && (
        <div class="tile-message" role={state.phase === 'refused' ? 'alert' : 'status'}>
          {phaseText(state)}
        </div>
      )}
      <figcaption>
        {p.onOpen !== undefined ? (
          <a
            href={`#/camera/${encodeURIComponent(p.serial)}`}
            onClick={(e) => {
              e.preventDefault();
              p.onOpen?.();
            }}
          >
            {p.serial}
          </a>
        ) : (
          <span>{p.serial}</span>
        )}
        <span class={`badge ${state.phase === 'playing' ? 'live' : 'idle'}`}>{state.phase === 'playing' ? 'live · not yet verified' : state.phase}</span>
        {latency !== undefined && (
          <span class="badge latency" title="glass to glass, from the camera's pixel clock">
            {latency}
          </span>
        )}
      </figcaption>
    </figure>
  );
}
