#!/usr/bin/env bash
# Set up everything imgjuicer needs on a fresh Debian machine: apt packages, a venv with
# pinned Python packages, and offline data (WordNet for nltk).  Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}

apt_pkgs=$(grep -vE '^\s*(#|$)' tools/apt-packages.txt 2>/dev/null | sort -u | tr '\n' ' ' || true)
if [ -n "$apt_pkgs" ]; then
  missing=$(for p in $apt_pkgs; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"; done)
  if [ -n "$missing" ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    echo "installing apt packages: $missing"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
  fi
fi

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
# torch first, by exact version: a bare 'torch' requirement would pull a multi-GB CUDA build
# from the index instead of the wheel on local disk.
$PIP install -q torch==2.14.1 torchvision==0.29.1 2>&1 | grep -v '^WARNING: Location' || true
$PIP install -q -c requirements.lock -e '.[all,test]' 2>&1 | grep -v '^WARNING: Location' || true
"$VENV/bin/python" -c "import ops, pipelines, torch, datasets, ray" >/dev/null
if [ -f tools/setup_offline_data.py ]; then
  "$VENV/bin/python" tools/setup_offline_data.py
fi
# the generation-loss scorer's photos (Debian wallpaper packages + wheel samples): the
# held-out-photo tests need them; ~400 MB of downloads, once (prepared again only when the
# selection's version changes)
"$VENV/bin/python" tools/prepare_scorer_photos.py --out data/scorer/photos \
  --cache data/scorer/cache --if-stale \
  || echo "warning: scorer photos not prepared; tests/scorer held-out tests will skip" >&2
echo "imgjuicer installed in $VENV"
