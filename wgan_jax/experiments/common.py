"""What every experiment shares: JSON-safe results and the command-line entry point."""
from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

CONFIG_DIR = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                           "..", "configs", "experiments"))


def jsonable(obj):
    """JSON has no infinity or numpy types: non-finite floats become 'inf'/'-inf'/'nan'."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    return obj


def write_results(workdir: str, results: dict[str, Any], indent: int = 2) -> str:
    """Write `results` as strict JSON to workdir/results.json; returns the path."""
    path = os.path.join(workdir, "results.json")
    with open(path, "w") as f:
        json.dump(jsonable(results), f, indent=indent, allow_nan=False)
    return path


def main(run: Callable[[Any, str], dict], config_name: str,
         summarize: Callable[[dict], Any] | None = None) -> None:
    """`python -m wgan_jax.experiments.X --workdir DIR [--config FILE[:ARG]] [--config.f=v]`.

    Flags are defined only here, when a module runs as a program, so importing an experiment
    never clashes with flags of the same name defined elsewhere.
    """
    from absl import app, flags
    from ml_collections import config_flags

    flags.DEFINE_string("workdir", None, "Directory for the figures and results.json.")
    flags.mark_flag_as_required("workdir")
    config_flags.DEFINE_config_file("config", os.path.join(CONFIG_DIR, f"{config_name}.py"),
                                    "Experiment config file.", lock_config=True)

    def _main(argv):
        if len(argv) > 1:
            raise app.UsageError(f"unexpected arguments: {argv[1:]}")
        start = time.perf_counter()
        results = run(flags.FLAGS.config, flags.FLAGS.workdir)
        shown = summarize(results) if summarize else {k: v for k, v in results.items()
                                                      if k != "config"}
        print(shown if isinstance(shown, str) else json.dumps(jsonable(shown), indent=1))
        print(f"total {time.perf_counter() - start:.1f} s")

    app.run(_main)
