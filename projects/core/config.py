"""Typed entry-point configs: one dataclass per entry point is the single source of its parameter names.

The same field names are the CLI flags (``--lr``), the MLproject parameters (``-P lr=...``), the MLflow
params and the Optuna search-space keys. Validation runs in ``__post_init__``, so an invalid config
cannot exist and bad input fails before any data is read.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import typing
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from projects.core.errors import ConfigError

C = TypeVar("C")

# Fields that change how a run executes but not what it computes; excluded from the resume key.
NON_IDENTITY_FIELDS = {"resume", "num_workers", "register", "experiment", "progress"}


def param(default: Any, help: str, choices: Sequence[Any] | None = None) -> Any:
    """A dataclass field with its CLI help text and allowed values."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices})


def check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> None:
    allowed = list(allowed)
    check(value in allowed, f"{name}={value!r} is not allowed; choose one of: {', '.join(map(str, allowed))}")


def check_positive(config: Any, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        check(value > 0, f"{name} must be > 0, got {value}")


def check_shares(config: Any) -> None:
    """``fraction`` and ``label_fraction`` in (0, 1] (all of a split is fine) and ``val_fraction`` in
    (0, 1), where declared."""
    for name in ("fraction", "label_fraction"):
        if hasattr(config, name):
            value = getattr(config, name)
            check(0 < value <= 1, f"{name} must be in (0, 1], got {value}")
    if hasattr(config, "val_fraction"):
        check(0 < config.val_fraction < 1, f"val_fraction must be in (0, 1), got {config.val_fraction}")


SEED_RANGE = 2**32  # numpy's default_rng and torch's manual_seed both take seeds in [0, 2**32)


def validate_choices(config: Any) -> None:
    """Check every field declared with ``choices``, and ``seed`` where declared (a negative seed would
    otherwise fail deep inside numpy with a traceback)."""
    for f in dataclasses.fields(config):
        choices = f.metadata.get("choices")
        if choices:
            check_choice(f.name, getattr(config, f.name), choices)
    seed = getattr(config, "seed", 0)
    check(0 <= seed < SEED_RANGE, f"seed must be in [0, 2**32), got {seed}")


def field_types(config_cls: type) -> dict[str, type]:
    hints = typing.get_type_hints(config_cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(config_cls)}


def parse_bool(text: str | bool) -> bool:
    if isinstance(text, bool):
        return text
    lowered = str(text).strip().lower()
    if lowered in {"1", "true", "yes", "y", "on"}:
        return True
    if lowered in {"0", "false", "no", "n", "off"}:
        return False
    raise ConfigError(f"expected a boolean (true/false), got {text!r}")


def coerce(name: str, kind: type, value: Any) -> Any:
    """Convert a CLI/Optuna value to the field's declared type, with a one-line error."""
    try:
        if kind is bool:
            return parse_bool(value)
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be of type {kind.__name__}, got {value!r}") from None


def build_parser(config_cls: type, description: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description or config_cls.__doc__)
    types = field_types(config_cls)
    for f in dataclasses.fields(config_cls):
        kind = types[f.name]
        help_text = f.metadata.get("help", "")
        if f.metadata.get("choices"):
            help_text += f" (one of: {', '.join(map(str, f.metadata['choices']))})"
        parser.add_argument(
            f"--{f.name}", dest=f.name, default=f.default, metavar=kind.__name__.upper(), help=help_text
        )
    return parser


def from_dict(config_cls: type[C], values: dict[str, Any]) -> C:
    """Build a config from loosely typed values (strings from the CLI, numbers from Optuna)."""
    types = field_types(config_cls)
    unknown = sorted(set(values) - set(types))
    check(not unknown, f"unknown parameter(s) {unknown} for {config_cls.__name__}; known: {sorted(types)}")
    typed = {k: coerce(k, types[k], v) for k, v in values.items()}
    return config_cls(**typed)


def parse_args(config_cls: type[C], argv: Sequence[str] | None = None) -> C:
    namespace = build_parser(config_cls).parse_args(argv)
    return from_dict(config_cls, vars(namespace))


def replace(config: C, **changes: Any) -> C:
    """``dataclasses.replace`` with type coercion and re-validation."""
    values = dataclasses.asdict(config)
    values.update(changes)
    return from_dict(type(config), values)


def parse_overrides(text: str, what: str = "overrides") -> dict[str, str]:
    """``"dataset=synthetic,epochs=2"`` -> {"dataset": "synthetic", "epochs": "2"}."""
    out: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{what} must look like key=value,key=value; got {item!r}")
        out[key.strip()] = value.strip()
    return out


def to_params(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def run_key(config: Any, entry_point: str) -> str:
    """A stable hash of what a run computes: equal keys mean a re-run may resume the earlier run."""
    identity = {k: v for k, v in to_params(config).items() if k not in NON_IDENTITY_FIELDS}
    blob = json.dumps({"entry_point": entry_point, **identity}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
