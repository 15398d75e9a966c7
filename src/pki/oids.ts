/**
 * Object identifiers. keyframe's own arc is a UUID OID (ITU-T X.667, arc 2.25): it needs no registration and
 * cannot collide. UUID 9c0595ed-5dcc-4c80-b156-a59d8980a4ab.
 */
export const KEYFRAME_ARC = '2.25.207388569711874098345078730055386965163';

/** Extended key usage: the key signs video (ONVIF Media Signing SEIs, fragment records). */
export const EKU_VIDEO_SIGNING = `${KEYFRAME_ARC}.1`;

/**
 * Extended key usage: the key signs evidence bundles (`keyframe export`). Only operator-CA exporter identities carry
 * it (`keyframe ca exporter-cert`), as the only usage and critical: a person or a recorder exporting evidence.
 */
export const EKU_EVIDENCE_EXPORT = `${KEYFRAME_ARC}.2`;

/** The policy of keyframe's own time-stamping authority (RFC 3161 TSTInfo.policy), `keyframe ca tsa-cert` identities. */
export const TSA_POLICY = `${KEYFRAME_ARC}.3.1`;

/** id-kp-timeStamping (RFC 3161 §2.3): the only extended key usage of a TSA certificate, and critical. */
export const EKU_TIME_STAMPING = '1.3.6.1.5.5.7.3.8';

export const EKU_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
export const EKU_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

/** X.520 serialNumber attribute: the device serial in the subject. */
export const ATTR_SERIAL_NUMBER = '2.5.4.5';
