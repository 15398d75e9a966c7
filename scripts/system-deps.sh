#!/usr/bin/env bash
# Makes sure the Debian packages the tests need are installed. As root, installs what is missing; otherwise
# prints the exact command and fails.
set -euo pipefail

# package → a file that proves it is installed
declare -A NEED=(
  [openssl]=/usr/bin/openssl
  [softhsm2]=/usr/lib/softhsm/libsofthsm2.so
  [opensc]=/usr/bin/pkcs11-tool
  [libengine-pkcs11-openssl]=/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so
  [ffmpeg]=/usr/bin/ffmpeg
  [chromium]=/usr/bin/chromium
  # GStreamer round trip of signed streams (test/signing/roundtrip.test.ts): gst-launch-1.0, and h264parse, which
  # lives in plugins-bad's video parsers
  [gstreamer1.0-tools]=/usr/bin/gst-launch-1.0
  [gstreamer1.0-plugins-bad]=/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstvideoparsersbad.so
  # the RTSP server of the camera-source tests (test/fixtures/rtsp-server.py): gst-rtsp-server through Python GI,
  # run with Debian's /usr/bin/python3
  [gir1.2-gst-rtsp-server-1.0]=/usr/lib/x86_64-linux-gnu/girepository-1.0/GstRtspServer-1.0.typelib
  [python3-gi]=/usr/lib/python3/dist-packages/gi/__init__.py
  # the viewer's browser tests trust the site's operator CA as a user does: certutil into Chromium's NSS database
  [libnss3-tools]=/usr/bin/certutil
)
if [[ "$(dpkg --print-architecture 2>/dev/null || echo amd64)" != amd64 ]]; then
  multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
  NEED[libengine-pkcs11-openssl]=/usr/lib/$multiarch/engines-3/pkcs11.so
  NEED[gstreamer1.0-plugins-bad]=/usr/lib/$multiarch/gstreamer-1.0/libgstvideoparsersbad.so
  NEED[gir1.2-gst-rtsp-server-1.0]=/usr/lib/$multiarch/girepository-1.0/GstRtspServer-1.0.typelib
fi

missing=()
for pkg in "${!NEED[@]}"; do
  [[ -e "${NEED[$pkg]}" ]] || missing+=("$pkg")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

cmd="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
if [[ $(id -u) -eq 0 ]]; then
  echo "keyframe: installing Debian packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
else
  echo "keyframe: the tests need Debian packages that are not installed: ${missing[*]}" >&2
  echo "install them as root with:" >&2
  echo "  sudo sh -c '$cmd'" >&2
  exit 1
fi
