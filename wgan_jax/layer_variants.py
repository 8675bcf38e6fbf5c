"""Other implementations of the conv layers, swapped in while a step is traced (A/B benchmarks).

The models call the conv functions through the module, `layers.conv_stride2(x, kernel, impl)`,
each time they are traced: the function bound to that name in `wgan_jax.layers` when a step is
traced (lowered) is the one compiled into it. `swapped` rebinds some of them for the length of a
`with` block and puts the library's back when it ends, error or not; `load` reads them from
another copy of layers.py (e.g. `git show REV:wgan_jax/layers.py`), loaded as a module of its
own. A step compiled inside the block keeps the swapped layers; anything traced after it gets
the library's. This is the only supported way to run the models with other layer functions
(benchmarks/ab_step.py uses it); tests/test_ab_step.py checks that the models still look the
functions up this way.
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Callable, Iterator, Mapping

from wgan_jax import layers

SWAPPABLE = ("conv_stride2", "deconv_stride2", "conv_stride1")


def load(path: str, name: str = "layers_variant") -> dict[str, Callable]:
    """The `SWAPPABLE` functions of the layers file at `path` (a module named `name`)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no layers file {path!r}")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    missing = [f for f in SWAPPABLE if not callable(getattr(module, f, None))]
    if missing:
        raise ValueError(f"{path} defines no {', '.join(missing)}: not a copy of layers.py")
    return {f: getattr(module, f) for f in SWAPPABLE}


@contextlib.contextmanager
def swapped(functions: Mapping[str, Callable]) -> Iterator[None]:
    """Within the block, models traced use `functions` (name -> function) as their layers."""
    unknown = sorted(set(functions) - set(SWAPPABLE))
    if unknown:
        raise ValueError(f"cannot swap {unknown}: only {SWAPPABLE}")
    own = {f: getattr(layers, f) for f in functions}
    try:
        for f, fn in functions.items():
            setattr(layers, f, fn)
        yield
    finally:
        for f, fn in own.items():
            setattr(layers, f, fn)
