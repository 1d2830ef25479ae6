"""Start-up check of every pair's paired layers: each exists, and its maps can be aligned with its partner's.

The workflow runs it when it starts (dry runs included), so a misspelt layer
stops the study before any job, not inside a training job after the teacher
is trained. Networks are built on PyTorch's meta device, which allocates
nothing and computes nothing, so a forward pass gives every feature shape at
once even for a WideResNet101.
"""

from __future__ import annotations

import difflib
from typing import Any, Sequence

import torch

from .methods import get_method
from .methods.registry import Shape
from .models.registry import create_model
from .models.taps import as_feature_map


def pair_layer_problems(config: dict[str, Any]) -> list[str]:
    """One line per problem with a pair's layers (empty: every pair is fine), naming the config key."""
    size = config["data"]["image_size"]
    num_classes = len(config["data"]["subtask_classes"])
    subspace_methods = [m for m in config["methods"] if get_method(m).subspace]
    problems = []
    for pair, spec in config["pairs"].items():
        shapes = {}
        for role in ("teacher", "student"):
            found, shapes[role] = _network_problems(f"pairs.{pair}.{role}", spec[role], num_classes, size)
            problems += found
        if subspace_methods and shapes["teacher"] and shapes["student"]:
            problems += _subspace_problems(pair, spec, shapes["teacher"], shapes["student"], subspace_methods)
    return problems


def _network_problems(key: str, spec: dict[str, Any], num_classes: int, size: int) -> tuple[list[str], list[Shape] | None]:
    """Problems of one network's layers, and their feature shapes when they could be read."""
    try:
        with torch.device("meta"):
            model = create_model(spec["arch"], num_classes=spec.get("num_classes", num_classes), **spec.get("kwargs", {}))
    except TypeError as error:  # a keyword argument the builder does not take
        return [f"{key}.kwargs: {error}"], None
    modules = [name for name, _ in model.named_modules() if name]
    missing = [
        f"{key}.layers[{index}]: {name!r} is not a module of {spec['arch']}; {_closest(name, modules)}"
        for index, name in enumerate(spec["layers"])
        if name not in modules
    ]
    if missing:
        return missing, None
    try:
        return _feature_shapes(key, model, spec["layers"], size)
    except (NotImplementedError, RuntimeError):  # an operation without a meta kernel: names are checked, shapes not
        return [], None


def _feature_shapes(key: str, model: torch.nn.Module, layers: Sequence[str], size: int) -> tuple[list[str], list[Shape] | None]:
    """Run the model once on a meta image and read each layer's output as a feature map."""
    outputs: dict[str, Any] = {}
    modules = dict(model.named_modules())
    handles = [
        modules[name].register_forward_hook(lambda module, args, output, name=name: outputs.__setitem__(name, output))
        for name in layers
    ]
    try:
        model.eval()(torch.empty(1, 3, size, size, device="meta"))
    finally:
        for handle in handles:
            handle.remove()
    problems, shapes = [], []
    for index, name in enumerate(layers):
        if name not in outputs:
            problems.append(f"{key}.layers[{index}]: {name!r} is not run by the forward pass of {type(model).__name__}")
            continue
        try:
            shapes.append(tuple(as_feature_map(outputs[name]).shape[1:]))
        except ValueError as error:
            problems.append(f"{key}.layers[{index}]: {name!r} gives no feature map to align: {error}")
    return problems, (None if problems else shapes)


def _closest(name: str, modules: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, modules, n=3, cutoff=0.6)
    if close:
        return "closest: " + ", ".join(close)
    top = [m for m in modules if "." not in m]
    return "its top-level modules: " + ", ".join(top[:12])


def _subspace_problems(pair: str, spec: dict[str, Any], teacher: list[Shape], student: list[Shape], methods: list[str]) -> list[str]:
    """A subspace method keeps as many teacher directions as the student layer has channels."""
    return [
        f"pairs.{pair}: {', '.join(methods)} fits {s[0]} directions of teacher layer {t_name} for student layer "
        f"{s_name}, but the teacher layer has only {t[0]} channels"
        for t_name, s_name, t, s in zip(spec["teacher"]["layers"], spec["student"]["layers"], teacher, student)
        if s[0] > t[0]
    ]
