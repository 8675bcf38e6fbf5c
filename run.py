"""Train a WGAN / WGAN-GP: `python run.py --config=configs/wgan_gp.py [--workdir=DIR]`.

Exit status (see `wgan_jax.errors`): 0 when the run finished, or was preempted (SIGTERM) or
interrupted (one Ctrl-C) after saving a checkpoint; 2 for a user error (bad config or flags,
missing data set or weights, unusable workdir, disk full, unreachable or lost peers, a
checkpoint of another config) and 3 for a diverged run (a non-finite value), each printed as one
`error:` line; 130 after a second Ctrl-C (stopped without saving); 1 with a traceback for
anything unexpected.
"""
import datetime
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import logging as std_logging  # noqa: E402

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file(
    "config", None, "Config file, e.g. configs/wgan_gp.py or configs/wgan_gp.py:mnist; override "
    "fields with --config.field=value.", lock_config=True)
flags.DEFINE_string("workdir", None, "Run directory (metrics, samples, checkpoints); an existing "
                    "one with checkpoints is resumed. Default: a new folder under runs/.")
flags.DEFINE_string("coordinator_address", None, "host:port of process 0's coordinator, for a "
                    "multi-process run started by hand (with --num_processes and --process_id); "
                    "not needed on a Cloud TPU slice or SLURM, where JAX finds its peers.")
flags.DEFINE_integer("num_processes", None, "Number of processes of a run started by hand.")
flags.DEFINE_integer("process_id", None, "This process's index in [0, --num_processes).")
flags.DEFINE_integer("distributed_timeout_s", 300, "Multi-process runs: seconds to wait for "
                     "the coordinator and the other processes (connecting, and a process that "
                     "stopped answering) before giving up with an error.", lower_bound=1)
flags.DEFINE_boolean("verbose", False, "Print every logged step's metrics, the config and the "
                     "libraries' INFO lines (TensorBoard has the metrics either way).")


def _fail(message: str, status: int = 2):
    """Print `error: message` as the one line a failure ends with, and exit with `status`."""
    logging.flush()
    sys.stdout.flush()
    print(f"error: {' '.join(message.split())}", file=sys.stderr, flush=True)
    sys.exit(status)


def _config_flag_error(e: BaseException, argv: list[str]) -> str:
    """One line for an error of the config file flag or its --config.field overrides."""
    text = str(e)
    cause = e.__cause__ or e.__context__
    if isinstance(e, (AttributeError, KeyError)):
        # ml_collections: "'batchsize'\nDid you mean "batch_size" instead of "batchsize"?"
        parts = [p.strip().strip("'\"") for p in text.strip("'\"").replace("\\n", "\n")
                 .replace("\\'", "'").splitlines() if p.strip()]
        field = parts[0] if parts else text
        given = [a.split("=")[0] for a in argv[1:] if a.startswith("--config.")
                 and field in a.split("=")[0].split(".")]
        hint = f" {parts[1]}" if len(parts) > 1 else " See config.json of a run for the fields."
        return f"{given[0] if given else '--config'}: no config field {field!r}.{hint}"
    if "Failed loading config file" in text or isinstance(cause, OSError) and "config" in text:
        path = next((a.split("=", 1)[1] for a in argv[1:] if a.startswith("--config=")), "")
        return (f"--config={path}: cannot read that config file ({text.splitlines()[-1].strip()}"
                "); pass an existing file, e.g. --config=configs/wgan_gp.py or "
                "--config=configs/wgan_gp.py:mnist")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if any(ln.startswith("Traceback") for ln in lines):
        # The config module's own exception, formatted into the flag error: keep its message.
        head = lines[0].split(": Error whilst parsing")[0]
        last = lines[-1].split(": ", 1)[-1]
        return f"{head}: {last}"
    return "; ".join(lines)


def _parse_flags(argv: list[str]) -> list[str]:
    """absl's parsing, with every flag or config error as one `error:` line and status 2.

    `DEFINE_config_file` loads the config file and applies `--config.field=value` while the flags
    are parsed, before `main`: its errors (missing file, unknown variant, a field typo with
    ml_collections' "did you mean") would otherwise end in absl's FATAL lines or a traceback.
    """
    try:
        rest = FLAGS(argv)
        if FLAGS.config is None:
            _fail("--config is required, e.g. --config=configs/wgan_gp.py")
        FLAGS.config.get("seed")  # a config file that failed to load raises when first read
    except flags.Error as e:
        _fail(_config_flag_error(e, argv))
    except (OSError, AttributeError, KeyError, SyntaxError, TypeError, ValueError) as e:
        _fail(_config_flag_error(e, argv))
    return rest


