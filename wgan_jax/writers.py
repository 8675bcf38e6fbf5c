"""Metric writers: TensorBoard event files and log lines, without TensorFlow.

The calls are those of clu's `MetricWriter` (`write_scalars`, `write_images`, `write_hparams`,
`flush`, `close`), but the events are written with the `tensorboard` package alone: clu's own
writer is TensorFlow's summary writer, and a toy run should not need TensorFlow at all.
Scalars are `simple_value` summaries, images PNG-encoded `Summary.Image`s, hparams the HParams
plugin's summary; `tensorboard --logdir` reads all three.
"""
from __future__ import annotations

import io
import os
import socket
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
from absl import logging

# Marks the per-step log records, which run.py's terminal shows only with --verbose.
PER_STEP = {"per_step": True}


class LogWriter:
    """Writes scalars as one INFO line per call (`[step] name=value, ...`), like clu's. The
    records carry `per_step=True`: a terminal filter can drop them (TensorBoard keeps them)."""

    def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
        values = [f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}"
                  for k, v in sorted(scalars.items())]
        logging.info("[%d] %s", step, ", ".join(values), extra=PER_STEP)

    def write_images(self, step: int, images: Mapping[str, np.ndarray]) -> None:
        logging.info("[%d] images: %s", step, {k: np.shape(v) for k, v in images.items()},
                     extra=PER_STEP)

    def write_hparams(self, hparams: Mapping[str, Any]) -> None:
        logging.info("hyperparameters: %s", dict(hparams), extra=PER_STEP)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class TensorBoardWriter:
    """Events in `logdir/events.out.tfevents.*`, readable by TensorBoard.

    The file is TensorBoard's record format written by its pure-Python `RecordWriter` (its
    `EventFileWriter` would import TensorFlow for file access); gs:// logdirs go through etils.
    """

    def __init__(self, logdir: str):
        from tensorboard.compat.proto import event_pb2
        from tensorboard.summary.writer.record_writer import RecordWriter
        name = (f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}."
                f"{os.getpid()}.0.v2")
        if "://" in logdir:
            from etils import epath
            f = (epath.Path(logdir) / name).open("wb")
        else:
            os.makedirs(logdir, exist_ok=True)
            f = open(os.path.join(logdir, name), "wb")  # noqa: SIM115 (closed in close())
        self._records = RecordWriter(f)
        self._write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))

    def _write(self, event) -> None:
        self._records.write(event.SerializeToString())

    def _add(self, step: int, summary) -> None:
        from tensorboard.compat.proto import event_pb2
        self._write(event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary))

    def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
        from tensorboard.compat.proto import summary_pb2
        self._add(step, summary_pb2.Summary(value=[
            summary_pb2.Summary.Value(tag=k, simple_value=float(v))
            for k, v in scalars.items()]))

    def write_images(self, step: int, images: Mapping[str, np.ndarray]) -> None:
        """`images`: name -> [N, H, W, C] uint8 (the first image of each is written)."""
        from PIL import Image
        from tensorboard.compat.proto import summary_pb2
        values = []
        for k, v in images.items():
            img = np.asarray(v)[0]
            buf = io.BytesIO()
            Image.fromarray(img.squeeze(-1) if img.shape[-1] == 1 else img).save(buf, "PNG")
            values.append(summary_pb2.Summary.Value(tag=k, image=summary_pb2.Summary.Image(
                height=img.shape[0], width=img.shape[1], colorspace=img.shape[2],
                encoded_image_string=buf.getvalue())))
        self._add(step, summary_pb2.Summary(value=values))

    def write_hparams(self, hparams: Mapping[str, Any]) -> None:
        from tensorboard.plugins.hparams import summary_v2
        self._add(0, summary_v2.hparams_pb(dict(hparams)))

    def flush(self) -> None:
        self._records.flush()

    def close(self) -> None:
        if not self._records.closed:
            self._records.close()


class MultiWriter:
    """Every call goes to each of `writers`."""

    def __init__(self, *writers):
        self.writers = writers

    def __getattr__(self, name):
        def call(*args, **kwargs):
            for w in self.writers:
                getattr(w, name)(*args, **kwargs)
        return call


def create_writer(logdir: str, just_logging: bool = False) -> MultiWriter:
    """Log lines, plus TensorBoard events in `logdir` unless `just_logging` (processes other
    than 0 only log)."""
    if just_logging:
        return MultiWriter(LogWriter())
    return MultiWriter(LogWriter(), TensorBoardWriter(logdir))


class Progress:
    """The terminal's progress line, and `steps_per_sec` / `uptime` scalars for `writer`.

    Every `every_seconds` (and at the last step) it logs one line: the step, the latest values
    of `shown` metrics among those passed in, steps/s and the time left. clu's ReportProgress
    computes the same rate and ETA, but `clu.periodic_actions` imports TensorFlow (through
    clu.metric_writers), which a toy run otherwise never loads.
    """

    def __init__(self, num_train_steps: int, writer, every_seconds: float = 30.0,
                 shown: tuple[str, ...] = ("em_distance", "gradient_penalty")):
        self.num_train_steps, self.writer, self.every = num_train_steps, writer, every_seconds
        self.shown = shown
        self._t0 = self._last_time = time.monotonic()
        self._last_step: int | None = None

    def __call__(self, step: int, metrics: Mapping[str, float] | None = None) -> None:
        now = time.monotonic()
        if self._last_step is None:  # the first step includes the compile: not a rate
            logging.info("step %d/%d done in %.1f s (compiling included)", step,
                         self.num_train_steps, now - self._t0)
            self._last_step, self._last_time = step, now
            return
        last = step == self.num_train_steps
        if (now - self._last_time < self.every and not last) or step == self._last_step:
            return
        rate = (step - self._last_step) / (now - self._last_time)
        left = (self.num_train_steps - step) / rate if rate > 0 else float("inf")
        values = "".join(f"  {k} {metrics[k]:.4g}" for k in self.shown
                         if metrics and k in metrics)
        logging.info("step %d/%d%s  %.2f steps/s  ETA %s", step, self.num_train_steps, values,
                     rate, format_seconds(left))
        self.writer.write_scalars(step, {"steps_per_sec": rate, "uptime": now - self._t0})
        self._last_step, self._last_time = step, now


def format_seconds(s: float) -> str:
    """`1h02m`, `3m05s`, `12s` (`?` when unknown)."""
    if not np.isfinite(s):
        return "?"
    s = int(round(s))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"
