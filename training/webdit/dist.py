"""Data-parallel training (DDP) for the recipe's stages, the same code on one process or many.

Under `torchrun` (RANK / WORLD_SIZE / LOCAL_RANK set) init() joins the process group (nccl on CUDA,
gloo on CPU) and pins the local GPU; every stage then runs on every rank:
  - train_loop (stages.py) wraps the model in DistributedDataParallel, and each rank draws its own
    batches (rank_rng: rank 0 the single-process stream, rank r > 0 a stream of its own), so the
    global batch is the preset's batch x the world size and the averaged gradient is the one of the
    concatenated batch; parameters (and the EMA, updated on every rank) stay identical everywhere;
  - rank 0 alone writes files (checkpoints, caches, the log, exports); the others wait at a barrier
    and read what it wrote (once());
  - anything that decides when to stop (the time budget) is decided on rank 0 and broadcast.
Without torchrun every helper is a no-op and a run is exactly what it was before DDP.

`virtual_ranks` (train.py --virtual-ranks N) makes one process draw the batches of N ranks and step
on their concatenation: the numbers of an N-process DDP run on one process (tests/test_ddp.py
checks the two agree), e.g. to reproduce a multi-GPU run on one device.
"""
import hashlib
import os

import numpy as np
import torch
import torch.distributed as dist

virtual_ranks = 1  # set by train.py --virtual-ranks (one process only)


def launched():
    """True under torchrun (or any launcher that sets WORLD_SIZE > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init(device):
    """Join the process group when launched by torchrun; returns the device to use ("cuda" means the
    local GPU: torch.cuda.set_device pins it, so the stages' .to("cuda") and autocast("cuda") work)."""
    if not launched() or dist.is_initialized():
        return device
    if device == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if device == "cuda" else "gloo")
    return device


def active():
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank():
    return dist.get_rank() if active() else 0


def world():
    return dist.get_world_size() if active() else 1


def is_main():
    return rank() == 0


def barrier():
    if active():
        dist.barrier()


def once(fn):
    """Rank 0 runs fn (which writes its file), then the others run it (and find the file)."""
    if not active():
        return fn()
    if is_main():
        out = fn()
        barrier()
    else:
        barrier()
        out = fn()
    return out


def rank_rng(seed, r):
    """The batch stream of rank r: rank 0's is RandomState(seed), exactly the single-process stream."""
    return np.random.RandomState(seed) if r == 0 else np.random.RandomState([seed, r])


def _tensor_device():
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def broadcast_int(value):
    """Rank 0's integer, on every rank (collective)."""
    if not active():
        return int(value)
    t = torch.tensor([int(value)], dtype=torch.int64, device=_tensor_device())
    dist.broadcast(t, 0)
    return int(t.item())


def mean_over_ranks(value):
    if not active():
        return float(value)
    t = torch.tensor([float(value)], dtype=torch.float64, device=_tensor_device())
    dist.all_reduce(t)
    return float(t.item()) / world()


def gather_objects(obj):
    """[rank 0's obj, rank 1's, ...] on every rank (collective)."""
    if not active():
        return [obj]
    out = [None] * world()
    dist.all_gather_object(out, obj)
    return out


def all_gather_cat(x):
    """Concatenate x (batch first) over ranks, gradients flowing back to every rank's part (contrastive
    losses over the global batch). Identity on one process. Each rank then computes the same global
    loss, so the gradient reaching its features is world x the true one; DDP's averaging over ranks
    divides it back: the step is the one of the concatenated batch."""
    if not active():
        return x
    import torch.distributed.nn.functional as DF
    return torch.cat(DF.all_gather(x))


def wrap(model, device):
    """DistributedDataParallel around model (a module whose forward computes the loss)."""
    from torch.nn.parallel import DistributedDataParallel as DDP
    ids = [torch.cuda.current_device()] if device == "cuda" else None
    return DDP(model, device_ids=ids, broadcast_buffers=False)  # the models' buffers are constants


def digest(batch):
    """A short fingerprint of a batch (its first tensor's bytes), to show which data a rank saw."""
    t = next(iter(batch.values())).detach().float().cpu().contiguous()
    return hashlib.sha1(t.numpy().tobytes()).hexdigest()[:10]


def cat_batches(batches):
    return {k: torch.cat([b[k] for b in batches]) for k in batches[0]}
