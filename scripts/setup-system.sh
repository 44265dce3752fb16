#!/usr/bin/env bash
# Installs the Debian packages the tests and the training recipe need, when they are missing:
# Chromium (the e2e browser; Playwright cannot download its own here) and PyTorch + ONNX with
# OpenBLAS (without libopenblas0-pthread torch falls back to a ~15x slower reference BLAS).
set -euo pipefail
PKGS=(chromium python3-torch python3-onnx python3-numpy python3-pil python3-pytest libopenblas0-pthread fonts-dejavu-core)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "Installing Debian packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "error: missing packages ${missing[*]} and not root; install them with apt-get as root." >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
