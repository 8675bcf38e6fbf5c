"""Tests of wgan_jax.quality.inception and convert_inception: the Flax FID Inception-v3 against
pytorch-fid, block by block, and the weight converter's errors.

Weights are `random_fid_state_dict(WEIGHTS_SEED)` (numpy, torch layout), converted by the
converter; inputs are two seeded 299x299 images in [-1, 1].

* Without torch, the port is compared with `tests/data/inception_fid_reference.npz`: pytorch-fid's
  outputs for those weights and images, computed once in float64 (a seeded sample of 64 entries,
  the (0, 0) pixel and the spatial mean of every block, plus full pool3 and logits).
* With torch, torchvision and pytorch-fid importable, every block is compared in full with a fresh
  pytorch-fid run, and the fixture is checked against it. Regenerate the fixture (after changing
  the seeds, the weight generator or the summary) with torch installed:

      python tests/test_inception.py

Tolerance: max|port - ref| / max|ref| <= 1e-5 per block for the float32 port against the float64
reference (measured: <= 1.6e-6, float32 rounding through ~100 layers); the float64 port agrees to
~4e-15. Checked by hand that the comparisons fail, stored fixture included, when the average pools
of Mixed_5b-7b count the padded zeros (Mixed_5b off by 0.17 relative, pool3 by 0.04), when Mixed_7c
average-pools instead of max-pooling (Mixed_7c off by 0.35) and when BN eps is 1e-5 (7e-4 from the
first layer on).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wgan_jax.quality import convert_inception as ci
from wgan_jax.quality import inception
from wgan_jax.quality.inception import BLOCKS, InceptionWeightsError

FIXTURE = Path(__file__).parent / "data" / "inception_fid_reference.npz"
WEIGHTS_SEED = 0
IMAGES_SEED = 1
SAMPLE_SEED = 2
N_IMAGES = 2
N_SAMPLES = 64
REL_TOL = 1e-5  # float32 port vs float64 reference
REL_TOL_X64 = 1e-10  # float64 port vs float64 reference


def make_images(seed: int = IMAGES_SEED, n: int = N_IMAGES) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, 299, 299, 3)).astype(np.float32)


def summarize(outputs: dict[str, np.ndarray], indices: dict[str, np.ndarray]) -> dict:
    """Per block a sample at flat `indices`, the (0, 0) pixel (where padding matters most) and
    the spatial mean; pool3 and logits in full."""
    out = {}
    for name in BLOCKS:
        a = np.asarray(outputs[name])
        out[f"{name}/sample"] = a.reshape(-1)[indices[name]]
        out[f"{name}/corner"] = a[:, 0, 0, :]
        out[f"{name}/mean"] = a.mean(axis=(1, 2))
    out["pool3"] = np.asarray(outputs["pool3"])
    out["logits"] = np.asarray(outputs["logits"])
    return out


def rel_err(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def assert_close(got: dict, want: dict, tol: float) -> dict[str, float]:
    errors = {k: rel_err(got[k], want[k]) for k in want}
    bad = {k: e for k, e in errors.items() if not e <= tol}
    assert not bad, f"relative errors above {tol}: {bad}"
    return errors


def torch_reference(state_dict: dict[str, np.ndarray], images: np.ndarray) -> dict:
    """pytorch-fid's network (float64) with `state_dict`: every block's output (NHWC), pool3 and
    logits for NHWC `images`."""
    import pytorch_fid.inception as pfi
    import torch

    def fake_download(*args, **kwargs):
        return {k: torch.from_numpy(v) for k, v in state_dict.items()}

    original = pfi.load_state_dict_from_url
    pfi.load_state_dict_from_url = fake_download
    try:
        model = pfi.fid_inception_v3().double().eval()
    finally:
        pfi.load_state_dict_from_url = original
    captured = {}
    for name in BLOCKS + ("avgpool",):
        getattr(model, name).register_forward_hook(
            lambda module, inputs, output, name=name: captured.__setitem__(name, output))
    with torch.no_grad():
        logits = model(torch.from_numpy(images.transpose(0, 3, 1, 2)).double())
    out = {name: captured[name].numpy().transpose(0, 2, 3, 1) for name in BLOCKS}
    out["pool3"] = captured["avgpool"].numpy()[:, :, 0, 0]
    out["logits"] = logits.numpy()
    return out


@pytest.fixture(scope="module")
def variables(tmp_path_factory):
    """The seeded weights, written as an .npz in torch layout and converted (the CLI's path)."""
    tmp = tmp_path_factory.mktemp("inception")
    source = ci.random_fid_state_dict(WEIGHTS_SEED)
    source["Conv2d_1a_3x3.bn.num_batches_tracked"] = np.array(0, np.int64)
    np.savez(tmp / "torch_layout.npz", **source)
    ci.main(["--source", str(tmp / "torch_layout.npz"), "--out", str(tmp / "converted.npz")])
    return ci.load_inception_params(tmp / "converted.npz")


@pytest.fixture(scope="module")
def port_outputs(variables):
    apply = jax.jit(inception.InceptionV3().apply)
    return jax.tree.map(np.asarray, apply(variables, make_images()))


@pytest.fixture(scope="module")
def fixture_data():
    with np.load(FIXTURE, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def test_output_shapes(port_outputs):
    assert set(port_outputs) == set(inception.OUTPUTS)
    assert port_outputs["Conv2d_1a_3x3"].shape == (N_IMAGES, 149, 149, 32)
    assert port_outputs["maxpool2"].shape == (N_IMAGES, 35, 35, 192)
    assert port_outputs["Mixed_6e"].shape == (N_IMAGES, 17, 17, 768)
    assert port_outputs["Mixed_7c"].shape == (N_IMAGES, 8, 8, 2048)
    assert port_outputs["pool3"].shape == (N_IMAGES, 2048)
    assert port_outputs["logits"].shape == (N_IMAGES, 1008)
    np.testing.assert_allclose(port_outputs["pool3"], port_outputs["Mixed_7c"].mean(axis=(1, 2)),
                               rtol=1e-5)


def test_port_matches_stored_pytorch_fid_outputs(port_outputs, fixture_data):
    assert int(fixture_data["meta/weights_seed"]) == WEIGHTS_SEED
    assert int(fixture_data["meta/images_seed"]) == IMAGES_SEED
    indices = {name: fixture_data[f"{name}/index"] for name in BLOCKS}
    want = {k: v for k, v in fixture_data.items() if not k.endswith("/index")
            and not k.startswith("meta/")}
    assert_close(summarize(port_outputs, indices), want, REL_TOL)


def test_extract_pads_the_last_batch(variables, port_outputs):
    images = make_images()
    images = np.concatenate([images, images[:1]])  # 3 images, batches of 2: one padded batch
    pool3, logits = inception.extract(variables, images, batch_size=2)
    assert pool3.shape == (3, 2048) and logits.shape == (3, 1008)
    for got, want in ((pool3, port_outputs["pool3"]), (logits, port_outputs["logits"])):
        np.testing.assert_allclose(got, want[[0, 1, 0]], rtol=1e-5, atol=1e-5 * np.abs(want).max())


def test_extract_rejects_bad_images(variables):
    with pytest.raises(ValueError, match=r"\(N, 299, 299, 3\)"):
        inception.extract(variables, np.zeros((1, 32, 32, 3), np.float32))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        inception.extract(variables, np.full((1, 299, 299, 3), 255.0, np.float32))


# --- the converter and its errors ---------------------------------------------------------

def test_conversion_layout():
    sd = ci.random_fid_state_dict(WEIGHTS_SEED)
    flat = ci.torch_to_flat(sd)
    assert len(flat) == len(sd) == 472
    w = sd["Mixed_6b.branch7x7_2.conv.weight"]  # (out, in, 1, 7)
    np.testing.assert_array_equal(flat["params/Mixed_6b/branch7x7_2/conv/kernel"],
                                  w.transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(flat["params/fc/kernel"], sd["fc.weight"].T)
    np.testing.assert_array_equal(flat["batch_stats/Mixed_7c/branch_pool/bn/var"],
                                  sd["Mixed_7c.branch_pool.bn.running_var"])
    np.testing.assert_array_equal(flat["params/Conv2d_1a_3x3/bn/scale"],
                                  sd["Conv2d_1a_3x3.bn.weight"])
    assert min(v.min() for k, v in sd.items() if k.endswith("running_var")) > 0


def test_random_state_dict_is_deterministic():
    a, b = ci.random_fid_state_dict(3), ci.random_fid_state_dict(3)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["fc.weight"], ci.random_fid_state_dict(4)["fc.weight"])


def test_missing_file(tmp_path):
    with pytest.raises(InceptionWeightsError, match="not found"):
        ci.read_state_dict(tmp_path / "absent.pth")
    with pytest.raises(InceptionWeightsError, match="not found"):
        ci.load_inception_params(tmp_path / "absent.npz")


def test_unknown_format(tmp_path):
    path = tmp_path / "weights.h5"
    path.write_bytes(b"\0")
    with pytest.raises(InceptionWeightsError, match="unknown weights format '.h5'"):
        ci.read_state_dict(path)


def test_unreadable_npz(tmp_path):
    path = tmp_path / "weights.npz"
    path.write_bytes(b"not a zip file")
    with pytest.raises(InceptionWeightsError, match="cannot read"):
        ci.read_state_dict(path)


def test_pth_without_torch(tmp_path, monkeypatch):
    path = tmp_path / "weights.pth"
    path.write_bytes(b"\0")
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    with pytest.raises(InceptionWeightsError, match="needs torch"):
        ci.read_state_dict(path)


def test_missing_keys():
    sd = ci.random_fid_state_dict(0)
    del sd["fc.bias"], sd["Mixed_5b.branch_pool.bn.running_var"]
    with pytest.raises(InceptionWeightsError,
                       match=r"2 keys missing, e.g. Mixed_5b.branch_pool.bn.running_var, fc.bias"):
        ci.torch_to_flat(sd)


def test_unexpected_keys():
    sd = ci.random_fid_state_dict(0)
    sd["AuxLogits.fc.weight"] = np.zeros((1000, 768), np.float32)
    with pytest.raises(InceptionWeightsError, match="1 unexpected keys, e.g. AuxLogits.fc.weight"):
        ci.torch_to_flat(sd)


def test_wrong_shape():
    sd = ci.random_fid_state_dict(0)
    sd["fc.weight"] = np.zeros((1000, 2048), np.float32)  # torchvision's ImageNet head
    message = r"wrong shape for fc.weight: got \(1000, 2048\), expected \(1008, 2048\)"
    with pytest.raises(InceptionWeightsError, match=message):
        ci.torch_to_flat(sd)


def test_load_rejects_bad_converted_files(tmp_path):
    flat = ci.torch_to_flat(ci.random_fid_state_dict(0))
    truncated = dict(flat)
    del truncated["params/fc/bias"]
    np.savez(tmp_path / "truncated.npz", **truncated)
    with pytest.raises(InceptionWeightsError, match="1 variables missing, e.g. params/fc/bias"):
        ci.load_inception_params(tmp_path / "truncated.npz")
    np.savez(tmp_path / "torch_layout.npz", **ci.random_fid_state_dict(0))
    with pytest.raises(InceptionWeightsError, match="variables missing"):
        ci.load_inception_params(tmp_path / "torch_layout.npz")
    flat["params/fc/kernel"] = flat["params/fc/kernel"].T
    np.savez(tmp_path / "transposed.npz", **flat)
    with pytest.raises(InceptionWeightsError, match=r"wrong shape for params/fc/kernel .*got "
                                                    r"\(1008, 2048\), expected \(2048, 1008\)"):
        ci.load_inception_params(tmp_path / "transposed.npz")


def test_cli_reports_one_clear_error(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "wgan_jax.quality.convert_inception", "--source",
         str(tmp_path / "absent.pth"), "--out", str(tmp_path / "out.npz")],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"error: Inception weights file not found: {tmp_path}/absent.pth"


# --- against pytorch-fid itself (needs torch, torchvision, pytorch-fid) --------------------

@pytest.fixture(scope="module")
def torch_outputs():
    pytest.importorskip("torch", reason="the comparison with pytorch-fid needs torch")
    pytest.importorskip("torchvision", reason="the comparison with pytorch-fid needs torchvision")
    pytest.importorskip("pytorch_fid", reason="the comparison with pytorch-fid needs pytorch-fid")
    return torch_reference(ci.random_fid_state_dict(WEIGHTS_SEED), make_images())


def test_port_matches_pytorch_fid_every_block(port_outputs, torch_outputs):
    errors = assert_close(port_outputs, torch_outputs, REL_TOL)
    print("max relative error per block (float32 port vs float64 pytorch-fid):")
    for name, err in errors.items():
        print(f"  {name:14s} {err:.2e}")


def test_port_in_float64_matches_pytorch_fid(variables, torch_outputs):
    with jax.enable_x64(True):
        v64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), variables)
        out = jax.jit(inception.InceptionV3().apply)(v64, make_images().astype(np.float64))
        out = jax.tree.map(np.asarray, out)
    assert out["logits"].dtype == np.float64
    errors = assert_close(out, torch_outputs, REL_TOL_X64)
    print(f"float64 port: max relative error {max(errors.values()):.1e}")


