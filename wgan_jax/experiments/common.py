"""What every experiment shares: its config's method part, checks of its own fields, JSON-safe
results and the command-line entry point.

An experiment config mixes two kinds of fields. A top-level field named like a field of the main
config (`wgan_jax/config.py`: `seed`, `batch_size`, `num_train_steps`, `n_critic`, `loss`,
`gp_weight`, `clip_value`, `model.toy_hidden`, `optimizer.learning_rate`, ...) is that field,
with the same meaning, shared by every run of the experiment; a method's own settings are a
partial main config (e.g. `config.method.wgan`), merged on top by `build_method`. Every other
field (`datasets`, `num_seeds`, `eval_every`, plot sizes, ...) is the experiment's own and is
checked by the experiment with the helpers below. Both raise `ConfigError` naming the field.
"""
from __future__ import annotations

import functools
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NoReturn

import ml_collections
import numpy as np
from scipy import stats

from wgan_jax.config import ConfigError, base_config
from wgan_jax.method import Method, config_with

CONFIG_DIR = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                           "..", "configs", "experiments"))
MAIN_FIELDS = frozenset(base_config().keys())
# A method's name in figures and tables: the one field of a method's settings that is not a
# main-config field.
LABEL = "label"


def main_config(config: ml_collections.ConfigDict, *parts: Mapping[str, Any],
                **fields) -> ml_collections.ConfigDict:
    """The full main config of one run: `base_config()`, then `config`'s main-config fields,
    then each partial main config of `parts` (a `label` in one is skipped), then `fields`."""
    c = config_with({k: config[k] for k in config.keys() if k in MAIN_FIELDS})
    for part in parts:
        c = config_with({k: v for k, v in part.items() if k != LABEL}, base=c)
    return config_with(fields, base=c)


def build_method(config: ml_collections.ConfigDict, *parts: Mapping[str, Any], where: str = "",
                 **fields) -> Method:
    """`Method.from_config(main_config(config, *parts, **fields))`.

    A ConfigError names the field and, when given, `where` the settings came from (e.g.
    'method.wgan'), since the field may have been set there rather than at the top level.
    """
    try:
        return Method.from_config(main_config(config, *parts, **fields))
    except ConfigError as e:
        if not where:
            raise
        where = f"settings of config.{where} merged onto the top-level fields"
        raise ConfigError(f"{e} ({where})") from None


def check_shared(methods: Mapping[str, Method], reference: Method,
                 fields: Iterable[str]) -> None:
    """Each method of `methods` (where its settings are, e.g. 'method.gp' -> Method) must agree
    with `reference` on `fields` (dotted Method attributes such as 'model.toy_hidden'): the
    settings an experiment's runs share, to start from the same weights or see the same data."""
    for where, m in methods.items():
        for f in fields:
            mine, shared = (functools.reduce(getattr, f.split("."), x) for x in (m, reference))
            if mine != shared:
                fail(f"{where}.{f}", mine, f"the runs share it ({shared!r}): set it at the top "
                     "level only")


def fail(field: str, value, hint: str) -> NoReturn:
    """Raise the ConfigError for an experiment field, in the main config's wording."""
    raise ConfigError(f"config.{field}={value!r} is invalid: {hint}")


def check_positive_ints(config: ml_collections.ConfigDict, *fields: str) -> None:
    """Each of `fields` must be a positive integer."""
    for f in fields:
        v = config[f]
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            fail(f, v, "must be a positive integer")


def check_names(config: ml_collections.ConfigDict, field: str, known: Iterable[str],
                why: str = "is unknown") -> None:
    """`config[field]` must list at least one name, each one of `known`; `why` says what is
    wrong with a name that is not."""
    names, known = tuple(config[field]), tuple(known)
    if not names:
        fail(field, names, f"must name at least one; choose from {known}")
    for n in names:
        if n not in known:
            fail(field, names, f"{n!r} {why}; choose from {known}")


def check_variant(arg: str | None, variants: Iterable[str]) -> None:
    """A config file's variant argument must be empty or one of `variants`."""
    variants = tuple(variants)
    if arg not in (None, "") + variants:
        raise ConfigError(f"unknown config variant {arg!r}; expected one of {variants} or none")


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


def correlations(x: Sequence[float], y: Sequence[float]) -> dict[str, float]:
    """Pearson and Spearman correlation of two equally long sequences.

    Non-finite entries are dropped pairwise first (a diverged evaluation is missing, not an
    extreme value); NaN where fewer than 3 pairs remain or either side is constant (no
    correlation is defined there).
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"need two 1-D sequences of equal length, got {x.shape}, {y.shape}")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return {"pearson": math.nan, "spearman": math.nan}
    return {"pearson": float(np.corrcoef(x, y)[0, 1]),
            "spearman": float(np.corrcoef(stats.rankdata(x), stats.rankdata(y))[0, 1])}


def parse_runs(texts: Sequence[str]) -> dict[str, str]:
    """{name: workdir} from command-line `NAME=WORKDIR` texts; SystemExit naming a bad one."""
    runs = {}
    for text in texts:
        name, sep, workdir = text.partition("=")
        if not sep or not name or not workdir:
            raise SystemExit(f"--run {text!r}: expected NAME=WORKDIR")
        if not os.path.isdir(workdir):
            raise SystemExit(f"--run {text!r}: {workdir!r} is not a directory")
        runs[name] = workdir
    return runs
