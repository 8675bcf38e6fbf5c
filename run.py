"""Train a WGAN / WGAN-GP: `python run.py --config=configs/wgan_gp.py [--workdir=DIR]`."""
import datetime
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file(
    "config", None, "Config file, e.g. configs/wgan_gp.py or configs/wgan_gp.py:mnist; override "
    "fields with --config.field=value.", lock_config=True)
flags.DEFINE_string("workdir", None, "Run directory (metrics, samples, checkpoints); an existing "
                    "one with checkpoints is resumed. Default: a new folder under runs/.")
flags.mark_flags_as_required(["config"])


def _quiet_library_info(record) -> bool:
    # Orbax logs several INFO lines per checkpoint; keep its warnings and errors only.
    return record.levelno >= 30 or "orbax" not in record.pathname


def _multi_host() -> bool:
    """True on a multi-host Cloud TPU slice, a multi-task SLURM job, or with an explicit
    coordinator (JAX_COORDINATOR_ADDRESS)."""
    env = os.environ
    return ("," in env.get("TPU_WORKER_HOSTNAMES", "")
            or int(env.get("SLURM_NTASKS", "1")) > 1
            or bool(env.get("JAX_COORDINATOR_ADDRESS")))


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.get_absl_handler().addFilter(_quiet_library_info)
    # TensorFlow is imported later, only by what needs it, and kept off the accelerators then.
    import jax
    if FLAGS.config.compilation_cache_dir:
        # Must be set before the first compile. Cache every program: the step's is the one
        # that matters, and the small ones cost little to store.
        jax.config.update("jax_compilation_cache_dir", FLAGS.config.compilation_cache_dir)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    if _multi_host():
        jax.distributed.initialize()  # every host runs this same command; JAX finds its peers
    from wgan_jax import train

    workdir = FLAGS.workdir or os.path.join(
        "runs", datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))
    logging.info("JAX process %d of %d; local devices: %s; all devices: %d",
                 jax.process_index(), jax.process_count(), jax.local_devices(),
                 jax.device_count())
    logging.info("workdir: %s", os.path.abspath(workdir))
    logging.info("config:\n%s", FLAGS.config)
    train.train_and_evaluate(FLAGS.config, workdir)


if __name__ == "__main__":
    app.run(main)
