"""Small file helpers with no heavy imports (the GPU machine's data packing uses them too)."""
import hashlib


def sha256(path):
    """sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
