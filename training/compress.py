"""Smaller model downloads: graphs with their large weights stored as fp16 (or int8 with per-channel
scales), decoded back to float32 by nodes that onnxruntime constant-folds when the session is created
(webdit/compress.py). Inputs, outputs, names and compute stay float32.

    # measure every variant against the fp32 graphs (bytes, image PSNR of the full pipeline in
    # onnxruntime-node, ms per transformer forward in onnxruntime-node and WASM); writes report.json
    /usr/bin/python3 training/compress.py report --fp32 public/models/webdit-tiny \\
        --fixtures src/engine/__fixtures__/webdit-tiny.json --out training/runs/compress
    #   (once the folder is compressed, its fp32 graphs come from git: --fp32-rev 846cc4e)
    # compress a folder in place with one variant (manifest rewritten; idempotent)
    /usr/bin/python3 training/compress.py apply public/models/webdit-tiny --variant "fp16 + int8 text encoder"
    # one graph
    /usr/bin/python3 training/compress.py graph in.onnx out.onnx --int8 Gather,MatMul,Gemm
    # timing only: the fp32 graphs (from git) vs the folder, interleaved, onnxruntime-node and WASM
    /usr/bin/python3 training/compress.py time public/models/webdit-tiny --fp32-rev 846cc4e --rounds 60
"""
import argparse
import json
import os
import subprocess

from webdit.compress import VARIANTS, Policy, compress_file, compress_folder, download_bytes
from webdit.export import ROOT, write_json


def fp32_from_git(rev, folder, dst):
    """The folder's downloaded files (its manifest at rev) as they were at git revision rev."""
    rel = os.path.relpath(os.path.abspath(folder), ROOT).replace(os.sep, "/")
    show = lambda p: subprocess.run(["git", "show", f"{rev}:{rel}/{p}"], cwd=ROOT, check=True, capture_output=True).stdout  # noqa: E731
    manifest = json.loads(show("manifest.json"))
    for p in list(manifest["files"]) + ["manifest.json"]:
        os.makedirs(os.path.dirname(os.path.join(dst, p)) or dst, exist_ok=True)
        with open(os.path.join(dst, p), "wb") as f:
            f.write(show(p))
    return dst


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("report", help="measure every variant against the fp32 graphs")
    r.add_argument("--fp32", default=os.path.join(ROOT, "public", "models", "webdit-tiny"), help="the fp32 model folder")
    r.add_argument("--fp32-rev", default=None, help="take the --fp32 folder's files from this git revision instead")
    r.add_argument("--fixtures", default=os.path.join(ROOT, "src", "engine", "__fixtures__", "webdit-tiny.json"))
    r.add_argument("--out", default=os.path.join(ROOT, "training", "runs", "compress"))
    r.add_argument("--variants", default=None, help="comma list of variant names (default: all)")
    r.add_argument("--extra", type=int, default=24, help="extra prompts at the defaults, besides the fixture runs")
    r.add_argument("--rounds", type=int, default=30, help="interleaved timing rounds, onnxruntime-node")
    r.add_argument("--repeats", type=int, default=1, help="runs per round, onnxruntime-node")
    r.add_argument("--wasm-rounds", type=int, default=12)
    r.add_argument("--wasm-repeats", type=int, default=1)
    r.add_argument("--max-bytes", type=int, default=30_000_000)
    r.add_argument("--min-psnr", type=float, default=40.0)
    a = sub.add_parser("apply", help="compress a model folder with one variant (in place, or into --out)")
    a.add_argument("folder")
    a.add_argument("--variant", required=True, choices=list(VARIANTS))
    a.add_argument("--out", default=None)
    t = sub.add_parser("time", help="ms per transformer forward (batch 2, 1 thread), folders interleaved")
    t.add_argument("folders", nargs="+", help="model folders; the first is the baseline")
    t.add_argument("--fp32-rev", default=None, help="prepend the shipped folder's files at this git revision as the baseline")
    t.add_argument("--runtimes", default="node,wasm")
    t.add_argument("--rounds", type=int, default=60)
    t.add_argument("--out", default=None, help="also write the result here (JSON)")
    g = sub.add_parser("graph", help="compress one graph")
    g.add_argument("src")
    g.add_argument("dst")
    g.add_argument("--int8", default="", help="consumer op types whose weights go int8 (Gather,MatMul,Gemm,Conv)")
    g.add_argument("--min-elements", type=int, default=4096)
    g.add_argument("--scheme", default="castmul", choices=["castmul", "dq"])
    args = ap.parse_args(argv)

    if args.cmd == "report":
        from webdit.compress_eval import evaluate_variants, table
        fp32 = args.fp32
        if args.fp32_rev:
            fp32 = fp32_from_git(args.fp32_rev, args.fp32, os.path.join(args.out, "fp32"))
        names = [n.strip() for n in args.variants.split(",")] if args.variants else None
        rep = evaluate_variants(fp32, args.out, args.fixtures, names, args.extra, args.rounds, args.repeats,
                                args.wasm_rounds, args.wasm_repeats, args.max_bytes, args.min_psnr)
        if args.fp32_rev:
            rep["fp32_rev"] = args.fp32_rev
            write_json(os.path.join(args.out, "report.json"), rep)
        print(table(rep))
        print(json.dumps({"chosen": rep["chosen"], "report": os.path.join(args.out, "report.json")}))
    elif args.cmd == "time":
        from webdit.compress_eval import time_transformers
        from webdit.ort_pipeline import OrtServer
        folders = list(args.folders)
        if args.fp32_rev:
            folders.insert(0, fp32_from_git(args.fp32_rev, os.path.join(ROOT, "public", "models", "webdit-tiny"),
                                            os.path.join(ROOT, "training", "runs", "compress", "fp32")))
        res = {"load_average_start": os.getloadavg()}
        with OrtServer() as srv:
            for rt in args.runtimes.split(","):
                times = time_transformers(srv, {f: f for f in folders}, rt, args.rounds, 1)
                base = times[folders[0]]
                res[rt] = {f: {"median_ms": x["median_ms"], "min_ms": x["min_ms"], "load_ms": x["load_ms"],
                               "median_vs_first": round(x["median_ms"] / base["median_ms"], 3),
                               "min_vs_first": round(x["min_ms"] / base["min_ms"], 3)} for f, x in times.items()}
        res["load_average_end"] = os.getloadavg()
        print(json.dumps(res, indent=1))
        if args.out:
            write_json(args.out, res)
    elif args.cmd == "apply":
        out = args.out or args.folder
        sizes, manifest = compress_folder(args.folder, out, VARIANTS[args.variant])
        print(json.dumps({"folder": out, "variant": args.variant, "graphs": sizes, "download_bytes": download_bytes(out)}, indent=1))
    else:
        pol = Policy(min_elements=args.min_elements, int8_ops=frozenset(o for o in args.int8.split(",") if o), scheme=args.scheme)
        before, after, report = compress_file(args.src, args.dst, pol)
        print(json.dumps({"before": before, "after": after,
                          "fp16": sum(1 for r in report.values() if r["kind"] == "fp16"),
                          "int8": sum(1 for r in report.values() if r["kind"] == "int8")}))


if __name__ == "__main__":
    main()
