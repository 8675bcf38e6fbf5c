"""TensorFlow's process-wide setup for input pipelines: accelerators stay with JAX."""
from __future__ import annotations

import functools


@functools.cache
def hide_accelerators_from_tf() -> None:
    """Keeps TensorFlow (input pipelines, clu's summary writer) off the GPUs and TPUs, which
    JAX owns; imports TensorFlow, once per process."""
    import tensorflow as tf

    for kind in ("GPU", "TPU"):
        try:
            if tf.config.list_physical_devices(kind):
                tf.config.set_visible_devices([], kind)
        except RuntimeError:
            # TF devices were already initialised elsewhere; nothing more can be done here.
            pass