def test_fixture_is_pytorch_fid_output(torch_outputs, fixture_data):
    indices = {name: fixture_data[f"{name}/index"] for name in BLOCKS}
    want = summarize(torch_outputs, indices)
    # The fixture stores float32: only rounding separates it from a fresh float64 run.
    assert_close({k: fixture_data[k] for k in want}, want, 1e-6)


def test_pytorch_fid_wrapper_features(torch_outputs):
    """What pytorch-fid's FID code reads (its InceptionV3 wrapper's blocks) is what we compare."""
    import pytorch_fid.inception as pfi
    import torch

    sd = {k: torch.from_numpy(v) for k, v in ci.random_fid_state_dict(WEIGHTS_SEED).items()}
    original = pfi.load_state_dict_from_url
    pfi.load_state_dict_from_url = lambda *args, **kwargs: sd
    try:
        model = pfi.InceptionV3([0, 1, 2, 3], resize_input=False, normalize_input=False)
    finally:
        pfi.load_state_dict_from_url = original
    x = torch.from_numpy(make_images().transpose(0, 3, 1, 2)).double()
    with torch.no_grad():
        blocks = [b.numpy() for b in model.double().eval()(x)]
    for got, name in zip(blocks, ("maxpool1", "maxpool2", "Mixed_6e"), strict=False):
        np.testing.assert_array_equal(got.transpose(0, 2, 3, 1), torch_outputs[name])
    np.testing.assert_array_equal(blocks[3][:, :, 0, 0], torch_outputs["pool3"])


