"""The emoji cache (data/build_emoji.mjs: emoji.u8 + emoji.json, ~134 MB) as one lossless .tar.xz
(~21 MB), for a machine without node_modules or network (the lent GPU machine, training/gpu/).

Lossless on purpose: lossy WebP at q95 was 15 MB but only ~32 dB PSNR (chroma subsampling on
saturated emoji colours), PNG 31 MB, lossless WebP 21 MB and 150x slower; xz -9e on the raw bytes
is as small as any tried. unpack() checks the images' sha256 recorded at packing time.

    /usr/bin/python3 training/gpu/pack.py --emoji training/data/cache     # -> training/gpu/pack/emoji.tar.xz
"""
import io
import json
import lzma
import os
import tarfile

from .fileio import sha256

FILES = ("emoji.json", "emoji.u8")


def pack(cache, out):
    """cache: a folder with emoji.json + emoji.u8. Writes out (.tar.xz); returns its info."""
    info = {"files": {f: {"bytes": os.path.getsize(os.path.join(cache, f)), "sha256": sha256(os.path.join(cache, f))}
                      for f in FILES}}
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with tarfile.open(out + ".tmp", "w:xz", preset=9 | lzma.PRESET_EXTREME) as tar:
        blob = json.dumps(info).encode()
        ti = tarfile.TarInfo("pack.json")
        ti.size = len(blob)
        tar.addfile(ti, io.BytesIO(blob))
        for f in FILES:
            tar.add(os.path.join(cache, f), arcname=f)
    os.replace(out + ".tmp", out)
    info["packed_bytes"] = os.path.getsize(out)
    return info


def unpack(path, cache):
    """Writes emoji.json + emoji.u8 into cache (a folder) and checks them; returns the pack's info."""
    os.makedirs(cache, exist_ok=True)
    with tarfile.open(path, "r:xz") as tar:
        info = json.load(tar.extractfile("pack.json"))
        for f in FILES:
            src = tar.extractfile(f)
            with open(os.path.join(cache, f), "wb") as dst:
                for chunk in iter(lambda: src.read(1 << 20), b""):
                    dst.write(chunk)
    for f, want in info["files"].items():
        got = sha256(os.path.join(cache, f))
        if got != want["sha256"]:
            raise RuntimeError(f"{path}: {f} unpacked with sha256 {got}, packed {want['sha256']}")
    return info


def empty_cache(cache):
    """A cache with no emoji (shapes-only data): what the data stage reads when no pack is there."""
    os.makedirs(cache, exist_ok=True)
    with open(os.path.join(cache, "emoji.json"), "w") as f:
        json.dump({"items": []}, f)
    open(os.path.join(cache, "emoji.u8"), "wb").close()
