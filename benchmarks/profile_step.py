"""Where one training step's time goes: a profile of the compiled step, grouped by op kind.

    python benchmarks/profile_step.py --arch mnist --mode gp [--batch 50] [--steps 3]
        [--fast_compile] [--compute_dtype float32|bfloat16] [--trace_dir DIR]

Runs the same state and step as step_throughput.py under `jax.profiler.trace`, reads the
Perfetto trace it writes, and prints, per op kind (matrix multiplies, concatenates, pads,
slices, other fusions, ...), the time per generator iteration and its share. XLA:CPU runs
independent ops concurrently, so the op times add up to more than the wall time; the shares
say where the work is. It then splits the wall time into time with a matrix multiply running,
with only other ops running, and idle, and lists the slowest matrix multiplies with their
operand shapes (from the optimised HLO) and per-op GFLOP/s. Also prints the compile profile:
time in HLO passes, in code generation and the number of fusions compiled. Needs only jax,
flax, optax and ml_collections.
"""
from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import os
import re
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.step_throughput import DEFAULT_BATCH  # noqa: E402

# Runtime bookkeeping events rather than ops.
_NOT_OPS = ("ThunkExecutor", "$", "SlinkyThreadPool", "PjitFunction", "CommonPjRt",
            "ParseArguments", "end: ")


def _kind(name: str) -> str:
    if name.startswith(("ynn_fusion", "xnn_fusion", "onednn")) or name.startswith("dot"):
        return "matmul (dot)"
    base = re.sub(r"(\.\d+)+$", "", name)
    for word in ("concatenate", "pad", "slice", "transpose", "copy", "reduce", "all-reduce",
                 "while", "select"):
        if word in base.split("_") or base == word:
            return word
    return "other elementwise fusion"


def _events(trace_dir: str) -> list[dict]:
    files = glob.glob(os.path.join(trace_dir, "plugins", "profile", "*",
                                   "perfetto_trace.json.gz"))
    if not files:
        raise SystemExit(f"no perfetto trace under {trace_dir}")
    data = json.load(gzip.open(max(files, key=os.path.getmtime)))
    events = data["traceEvents"] if isinstance(data, dict) else data
    return [e for e in events if e.get("ph") == "X"]


def summarize_run(trace_dir: str, steps: int) -> list[tuple[str, float, float]]:
    """(op kind, ms per step, share of op time), largest first."""
    total = collections.defaultdict(float)
    for e in _events(trace_dir):
        if not e["name"].startswith(_NOT_OPS):
            total[_kind(e["name"])] += e.get("dur", 0.0) / 1e3
    all_ops = sum(total.values())
    return sorted(((k, v / steps, v / all_ops) for k, v in total.items()), key=lambda r: -r[1])


