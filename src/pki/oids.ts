/**
 * Object identifiers. keyframe's own arc is a UUID OID (ITU-T X.667, arc 2.25): it needs no registration and
 * cannot collide. UUID 9c0595ed-5dcc-4c80-b156-a59d8980a4ab.
 */
export const KEYFRAME_ARC = '2.25.207388569711874098345078730055386965163';

/** Extended key usage: the key signs video (ONVIF Media Signing SEIs, fragment records, exports). */
export const EKU_VIDEO_SIGNING = `${KEYFRAME_ARC}.1`;

export const EKU_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
export const EKU_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

/** X.520 serialNumber attribute: the device serial in the subject. */
export const ATTR_SERIAL_NUMBER = '2.5.4.5';
