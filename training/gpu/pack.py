"""Build what run.sh needs on a machine without node_modules or network: the emoji cache as one
lossless .tar.xz (webdit/emoji_pack.py), into training/gpu/pack/ (git-ignored; the device tool
carries it: carry=["training/gpu/pack"]). Renders the cache first (node, npm packages) if missing.

    /usr/bin/python3 training/gpu/pack.py                          # cache: training/data/cache
    /usr/bin/python3 training/gpu/pack.py --emoji /tmp/emoji       # an existing cache folder
"""
import argparse
import json
import os
import sys

TRAINING = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TRAINING)

from webdit import data as D  # noqa: E402
from webdit.emoji_pack import pack  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--emoji", default=None, help="emoji cache folder; default $WEBDIT_DATA_CACHE or training/data/cache")
    ap.add_argument("--out", default=os.path.join(TRAINING, "gpu", "pack", "emoji.tar.xz"))
    a = ap.parse_args(argv)
    cache = a.emoji or D.default_cache()
    if not os.path.exists(os.path.join(cache, "emoji.json")):
        D.build_emoji_cache(cache)
    print(json.dumps({"out": a.out, **pack(cache, a.out)}))


if __name__ == "__main__":
    main()
