"""Train a WGAN / WGAN-GP: `python run.py --config=configs/wgan_gp.py [--workdir=DIR]`.

Exit status: 0 when the run finished or was preempted (SIGTERM) after saving a checkpoint;
2 for a user error (bad config or flags, missing data set, unusable workdir or checkpoint),
printed as one message; 1 with a traceback for anything unexpected.
"""
import datetime
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

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
flags.mark_flags_as_required(["config"])


def _quiet_library_info(record) -> bool:
    # Orbax logs several INFO lines per checkpoint; keep its warnings and errors only.
    return record.levelno >= 30 or "orbax" not in record.pathname


def _user_errors() -> tuple[type[BaseException], ...]:
    """The errors that mean the command or its inputs need fixing, not the code."""
    from wgan_jax.checkpoint import CheckpointError
    from wgan_jax.config import ConfigError
    from wgan_jax.data.images import DatasetNotFoundError
    from wgan_jax.distributed import LayoutError
    from wgan_jax.workdir import HoldLostError, WorkdirBusyError
    return (ConfigError, DatasetNotFoundError, CheckpointError, NotADirectoryError, LayoutError,
            WorkdirBusyError, HoldLostError)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
        _run()
    except _user_errors() as e:
        logging.flush()
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


def _run():
    logging.get_absl_handler().addFilter(_quiet_library_info)
    # TensorFlow is imported later, only by what needs it, and kept off the accelerators then.
    import jax
    if FLAGS.config.compilation_cache_dir:
        # Must be set before the first compile. Cache every program: the step's is the one
        # that matters, and the small ones cost little to store.
        jax.config.update("jax_compilation_cache_dir", FLAGS.config.compilation_cache_dir)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    from wgan_jax import distributed
    distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
    from wgan_jax import train

    workdir = FLAGS.workdir or os.path.join(
        "runs", datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))
    logging.info("JAX process %d of %d; local devices: %s; all devices: %d",
                 jax.process_index(), jax.process_count(), jax.local_devices(),
                 jax.device_count())
    logging.info("workdir: %s", os.path.abspath(workdir))
    logging.info("config:\n%s", FLAGS.config)
    result = train.train_and_evaluate(FLAGS.config, workdir)
    if result.preempted:
        logging.info("exiting after the preemption checkpoint of step %d", result.step)


if __name__ == "__main__":
    app.run(main)