def _covered_us(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of (start, end) intervals."""
    total, end = 0.0, -float("inf")
    for s, e in sorted(intervals):
        if e > end:
            total += e - max(s, end)
            end = e
    return total


def wall_split(trace_dir: str, steps: int) -> dict[str, float]:
    """Wall time per step (ms) during which some matmul runs, only other ops run, nothing runs.

    Ops overlap on the cores, so per-op rates understate a matmul's speed; the wall time with
    a matmul running says how fast the multiplies really go, and the time with only other ops
    running is what the patch copies and elementwise work add on top."""
    ops = [e for e in _events(trace_dir) if not e["name"].startswith(_NOT_OPS)]
    iv = lambda keep: [(e["ts"], e["ts"] + e.get("dur", 0.0)) for e in ops if keep(e)]  # noqa: E731
    matmul = _covered_us(iv(lambda e: _kind(e["name"]) == "matmul (dot)"))
    busy = _covered_us(iv(lambda e: True))
    span = max(e["ts"] + e.get("dur", 0.0) for e in ops) - min(e["ts"] for e in ops)
    return {"matmul_ms": matmul / 1e3 / steps, "other_only_ms": (busy - matmul) / 1e3 / steps,
            "idle_ms": (span - busy) / 1e3 / steps}


def _computations(hlo: str) -> dict[str, list[str]]:
    comps, cur = {}, None
    for line in hlo.splitlines():
        m = re.match(r"(?:ENTRY )?%?([\w.\-]+) .*\{$", line)
        if m and not line.startswith(" "):
            cur = comps.setdefault(m.group(1), [])
        elif cur is not None and line.startswith("  "):
            cur.append(line)
    return comps


def _dims(text: str) -> list[int]:
    return [int(d) for d in text.split(",") if d]


_INST = re.compile(r"\s*(?:ROOT )?%([\w.\-]+) = (\w+)\[([\d,]*)\]\S* (\w[\w\-]*)\((.*)")


def hlo_dots(hlo: str) -> dict[str, list[tuple[str, tuple, tuple, tuple, list[int]]]]:
    """Each computation of an optimised HLO module -> its dots, as (instruction name, lhs, rhs,
    result, lhs contracting dims), each array a (dtype, dims) pair."""
    out = {}
    for name, lines in _computations(hlo).items():
        arrays = {}
        for line in lines:
            m = _INST.match(line)
            if not m:
                continue
            arrays[m.group(1)] = (m.group(2), tuple(_dims(m.group(3))))
            if m.group(4) == "dot":
                lhs, rhs = re.findall(r"%([\w.\-]+)", m.group(5))[:2]
                contract = _dims(re.search(r"lhs_contracting_dims=\{([\d,]*)\}", line).group(1))
                out.setdefault(name, []).append(
                    (m.group(1), arrays[lhs], arrays[rhs], arrays[m.group(1)], contract))
    return out


def matmul_ops(hlo: str) -> dict[str, tuple[float, str]]:
    """Each op of the optimised HLO that runs a matrix multiply -> (FLOPs, 'MxK . KxN' shapes).

    Covers bare `dot`s and the fusions (YNNPACK, ...) whose computation holds one."""
    comps = _computations(hlo)
    dots_in, ops = {}, {}
    for name, found in hlo_dots(hlo).items():
        for op, (_, lhs), (_, rhs), (_, out), contract in found:
            k = int(np.prod([lhs[d] for d in contract]))
            desc = f"[{'x'.join(map(str, lhs))}] . [{'x'.join(map(str, rhs))}]"
            dots_in.setdefault(name, []).append((op, 2.0 * np.prod(out) * k, desc))
    called = set()
    for lines in comps.values():
        for line in lines:
            m = re.match(r"\s*(?:ROOT )?%([\w.\-]+) = .* calls=%([\w.\-]+)", line)
            if m and m.group(2) in dots_in:
                called.add(m.group(2))
                found = dots_in[m.group(2)]
                ops[m.group(1)] = (sum(f for _, f, _ in found), "; ".join(d for _, _, d in found))
    for name, found in dots_in.items():  # dots run as ops of their own, outside any fusion
        if name not in called:
            ops.update({op: (f, d) for op, f, d in found})
    return ops


def hottest_matmuls(trace_dir: str, hlo: str, steps: int, top: int = 12):
    """(op, ms per step, GFLOP per call, GFLOP/s, shapes) of the slowest matmuls, by total time."""
    ops = matmul_ops(hlo)
    time_ms, calls = collections.defaultdict(float), collections.Counter()
    for e in _events(trace_dir):
        if e["name"] in ops:
            time_ms[e["name"]] += e.get("dur", 0.0) / 1e3
            calls[e["name"]] += 1
    rows = [(n, t / steps, ops[n][0] / 1e9, ops[n][0] * calls[n] / (t * 1e6), ops[n][1])
            for n, t in time_ms.items() if t > 0]
    return sorted(rows, key=lambda r: -r[1])[:top]


def summarize_compile(trace_dir: str) -> dict[str, float]:
    """Compile-time split: HLO passes, code generation (and how many fusions it compiled)."""
    ev = _events(trace_dir)
    get = lambda n: sum(e["dur"] for e in ev if e["name"] == n) / 1e6  # noqa: E731
    return {"backend_s": get("CpuCompiler::RunBackend"), "codegen_s": get("Codegen"),
            "fusions_compiled": sum(e["name"] == "FusionCompiler::Compile" for e in ev),
            "thunk_emit_s": get("ThunkEmitter::EmitEntryComputation"),
            "compile_total_s": get("PjRtCpuClient::Compile")}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", choices=sorted(DEFAULT_BATCH), required=True)
    p.add_argument("--mode", choices=("gp", "clip"), required=True)
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--fast_compile", action="store_true")
    p.add_argument("--compute_dtype", default="float32", choices=("float32", "bfloat16"))
    p.add_argument("--trace_dir", default=None, help="keep the traces here (default: temp)")
    args = p.parse_args(argv)

    import jax

    from benchmarks.flops import iteration_flops
    from benchmarks.step_throughput import build
    trace_dir = args.trace_dir or tempfile.mkdtemp(prefix="wgan_jax_profile_")
    state, batches, step = build(args.arch, args.mode, args.batch, None, "auto",
                                 args.fast_compile, compute_dtype=args.compute_dtype)
    lowered = step.lower(state, batches[0])
    with jax.profiler.trace(os.path.join(trace_dir, "compile"), create_perfetto_trace=True):
        compiled = lowered.compile()
    for i in range(2):
        state, metrics = compiled(state, batches[i % 2])
        jax.block_until_ready(metrics)
    with jax.profiler.trace(os.path.join(trace_dir, "run"), create_perfetto_trace=True):
        t0 = time.perf_counter()
        for i in range(args.steps):
            state, metrics = compiled(state, batches[i % 2])
            jax.block_until_ready(metrics)
        wall_ms = (time.perf_counter() - t0) / args.steps * 1e3

    flops = iteration_flops(args.arch, args.mode, args.batch or DEFAULT_BATCH[args.arch])
    c = summarize_compile(os.path.join(trace_dir, "compile"))
    print(f"compile: {c['compile_total_s']:.1f} s in XLA ({c['codegen_s']:.1f} s code generation "
          f"of {c['fusions_compiled']} fusions, {c['thunk_emit_s']:.1f} s thunk emission)")
    rows = summarize_run(os.path.join(trace_dir, "run"), args.steps)
    print(f"wall {wall_ms:.0f} ms per generator iteration (profiled); op time "
          f"{sum(r[1] for r in rows):.0f} ms (ops overlap on the cores)")
    print(f"{'op kind':28s} {'ms/iter':>9s} {'share':>7s}")
    for kind, ms, share in rows:
        if share >= 0.002:
            print(f"{kind:28s} {ms:9.1f} {100 * share:6.1f}%")
    w = wall_split(os.path.join(trace_dir, "run"), args.steps)
    print(f"wall time per iteration: {w['matmul_ms']:.0f} ms with a matmul running "
          f"({flops / w['matmul_ms'] / 1e6:.0f} GFLOP/s over that time), "
          f"{w['other_only_ms']:.0f} ms with only other ops, {w['idle_ms']:.0f} ms idle")
    print(f"\nslowest matrix multiplies ({'ms/iter':>7s}, GFLOP per call, GFLOP/s, operands):")
    for name, ms, gflop, rate, shapes in hottest_matmuls(os.path.join(trace_dir, "run"),
                                                          compiled.as_text(), args.steps):
        print(f"  {name:24s} {ms:7.1f} {gflop:6.2f} {rate:6.1f}  {shapes}")
    print(f"traces in {trace_dir}")


if __name__ == "__main__":
    main()
