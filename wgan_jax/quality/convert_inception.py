"""Convert pytorch-fid's Inception-v3 weights to the Flax port's variables, saved as one `.npz`.

Sources: pytorch-fid's official state dict `pt_inception-2015-12-05-6726825d.pth` (read with
torch, which is only needed for this) or an `.npz` with the same keys, written on any machine
with torch by

    numpy.savez("fid_inception_torch.npz", **{k: v.numpy() for k, v in state_dict.items()})

Output: an uncompressed `.npz` of float32 arrays keyed by flattened Flax paths
('params/Mixed_5b/branch1x1/conv/kernel', 'batch_stats/Mixed_5b/branch1x1/bn/mean', ...);
`load_inception_params` reads it back into the `{"params", "batch_stats"}` pytree.

Mapping: conv `weight` OIHW -> `kernel` HWIO; BN `weight`, `bias`, `running_mean`, `running_var`
-> `scale`, `bias` (params) and `mean`, `var` (batch_stats); `fc.weight` (1008, 2048) -> `kernel`
(2048, 1008); `num_batches_tracked` is ignored.

    python -m wgan_jax.quality.convert_inception --source FILE.pth|FILE.npz --out inception_fid.npz
"""
from __future__ import annotations

import argparse
import functools
import os
import zipfile
import zlib
from collections.abc import Mapping

import jax.numpy as jnp
import numpy as np

from wgan_jax.quality.inception import InceptionWeightsError, unflatten_variables, variable_shapes

# Flax leaf -> torch leaf, for the leaves of BasicConv2d and fc.
_LEAF_NAMES = {"params/conv/kernel": "conv.weight", "params/bn/scale": "bn.weight",
               "params/bn/bias": "bn.bias", "batch_stats/bn/mean": "bn.running_mean",
               "batch_stats/bn/var": "bn.running_var", "params/fc/kernel": "fc.weight",
               "params/fc/bias": "fc.bias"}
_SHOWN = 5  # how many offending keys an error message lists


def _torch_name(flax_path: str) -> str:
    collection, *modules, layer, leaf = flax_path.split("/")
    suffix = _LEAF_NAMES[f"{collection}/{layer}/{leaf}"]
    return ".".join(modules + [suffix])


def _to_torch_layout(shape: tuple[int, ...]) -> tuple[int, ...]:
    if len(shape) == 4:  # HWIO -> OIHW
        return (shape[3], shape[2], shape[0], shape[1])
    if len(shape) == 2:  # (in, out) -> (out, in)
        return (shape[1], shape[0])
    return shape


@functools.cache
def fid_state_dict_shapes() -> dict[str, tuple[tuple[int, ...], str]]:
    """pytorch-fid state-dict key -> (torch shape, flattened Flax path), without
    `num_batches_tracked`."""
    return {_torch_name(path): (_to_torch_layout(shape), path)
            for path, shape in variable_shapes().items()}


def _list(keys) -> str:
    keys = sorted(keys)
    more = f" and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else ""
    return ", ".join(keys[:_SHOWN]) + more


