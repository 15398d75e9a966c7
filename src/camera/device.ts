/** The pipeline's signing side from an opened device: its key store signs, its chain goes into every session. */
import type { Device } from '../pki/device.js';
import { certsToPem } from '../pki/pem.js';
import { openUnitCounter } from '../signing/counter-file.js';
import { deviceSigner } from '../signing/device.js';
import type { PipelineOptions } from './pipeline.js';

export function devicePipelineOptions(device: Device, o: Omit<PipelineOptions, 'serial' | 'chainPem' | 'newSigner' | 'sign' | 'counter'>): PipelineOptions {
  const counter = openUnitCounter(device.dir);
  const label = device.config.keyLabel;
  return {
    serial: device.config.serial,
    chainPem: certsToPem(device.chain),
    newSigner: (start) => deviceSigner(device, { start, counter, ...(o.fps !== undefined ? { fps: o.fps } : {}) }),
    sign: (d) => device.store.sign(label, d),
    counter,
    ...o,
  };
}
