"""Stable Diffusion 3 / 3.5 ONNX export (optimum's diffusers layout) -> a browser-ready copy for WebDiT:

    /usr/bin/python3 training/convert_sd3.py <export folder> --out <new folder>
        [--block-size 32] [--min-size 256] [--shard-bytes 2000000000] [--no-fp16]
        [--quantize transformer,unet,text_encoder,text_encoder_2,text_encoder_3] [--id ID] [--name NAME]

What it writes (docs/model-folder.md, "Converting Stable Diffusion 3 / 3.5" in README.md):
  - the transformer's and text encoders' MatMul/Gemm weights (K and N >= --min-size) as 4-bit blocks
    of --block-size along K with a scale and a zero point each, run by onnxruntime's
    com.microsoft.MatMulNBits (training/webdit/nbits.py describes the scheme and its error bound);
  - every other float32 weight of >= 1024 elements that fits float16 stored as float16 and decoded by a
    Cast that onnxruntime folds at session creation: the graphs' inputs, outputs and compute stay float32
    (the VAE is only stored as float16: its few MatMuls are attention in the mid block);
  - external data in shards model.onnx_data, model.onnx_data_1, ... of at most --shard-bytes each
    (browsers refuse ArrayBuffers of 2 GB and more), each tensor pointing at its shard and offset;
  - configs, tokenizers, scheduler and model_index.json copied byte for byte;
  - manifest.json (format 2): every file the studio downloads with bytes and sha256, family "sd3".

Memory: the graphs are loaded without their external data and each tensor is read from its file in
slabs, so the peak is the graph structure + one weight's 4-bit output (1/8 of its float32 bytes) + a
few 16 MB slabs: about 0.3 GB for SD3.5 medium's transformer, whatever the model's size.
"""
import argparse
import os
import shutil
import sys
import time

TRAINING = os.path.dirname(os.path.abspath(__file__))
if TRAINING not in sys.path:
    sys.path.insert(0, TRAINING)

import onnx  # noqa: E402

from webdit.export import read_json, write_json  # noqa: E402
from webdit.fileio import sha256  # noqa: E402
from webdit.nbits import ConvertError, attribute_tensors, convert_graph, external_location  # noqa: E402

GRAPHS = ("transformer", "unet", "text_encoder", "text_encoder_2", "text_encoder_3", "vae_decoder", "vae_encoder")
QUANTIZE = ("transformer", "unet", "text_encoder", "text_encoder_2", "text_encoder_3")
SD3_CLASSES = ("StableDiffusion3Pipeline", "StableDiffusion3Img2ImgPipeline")
MANIFEST = "manifest.json"


def external_files(graph_path):
    """The external-data files a graph names (relative to its folder)."""
    m = onnx.load(graph_path, load_external_data=False)
    return {external_location(t) for t in list(m.graph.initializer) + list(attribute_tensors(m.graph))
            if t.data_location == onnx.TensorProto.EXTERNAL}


def check_source(src):
    """model_index.json of an SD3 pipeline and a transformer graph; an error says what is missing."""
    if not os.path.isdir(src):
        raise ConvertError(f"{src} is not a folder: pass the folder of an optimum SD3 export (the one with model_index.json).")
    index_path = os.path.join(src, "model_index.json")
    if not os.path.isfile(index_path):
        raise ConvertError(f"{src} has no model_index.json: pass the top folder of a diffusers-layout export "
                           "(optimum-cli export onnx --model stabilityai/stable-diffusion-3.5-medium <folder>).")
    index = read_json(index_path)
    if index.get("_class_name") not in SD3_CLASSES:
        raise ConvertError(f"{index_path} names {index.get('_class_name')!r}, not a Stable Diffusion 3 pipeline ({', '.join(SD3_CLASSES)}).")
    if not any(os.path.isfile(os.path.join(src, c, "model.onnx")) for c in ("transformer", "unet")):
        raise ConvertError(f"{src} has neither transformer/model.onnx nor unet/model.onnx: the export is incomplete.")
    return index


def manifest_files(out):
    """Every file the studio downloads: all but manifest.json and the top level's extras (README, ...)."""
    files = {}
    for base, _, names in os.walk(out):
        for n in names:
            rel = os.path.relpath(os.path.join(base, n), out).replace(os.sep, "/")
            if "/" not in rel and rel != "model_index.json":
                continue
            files[rel] = {"bytes": os.path.getsize(os.path.join(out, rel)), "sha256": sha256(os.path.join(out, rel))}
    return dict(sorted(files.items()))


