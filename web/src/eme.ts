/**
 * W3C Encrypted Media Extensions with the ClearKey key system, for the live player (playback uses Shaka's own):
 * each `encrypted` event (a pssh in an init segment) opens a key session, whose request — the KIDs as base64url
 * JSON — goes to the KMS as a licence request; the KMS's JWK Set goes back into the session. The keys live in the
 * browser's CDM only; nothing here stores them.
 */
import type { Api } from './api.js';

export const CLEARKEY = 'org.w3.clearkey';

function initDataId(type: string, data: ArrayBuffer): string {
  let s = type + ':';
  for (const b of new Uint8Array(data)) s += b.toString(16).padStart(2, '0');
  return s;
}

export interface KeyEvents {
  /** The KMS refused the keys (no grant, expired grant) or could not be asked. */
  refused(message: string): void;
  /** A key became usable. */
  usable(): void;
}

/**
 * Attaches ClearKey to `video` for content of `mime` protected with `scheme` (cenc or cbcs); resolves once the
 * element has its MediaKeys. Returns a function that stops listening.
 */
export async function attachClearKey(video: HTMLVideoElement, api: Api, mime: string, scheme: string, events: KeyEvents): Promise<() => void> {
  const access = await navigator.requestMediaKeySystemAccess(CLEARKEY, [{ initDataTypes: ['cenc', 'keyids'], videoCapabilities: [{ contentType: mime, encryptionScheme: scheme }] }]);
  const keys = await access.createMediaKeys();
  await video.setMediaKeys(keys);
  const seen = new Set<string>();
  const sessions: MediaKeySession[] = [];
  const onEncrypted = (e: MediaEncryptedEvent): void => {
    if (e.initData === null) return;
    const id = initDataId(e.initDataType, e.initData);
    if (seen.has(id)) return;
    seen.add(id);
    const session = keys.createSession('temporary');
    sessions.push(session);
    session.addEventListener('message', (m: MediaKeyMessageEvent) => {
      api
        .licence(m.message)
        .then((licence) => session.update(licence))
        .catch((err: unknown) => {
          seen.delete(id); // a later init segment may ask again (a grant added meanwhile)
          events.refused(err instanceof Error ? err.message : String(err));
        });
    });
    session.addEventListener('keystatuseschange', () => {
      session.keyStatuses.forEach((status) => {
        if (status === 'usable') events.usable();
      });
    });
    session.generateRequest(e.initDataType, e.initData).catch((err: unknown) => events.refused(`the browser could not ask for a key: ${String(err)}`));
  };
  video.addEventListener('encrypted', onEncrypted);
  return () => {
    video.removeEventListener('encrypted', onEncrypted);
    for (const s of sessions) void s.close().catch(() => undefined);
  };
}