class _TerminalFormatter(std_logging.Formatter):
    """`HH:MM:SS message` (`warning:` before warnings) instead of absl's glog prefix."""

    def format(self, record):
        level = "" if record.levelno < std_logging.WARNING else (
            record.levelname.lower() if record.levelno < std_logging.ERROR else "ERROR") + ": "
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        return f"{stamp} {level}{record.getMessage()}"


def _terminal_filter(record) -> bool:
    """Without --verbose: warnings and errors of everyone, this project's INFO lines except the
    per-step metric lines (TensorBoard has them)."""
    if record.name == "asyncio" and "never retrieved" in str(record.msg):
        return False  # a failed save's parts, reported once by run.py
    if record.levelno >= std_logging.WARNING:
        return True
    if getattr(record, "per_step", False):
        return False
    return "/wgan_jax/" in record.pathname or record.pathname.endswith("run.py")


def _quiet_library_info(record) -> bool:
    # Orbax logs several INFO lines per checkpoint; keep its warnings and errors only.
    return record.levelno >= 30 or "orbax" not in record.pathname


def _setup_logging() -> None:
    handler = logging.get_absl_handler()
    if FLAGS.verbose:
        handler.addFilter(_quiet_library_info)
    else:
        handler.addFilter(_terminal_filter)
        handler.setFormatter(_TerminalFormatter())


def main(argv):
    if len(argv) > 1:
        _fail(f"unexpected arguments {argv[1:]}; flags are written --name=value")
    from wgan_jax import errors, supervisor
    workdir = FLAGS.workdir or os.path.join(
        "runs", datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))
    supervisor.die_with_parent()
    if supervisor.wanted(FLAGS.coordinator_address):
        # Multi-process: train in a child, so that a peer's death ends in one line here.
        argv = sys.argv if FLAGS.workdir else [*sys.argv, f"--workdir={workdir}"]
        sys.exit(supervisor.run(argv, FLAGS.process_id, FLAGS.coordinator_address))
    try:
        _run(workdir)
    except KeyboardInterrupt:
        # Ctrl-C before the training loop (which turns it into a save) started.
        _fail("interrupted before training started; nothing was saved",
              errors.EXIT_SECOND_INTERRUPT)
    except Exception as e:  # noqa: BLE001 (the table decides; bugs are re-raised)
        failed_write = errors.write_failure(e, workdir)
        lost = errors.lost_peer(e)
        if failed_write is not None or lost is not None:
            # Skip the interpreter's shutdown: after a failed save Orbax's background threads
            # would print their own errors and tracebacks, and with a dead peer jax's shutdown
            # would wait for it or abort on its missed heartbeats.
            try:
                _fail(str(failed_write) if failed_write is not None else lost, errors.EXIT_USER)
            finally:
                os._exit(errors.EXIT_USER)
        status = errors.exit_status(e)
        if status is None:
            raise
        _fail(errors.one_line(e), status)


def _run(workdir: str):
    _setup_logging()
    # TensorFlow is imported later, only by what needs it, and kept off the accelerators then.
    import jax
    if FLAGS.config.compilation_cache_dir:
        # Must be set before the first compile. Cache every program: the step's is the one
        # that matters, and the small ones cost little to store.
        jax.config.update("jax_compilation_cache_dir", FLAGS.config.compilation_cache_dir)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    from wgan_jax import distributed
    distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id,
                           timeout_s=FLAGS.distributed_timeout_s)
    from wgan_jax import train

    if jax.process_count() > 1 or FLAGS.verbose:
        logging.info("JAX process %d of %d; local devices: %s; all devices: %d",
                     jax.process_index(), jax.process_count(), jax.local_devices(),
                     jax.device_count())
    else:
        logging.info("devices: %d x %s", jax.device_count(), jax.devices()[0].device_kind)
    config_arg = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--config=")),
                      "")
    overrides = [a[len("--config."):] for a in sys.argv[1:] if a.startswith("--config.")]
    logging.info("config: %s%s", config_arg, f" with {', '.join(overrides)}" if overrides else "")
    logging.info("workdir: %s", os.path.abspath(workdir) if "://" not in workdir else workdir)
    if FLAGS.verbose:
        logging.info("config:\n%s", FLAGS.config)
    t0 = time.monotonic()
    result = train.train_and_evaluate(FLAGS.config, workdir)
    if result.preempted:
        logging.info("exiting after the checkpoint of step %d", result.step)
        return
    shown = {k: v for k, v in result.train.items() if k in ("em_distance", "gradient_penalty")}
    summary = ", ".join(f"{k} {v:.4g}" for k, v in {**shown, **result.eval}.items())
    logging.info("finished at step %d in %.0f s%s; final_metrics.json and TensorBoard events in "
                 "%s", result.step, time.monotonic() - t0, f": {summary}" if summary else "",
                 workdir)


if __name__ == "__main__":
    app.run(main, flags_parser=_parse_flags)