def torch_to_flat(state_dict: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """pytorch-fid state dict (numpy arrays) -> {flattened Flax path: float32 array}."""
    expected = fid_state_dict_shapes()
    given = {k: v for k, v in state_dict.items() if not k.endswith("num_batches_tracked")}
    missing = expected.keys() - given.keys()
    if missing:
        raise InceptionWeightsError(
            f"not the FID Inception-v3 state dict: {len(missing)} keys missing, e.g. "
            f"{_list(missing)}")
    unexpected = given.keys() - expected.keys()
    if unexpected:
        raise InceptionWeightsError(
            f"not the FID Inception-v3 state dict: {len(unexpected)} unexpected keys, e.g. "
            f"{_list(unexpected)}")
    flat = {}
    for key, (shape, path) in expected.items():
        value = np.asarray(given[key])
        if value.shape != shape:
            raise InceptionWeightsError(
                f"wrong shape for {key}: got {value.shape}, expected {shape}")
        if value.ndim == 4:
            value = value.transpose(2, 3, 1, 0)
        elif value.ndim == 2:
            value = value.T
        flat[path] = np.ascontiguousarray(value, np.float32)
    return flat


def _check_file(path: str | os.PathLike) -> str:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InceptionWeightsError(f"Inception weights file not found: {path}")
    return path


def _read_npz(path: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise InceptionWeightsError(f"cannot read {path} as .npz: {e}") from e


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """pytorch-fid's state dict from a torch `.pth`/`.pt` file or an `.npz` of the same keys."""
    path = _check_file(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".npz":
        return _read_npz(path)
    if suffix not in (".pth", ".pt"):
        raise InceptionWeightsError(
            f"unknown weights format {suffix or '(no suffix)'!r} of {path}: expected .pth, .pt "
            f"or .npz")
    try:
        import torch
    except ImportError as e:
        raise InceptionWeightsError(
            f"reading {path} needs torch; install it, or on a machine with torch write an .npz: "
            f"numpy.savez(OUT, **{{k: v.numpy() for k, v in torch.load(PTH).items()}})") from e
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a corrupt or non-torch file
        raise InceptionWeightsError(f"cannot read {path} with torch.load: {e}") from e
    if not isinstance(state, Mapping):
        raise InceptionWeightsError(f"{path} holds a {type(state).__name__}, not a state dict")
    return {k: v.detach().cpu().numpy() for k, v in state.items()}


def convert(source: str | os.PathLike, out: str | os.PathLike) -> None:
    """Convert pytorch-fid's weights at `source` (.pth/.pt/.npz) into the project's `.npz`."""
    flat = torch_to_flat(read_state_dict(source))
    with open(out, "wb") as f:  # np.savez would append ".npz" to a name without it
        np.savez(f, **flat)


def load_inception_params(path: str | os.PathLike) -> dict:
    """Variables `{"params", "batch_stats"}` (jax arrays) from a file written by `convert`."""
    path = _check_file(path)
    flat = _read_npz(path)
    expected = variable_shapes()
    missing = expected.keys() - flat.keys()
    if missing:
        raise InceptionWeightsError(
            f"{path} is not a converted FID Inception: {len(missing)} variables missing, e.g. "
            f"{_list(missing)}")
    unexpected = flat.keys() - expected.keys()
    if unexpected:
        raise InceptionWeightsError(
            f"{path} is not a converted FID Inception: {len(unexpected)} unexpected variables, "
            f"e.g. {_list(unexpected)}")
    for key, shape in expected.items():
        if flat[key].shape != shape:
            raise InceptionWeightsError(
                f"wrong shape for {key} in {path}: got {flat[key].shape}, expected {shape}")
    return unflatten_variables({k: jnp.asarray(v, jnp.float32) for k, v in flat.items()})


def random_fid_state_dict(seed: int) -> dict[str, np.ndarray]:
    """A random float32 state dict in pytorch-fid's layout, the same on every machine.

    Each tensor is drawn from its own stream (seed, crc32 of the key), so neither dict order nor
    numpy's global state matters. Convs are He-normal, BN has running statistics and an affine
    transform far from identity (variances positive), so a layout error shows in the outputs.
    """
    state = {}
    for key, (shape, _) in sorted(fid_state_dict_shapes().items()):
        rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
        if key.endswith("conv.weight"):
            value = rng.normal(size=shape) * np.sqrt(2.0 / np.prod(shape[1:]))
        elif key == "fc.weight":
            value = rng.normal(size=shape) / np.sqrt(shape[1])
        elif key.endswith("bn.weight"):
            value = rng.uniform(0.5, 1.5, size=shape)
        elif key.endswith("bn.running_var"):
            value = rng.uniform(0.5, 2.0, size=shape)
        else:  # BN bias and running_mean, fc bias
            value = rng.normal(scale=0.2, size=shape)
        state[key] = value.astype(np.float32)
    return state


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="pytorch-fid weights: .pth, .pt or .npz")
    parser.add_argument("--out", required=True, help="output .npz of Flax variables")
    args = parser.parse_args(argv)
    try:
        convert(args.source, args.out)
    except InceptionWeightsError as e:
        parser.exit(1, f"error: {e}\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