def test_convert_pth_equals_npz(tmp_path):
    torch = pytest.importorskip("torch", reason="reading .pth needs torch")
    sd = ci.random_fid_state_dict(WEIGHTS_SEED)
    torch.save({k: torch.from_numpy(v) for k, v in sd.items()}, tmp_path / "w.pth")
    from_pth = ci.torch_to_flat(ci.read_state_dict(tmp_path / "w.pth"))
    from_np = ci.torch_to_flat(sd)
    assert all(np.array_equal(from_pth[k], from_np[k]) for k in from_np)


def write_fixture(path: Path = FIXTURE) -> None:
    """Recompute the stored pytorch-fid outputs (needs torch, torchvision, pytorch-fid)."""
    import pytorch_fid
    import torch
    import torchvision

    outputs = torch_reference(ci.random_fid_state_dict(WEIGHTS_SEED), make_images())
    indices = {}
    for i, name in enumerate(BLOCKS):
        rng = np.random.default_rng([SAMPLE_SEED, i])
        indices[name] = np.sort(rng.choice(outputs[name].size, N_SAMPLES, replace=False))
    data = {k: v.astype(np.float32) for k, v in summarize(outputs, indices).items()}
    data.update({f"{name}/index": idx.astype(np.int64) for name, idx in indices.items()})
    data["meta/weights_seed"] = np.array(WEIGHTS_SEED)
    data["meta/images_seed"] = np.array(IMAGES_SEED)
    data["meta/versions"] = np.array(f"torch {torch.__version__}, torchvision "
                                     f"{torchvision.__version__}, pytorch-fid "
                                     f"{pytorch_fid.__version__}, float64")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **data)
    print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    write_fixture()