def convert(src, out, *, block_size=32, min_size=256, fp16=True, shard_bytes=2_000_000_000, quantize=QUANTIZE,
            model_id=None, name=None, log=print):
    """Convert the export at src into out (which must not exist or be empty). Returns the report dict."""
    src, out = os.path.abspath(src), os.path.abspath(out)
    check_source(src)
    if out == src or out.startswith(src + os.sep):
        raise ConvertError(f"--out {out} is inside the export: write the copy elsewhere.")
    if os.path.exists(out) and os.listdir(out):
        raise ConvertError(f"{out} exists and is not empty: remove it or choose another --out.")
    os.makedirs(out, exist_ok=True)
    report = {"source": os.path.basename(src), "settings": {"bits": 4, "block_size": block_size, "min_size": min_size,
              "fp16": fp16, "shard_bytes": shard_bytes, "quantize": sorted(quantize)}, "graphs": {}}
    for entry in sorted(os.listdir(src)):
        path = os.path.join(src, entry)
        if not os.path.isdir(path):
            if entry != MANIFEST:   # a source manifest lists the source's files: ours is written below
                shutil.copy2(path, os.path.join(out, entry))
            continue
        graph = os.path.join(path, "model.onnx")
        skip = external_files(graph) if entry in GRAPHS and os.path.isfile(graph) else set()
        for base, _, names in os.walk(path):
            for n in names:
                rel = os.path.relpath(os.path.join(base, n), path)
                if entry in GRAPHS and (rel == "model.onnx" or rel in skip):
                    continue
                os.makedirs(os.path.join(out, entry, os.path.dirname(rel)), exist_ok=True)
                shutil.copy2(os.path.join(base, n), os.path.join(out, entry, rel))
        if entry not in GRAPHS or not os.path.isfile(graph):
            continue
        t0 = time.time()
        stats = convert_graph(graph, os.path.join(out, entry, "model.onnx"), quantize=entry in quantize,
                              block_size=block_size, min_size=min_size, fp16=fp16, shard_bytes=shard_bytes)
        stats["bytes_in"] = os.path.getsize(graph) + sum(os.path.getsize(os.path.join(path, f)) for f in skip)
        stats["bytes_out"] = stats["graph_bytes"] + sum(b for _, b in stats["shards"])
        stats["seconds"] = round(time.time() - t0, 2)
        report["graphs"][entry] = stats
        log(f"  {entry}: {stats['quantized']}/{stats['matmuls']} MatMul/Gemm -> MatMulNBits, "
            f"{stats['fp16_tensors']} weights fp16, {stats['bytes_in'] / 1e6:.2f} MB -> {stats['bytes_out'] / 1e6:.2f} MB "
            f"in {len(stats['shards'])} shard(s), {stats['seconds']} s")
    old = read_json(os.path.join(src, MANIFEST)) if os.path.isfile(os.path.join(src, MANIFEST)) else {}
    manifest = {"format": "webdit-model", "version": 2, "id": model_id or os.path.basename(out),
                "name": name or old.get("name") or f"{os.path.basename(src)} (4-bit MatMulNBits, WebDiT)",
                "family": "sd3", **({"defaults": old["defaults"]} if old.get("defaults") else {}),
                "files": manifest_files(out)}
    write_json(os.path.join(out, MANIFEST), manifest)
    report["bytes_in"] = sum(g["bytes_in"] for g in report["graphs"].values())
    report["bytes_out"] = sum(g["bytes_out"] for g in report["graphs"].values())
    return report


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", help="the optimum SD3 / SD3.5 export folder (model_index.json, transformer/, ...)")
    ap.add_argument("--out", required=True, help="the new folder (must not exist, or be empty)")
    ap.add_argument("--block-size", type=int, default=32, help="weights per 4-bit block along K (power of two >= 16)")
    ap.add_argument("--min-size", type=int, default=256, help="quantise a MatMul only when its weight's K and N are both >= this")
    ap.add_argument("--shard-bytes", type=int, default=2_000_000_000, help="most bytes per external-data shard")
    ap.add_argument("--no-fp16", action="store_true", help="keep the other float32 weights (and the block scales) float32")
    ap.add_argument("--quantize", default=",".join(QUANTIZE), help="components whose MatMuls become 4-bit")
    ap.add_argument("--id", default=None, help="manifest id (default: the --out folder's name)")
    ap.add_argument("--name", default=None, help="manifest name")
    ap.add_argument("--report", default=None, help="also write what was converted to this JSON file")
    a = ap.parse_args(argv)
    try:
        report = convert(a.src, a.out, block_size=a.block_size, min_size=a.min_size, fp16=not a.no_fp16,
                         shard_bytes=a.shard_bytes, quantize=[c for c in a.quantize.split(",") if c], model_id=a.id, name=a.name)
    except (ConvertError, OSError) as e:
        sys.exit(f"convert_sd3: {e}")
    if a.report:
        write_json(a.report, report)
    print(f"wrote {a.out}: graphs {report['bytes_in'] / 1e6:.1f} MB -> {report['bytes_out'] / 1e6:.1f} MB")
    return report


if __name__ == "__main__":
    main()
