"""`torchrun` (python -m torch.distributed.run) that also works with Debian's torch 1.13 on Python 3.11.

There, torchrun dies before starting any worker (AttributeError: 'NoneType' object has no attribute
'get' in elastic/multiprocessing/api.py to_map): Std.from_str("0") looks the value up by iterating
the IntFlag, and Python 3.11 no longer yields the zero (or composite) members, so the default
--redirects 0 / --tee 0 become None. Newer torch builds the flag from the int; so does this patch.
Anything else is torchrun's own: same arguments, same behaviour.

    /usr/bin/python3 training/gpu/torchrun.py --standalone --nproc_per_node=2 training/train.py --preset toy ...
"""


def _patch():
    try:
        from torch.distributed.elastic.multiprocessing import api
        broken = api.Std.from_str("0") is None
    except Exception:  # noqa: BLE001 - another torch: nothing to fix
        return
    if not broken:
        return
    from_str = api.Std.from_str

    def fixed(vm):
        got = from_str(vm)
        if got is None:  # a single value that the IntFlag iteration skipped
            return api.Std(int(vm))
        if isinstance(got, dict) and None in got.values():
            return {int(i): api.Std(int(v)) for i, v in (m.split(":") for m in vm.split(","))}
        return got

    api.Std.from_str = staticmethod(fixed)


if __name__ == "__main__":
    _patch()
    from torch.distributed.run import main
    main()
