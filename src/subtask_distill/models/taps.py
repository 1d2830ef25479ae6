"""Reading intermediate feature maps by module name, without editing model code.

Forward hooks record the outputs of the named submodules. Token sequences
(ViT blocks: N x (1 + S*S) x C) become N x C x S x S maps without the class
token, so every tapped feature is a conv-style map.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def tokens_to_map(tokens: torch.Tensor) -> torch.Tensor:
    """N x L x C tokens -> N x C x S x S, dropping a leading class token when L = 1 + S^2."""
    n, length, channels = tokens.shape
    side = math.isqrt(length)
    if side * side != length:
        side = math.isqrt(length - 1)
        if side * side != length - 1:
            raise ValueError(f"cannot lay {length} tokens on a square grid (with or without a class token)")
        tokens = tokens[:, 1:]
    return tokens.transpose(1, 2).reshape(n, channels, side, side)


def as_feature_map(output: torch.Tensor) -> torch.Tensor:
    if isinstance(output, (tuple, list)):
        output = output[0]
    if output.dim() == 4:
        return output
    if output.dim() == 3:
        return tokens_to_map(output)
    raise ValueError(f"a tapped layer returned a tensor of shape {tuple(output.shape)}; expected N x C x H x W or tokens")


class FeatureTaps:
    """Call a model and also return the feature maps of the named layers, in order.

    Layer names are looked up in ``named_in`` (default: ``model``), so a
    wrapper such as the teacher's subtask head can be called while the names
    stay those of the network inside it.
    """

    def __init__(self, model: nn.Module, layer_names: Sequence[str], named_in: nn.Module | None = None):
        named_in = named_in if named_in is not None else model
        modules = dict(named_in.named_modules())
        missing = [name for name in layer_names if name not in modules]
        if missing:
            raise KeyError(
                f"layer(s) {missing} not found in {type(named_in).__name__}; "
                f"some of its modules: {', '.join(list(modules)[1:12])}, ..."
            )
        self.model = model
        self.layer_names = list(layer_names)
        self._outputs: dict[str, torch.Tensor] = {}
        self._handles = [modules[name].register_forward_hook(self._recorder(name)) for name in self.layer_names]

    def _recorder(self, name: str):
        def hook(module, inputs, output):
            self._outputs[name] = output

        return hook

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        self._outputs.clear()
        output = self.model(x)
        skipped = [name for name in self.layer_names if name not in self._outputs]
        if skipped:
            raise KeyError(f"layer(s) {skipped} of {type(self.model).__name__} are not run by its forward pass")
        features = [as_feature_map(self._outputs[name]) for name in self.layer_names]
        self._outputs.clear()
        return output, features

    def raw(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Like calling, but return the layers' outputs as produced (for gradients on them)."""
        self._outputs.clear()
        output = self.model(x)
        raw = [self._outputs[name] for name in self.layer_names]
        self._outputs.clear()
        return output, raw

    @torch.no_grad()
    def shapes(self, example: torch.Tensor) -> list[tuple[int, int, int]]:
        """(C, H, W) of each tapped map for inputs like ``example`` (one forward in eval mode)."""
        was_training = self.model.training
        self.model.eval()
        _, features = self(example[:1])
        self.model.train(was_training)
        return [tuple(f.shape[1:]) for f in features]

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


def aligned_size(teacher_hw: Sequence[int], student_hw: Sequence[int]) -> tuple[int, int]:
    """Where teacher and student maps differ in size, both go to the smaller one."""
    return min(teacher_hw[0], student_hw[0]), min(teacher_hw[1], student_hw[1])


def pool_to(feature: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Adaptive average pooling to ``size``; a no-op when the map already has it."""
    if tuple(feature.shape[-2:]) == tuple(size):
        return feature
    return F.adaptive_avg_pool2d(feature, tuple(size))
