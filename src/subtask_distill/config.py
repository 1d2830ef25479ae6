"""Loading and validating study configs.

Three layers of checks, all run before any job starts (the workflow runs them
when it starts, dry runs included; a script, when it loads its config):
- the JSON schema (``config.schema.yaml``, shipped with the package): types,
  ranges, unknown keys, defaults;
- ``check_semantics``: what a schema cannot say (a method or architecture that
  is not registered, an option value a method does not take, subtask classes
  the data cannot provide, ...);
- ``check_layers``: every pair's layers against its architectures.
Every problem is one line that names the config key at fault.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
import re
import typing
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml


class ConfigError(ValueError):
    """A config value is invalid; the message names its key."""


def load_schema() -> dict[str, Any]:
    return yaml.safe_load(resources.files(__package__).joinpath("config.schema.yaml").read_text())


def key_path(parts) -> str:
    """['training', 'epochs'] -> 'training.epochs'; list indices as [i]."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "<top level>"


def _with_defaults(validator_class):
    """A validator that also fills in the schema's defaults (as Snakemake's validate does)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def validate_config(config: dict[str, Any], partial: bool = False, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """Validate (and fill defaults of) a config; return the completed copy.

    ``partial`` accepts a config holding only some top-level sections, as the
    workflow passes to each job; the sections present are fully checked.
    """
    schema = copy.deepcopy(schema or load_schema())
    if partial:
        schema.pop("required", None)
    config = copy.deepcopy(config)
    validator_class = _with_defaults(jsonschema.validators.validator_for(schema))
    errors = sorted(validator_class(schema).iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        raise ConfigError("invalid config:\n" + "\n".join(f"  {_schema_problem(e)}" for e in errors))
    check_semantics(config, partial)
    return config


def _schema_problem(error: jsonschema.ValidationError) -> str:
    """One line naming the key: a missing or unknown key by its own name, any other problem by its value's."""
    path = list(error.absolute_path)
    if error.validator == "required":
        missing = re.match(r"'(.+)' is a required property", error.message)
        if missing:
            return f"{key_path(path + [missing.group(1)])}: required, but missing"
    if error.validator == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(known))
        hint = f"; known keys: {', '.join(known)}" if known else ""
        return "; ".join(f"{key_path(path + [key])}: unknown key" for key in unknown) + hint
    return f"{key_path(path)}: {error.message}"


def check_semantics(config: dict[str, Any], partial: bool = False) -> None:
    """Checks beyond the schema, against the registries and the data (``partial``: a job's sections only)."""
    from .data.textures import NUM_CLASSES
    from .methods import get_method, list_methods
    from .models import list_models

    problems = []
    for name, options in config.get("methods", {}).items():
        if name not in list_methods():
            problems.append(f"methods.{name}: unknown method; registered methods: {', '.join(list_methods())}")
            continue
        problems += _option_problems(name, get_method(name), options or {})
        problems += _orthogonal_map_problems(name, get_method(name), options or {}, config.get("training"))
    for pair, spec in config.get("pairs", {}).items():
        for role in ("teacher", "student"):
            arch = spec[role]["arch"]
            if arch not in list_models():
                problems.append(f"pairs.{pair}.{role}.arch: unknown model {arch!r}; registered: {', '.join(list_models())}")
        problems += _teacher_source_problems(pair, spec["teacher"], config, partial)
        n_teacher, n_student = len(spec["teacher"]["layers"]), len(spec["student"]["layers"])
        if n_teacher != n_student:
            problems.append(
                f"pairs.{pair}: teacher.layers has {n_teacher} entries but student.layers has {n_student}; they are paired"
            )
    data = config.get("data")
    if data and data["kind"] == "embedded":
        for index, cls in enumerate(data["subtask_classes"]):
            if cls >= NUM_CLASSES:
                problems.append(f"data.subtask_classes[{index}]: {cls} is not a texture class (0..{NUM_CLASSES - 1})")
        texture = data.get("texture", {})
        for key in ("radius", "centre", "period", "colour_gap"):
            low, high = texture.get(key, (0, 0))
            if low > high:
                problems.append(f"data.texture.{key}: lower bound {low} exceeds upper bound {high}")
    if data:
        problems += _data_problems(data, config.get("training"))
        problems += _artifact_problems(data)
    problems += _study_problems(config)
    if problems:
        raise ConfigError("invalid config:\n" + "\n".join(f"  {p}" for p in problems))


def check_layers(config: dict[str, Any]) -> None:
    """Every pair's layers against its architectures: each layer exists and gives a feature map to align.

    Builds the networks on PyTorch's meta device (no memory, no arithmetic): a
    second or two for the paper's pairs, so the workflow runs it at start-up.
    """
    from .layer_check import pair_layer_problems

    problems = pair_layer_problems(config)
    if problems:
        raise ConfigError("invalid config:\n" + "\n".join(f"  {p}" for p in problems))


def is_pretrained(teacher: dict[str, Any]) -> bool:
    """Pretrained teachers are imported (weights or checkpoint); the others are trained by the workflow."""
    return "weights" in teacher or "checkpoint" in teacher


def _teacher_source_problems(pair: str, teacher: dict[str, Any], config: dict[str, Any], partial: bool) -> list[str]:
    key = f"pairs.{pair}.teacher"
    if "weights" in teacher and "checkpoint" in teacher:
        return [f"{key}: set weights or checkpoint, not both"]
    data = config.get("data")
    if is_pretrained(teacher) or not data:
        return []
    if data["kind"] == "imagenet":
        return [f"{key}: ImageNet teachers are pretrained: set {key}.weights (a torchvision enum name) or {key}.checkpoint"]
    if "teacher_training" not in config and not partial:
        return [f"teacher_training: required to train the teacher of pair {pair} (or set {key}.weights or .checkpoint)"]
    return []


