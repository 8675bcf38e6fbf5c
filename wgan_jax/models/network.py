"""The fields every generator and critic has (normalization, batch-norm axis, compute dtype,
class conditioning) and the conditioning steps built from them (`models/conditional.py`)."""
from __future__ import annotations

import flax.linen as nn

from wgan_jax.models import conditional


class Network(nn.Module):
    """Base of the generators and critics; its methods are called inside a compact method."""

    norm: str = "none"
    axis_name: str | None = None  # batch norm over this device axis (global statistics)
    compute_dtype: str = "float32"
    conditioning: str = "none"
    num_classes: int = 0

    def generator_input(self, z, y):
        """z after the label checks, with the label embedding where the generator has one."""
        conditional.check_labels(y, z.shape[0], self.conditioning, "generator")
        return conditional.label_embedding(z, y, self.norm, self.conditioning, self.num_classes)

    def generator_norm(self, x, y, name: str, scale_init=nn.initializers.ones):
        """The generator's (conditional where it has batch norm) normalization of `x`."""
        return conditional.generator_norm(x, y, self.norm, self.conditioning, self.num_classes,
                                          self.axis_name, name, scale_init)

    def check_critic_labels(self, x, y) -> None:
        """ValueError unless a conditional critic got one integer label per example of `x`."""
        conditional.check_labels(y, x.shape[0], self.conditioning, "critic")

    def critic_head(self, values, features, y):
        """The critic's output from its values [B] and the features [B, F] they came from."""
        return conditional.critic_output(values, features, y, self.conditioning,
                                         self.num_classes, self.compute_dtype)


class ConvNetwork(Network):
    """A `Network` with convolutions (`layers.CONV_IMPLS`)."""

    conv_impl: str = "matmul"
