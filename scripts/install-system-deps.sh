#!/usr/bin/env bash
# Installs the Debian packages Switchboard's tests and sandbox need, only where missing.
#   mmdebstrap     builds the sandbox Asterisk root filesystem (Debian sid)
#   sip-tester     SIPp, the scripted SIP caller used by end-to-end tests and benchmarks
#   sox espeak-ng  synthesise and convert test speech offline
#   flite          offline text-to-speech
#   docker-compose validates docker-compose.yml without an engine
#   libpocketsphinx3 libsphinxbase3 pocketsphinx-en-us   offline speech recognition (FFI) and its model
set -euo pipefail
declare -A pkg_for=(
  [mmdebstrap]=mmdebstrap
  [sipp]=sip-tester
  [sox]=sox
  [espeak-ng]=espeak-ng
  [flite]=flite
  [docker-compose]=docker-compose
)
missing=()
for cmd in "${!pkg_for[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${pkg_for[$cmd]}")
done
# Libraries and data have no command to look for: ask dpkg.
for pkg in libpocketsphinx3 libsphinxbase3 pocketsphinx-en-us; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi
echo "system packages: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