def _data_problems(data: dict[str, Any], training: dict[str, Any] | None) -> list[str]:
    problems = []
    if data["kind"] == "imagenet":
        wnids = data.get("wnids")
        if wnids is None:
            problems.append("data.wnids: required for kind imagenet (the ImageNet folders of the subtask classes)")
        elif len(wnids) != len(data["subtask_classes"]):
            problems.append(f"data.wnids: {len(wnids)} folders for {len(data['subtask_classes'])} subtask_classes; they are paired")
    elif data.get("augment"):
        problems.append("data.augment: only ImageNet data is augmented (flips would change the embedded stripe classes)")
    if data.get("augment") and training and training.get("teacher_outputs") == "cached":
        problems.append("training.teacher_outputs: cached needs fixed inputs, but data.augment is true (use online or auto)")
    return problems


_RESERVED_OPTIONS = {"self", "teacher_shape", "student_shape", "subspace", "context"}


def _option_problems(name: str, method, options: dict[str, Any]) -> list[str]:
    """Options of a method are keyword arguments of its layer loss."""
    if not options:
        return []
    if method.layer_loss is None:
        return [f"methods.{name}: output-only KD takes no options, got {sorted(options)}"]
    return _keyword_problems(f"methods.{name}", method.layer_loss, options)


def _keyword_problems(key: str, builder, options: dict[str, Any]) -> list[str]:
    """Check options against the keyword arguments of ``builder`` (a class or function): names, and values
    where it annotates them (``Literal[...]``, ``bool``), before any job runs."""
    function = builder.__init__ if inspect.isclass(builder) else builder
    known = set(inspect.signature(function).parameters) - _RESERVED_OPTIONS
    hints = typing.get_type_hints(function)
    problems = []
    for option, value in options.items():
        if option not in known:
            problems.append(f"{key}.{option}: not an option of {builder.__name__} (options: {', '.join(sorted(known)) or 'none'})")
        elif typing.get_origin(hints.get(option)) is typing.Literal and value not in typing.get_args(hints[option]):
            problems.append(f"{key}.{option}: {value!r} is not one of {', '.join(map(str, typing.get_args(hints[option])))}")
        elif hints.get(option) is bool and not isinstance(value, bool):
            problems.append(f"{key}.{option}: {value!r} must be true or false")
    return problems


def _artifact_problems(data: dict[str, Any]) -> list[str]:
    from .artifacts import get_artifact, list_artifacts
    from .artifacts.registry import ARTIFACT_SETTINGS

    spec = data["artifact"]
    problems = []
    for name, options in spec.items():
        if name in ARTIFACT_SETTINGS:
            continue
        if name not in list_artifacts():
            problems.append(f"data.artifact.{name}: not an artifact kind; registered: {', '.join(list_artifacts())}")
        else:
            problems += _keyword_problems(f"data.artifact.{name}", get_artifact(name), options or {})
    if spec["kind"] not in list_artifacts():
        return problems + [f"data.artifact.kind: unknown artifact {spec['kind']!r}; registered: {', '.join(list_artifacts())}"]
    kind = get_artifact(spec["kind"])
    if not kind.class_coded and spec["target_class"] >= len(data["subtask_classes"]):
        problems.append(f"data.artifact.target_class: {spec['target_class']} is not a subtask class (0..{len(data['subtask_classes']) - 1})")
    return problems


def _study_problems(config: dict[str, Any]) -> list[str]:
    """Layer subsets against the pairs' layers, and the biased teacher against the data kind."""
    problems = []
    for subset in config.get("layer_subsets", ["all"]):
        if subset == "all":
            continue
        for pair, spec in config.get("pairs", {}).items():
            if max(subset) > len(spec["teacher"]["layers"]):
                problems.append(f"layer_subsets: {subset} names layer {max(subset)}, but pair {pair} pairs {len(spec['teacher']['layers'])}")
    teacher_training = config.get("teacher_training") or {}
    data = config.get("data")
    if teacher_training.get("artifact_rho") and data and data["kind"] != "embedded":
        problems.append("teacher_training.artifact_rho: a biased teacher is trained by the embedded study only (ImageNet teachers are pretrained)")
    return problems


def _orthogonal_map_problems(name: str, method, options: dict[str, Any], training: dict[str, Any] | None) -> list[str]:
    """PyTorch's Householder map keeps its diagonal at -1 with no gradient; weight decay shrinks it, and
    truncated to an integer it zeroes the whole map after the first step."""
    if method.layer_loss is None or not training or not training.get("weight_decay"):
        return []
    parameter = inspect.signature(method.layer_loss).parameters.get("orthogonal_map")
    if parameter is None or options.get("orthogonal_map", parameter.default) != "householder":
        return []
    return [
        f"methods.{name}.orthogonal_map: householder collapses to a zero map with training.weight_decay > 0 "
        "(PyTorch's Householder parametrisation); use cayley, or weight_decay 0 as the authors did"
    ]


def load_config(source: str | Path) -> dict[str, Any]:
    """Load a config from a YAML file, or from an inline YAML/JSON mapping.

    A file is a whole study config; an inline mapping is the part of one that
    the workflow hands to a job.
    """
    text = str(source)
    path = Path(text)
    if not text.lstrip().startswith("{") and path.suffix in {".yaml", ".yml", ".json"}:
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist")
        config, partial = yaml.safe_load(path.read_text()), False
    else:
        config, partial = yaml.safe_load(text), True
    if not isinstance(config, dict):
        raise ConfigError(f"config {text[:80]!r} is neither a YAML file path nor an inline mapping")
    return validate_config(config, partial=partial)


def config_hash(config: dict[str, Any]) -> str:
    """A stable digest of a (sub)config: the same settings give the same hash."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
