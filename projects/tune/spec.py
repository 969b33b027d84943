"""Study files: load ``studies/<name>.yaml``, validate it against its entry point, build sampler/pruner.

A study file::

    entry_point: simclr              # a key of projects.entrypoints.ENTRY_POINTS (or a dotted module)
    objective: {metric: probe_top1, direction: maximize}   # a per-epoch metric of the entry's runs
    pruner: {type: median, n_startup_trials: 5, n_warmup_steps: 10}   # or hyperband / none
    sampler: {type: tpe, n_startup_trials: 10}                        # or random
    base: {dataset: cifar10, epochs: 100}                            # entry params every trial shares
    search_space:                                                    # keys: the entry's Config fields
      lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
      batch_size: {type: categorical, choices: [128, 256, 512]}
    registry: {name: simclr-resnet18, metric: probe_top1, submodule: encoder}   # optional: register the best

``registry.metric`` is read from the best trial's returned metrics (e.g. ``test_top1``) and compared with
the current champion's; ``submodule`` registers ``model.<submodule>`` (e.g. SimCLR's encoder).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import yaml

from projects.core.config import from_dict
from projects.core.errors import ConfigError
from projects.entrypoints import ENTRY_POINTS

STUDIES_DIR = Path(__file__).resolve().parents[2] / "studies"
DIRECTIONS = ("maximize", "minimize")
PRUNERS = ("median", "hyperband", "none")
SAMPLERS = ("tpe", "random")
DISTRIBUTIONS = ("float", "int", "categorical")
TOP_LEVEL_KEYS = {
    "name",
    "description",
    "entry_point",
    "objective",
    "pruner",
    "sampler",
    "base",
    "search_space",
    "registry",
}
# Fields the tune machinery sets on every trial: each trial is a fresh run (no resuming another trial's
# checkpoint when two trials happen to draw the same params), and only the study's best is registered.
TRIAL_FIXED = {"resume": False, "register": False}


@dataclass
class StudySpec:
    name: str
    entry_point: str  # the name shown in MLflow/registry; the module below is what runs
    module: str
    metric: str
    direction: str
    search_space: dict[str, dict[str, Any]]
    base: dict[str, Any] = field(default_factory=dict)
    pruner: dict[str, Any] = field(default_factory=lambda: {"type": "median"})
    sampler: dict[str, Any] = field(default_factory=lambda: {"type": "tpe"})
    registry: dict[str, str] | None = None
    path: str = ""

    def config_class(self) -> type:
        return import_entry(self.module).Config

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def available_studies() -> list[str]:
    return sorted(p.stem for p in STUDIES_DIR.glob("*.yaml"))


def study_path(study: str) -> Path:
    """``simclr`` -> studies/simclr.yaml; a path to a .yaml file is taken as is."""
    if study.endswith((".yaml", ".yml")) or "/" in study:
        path = Path(study).expanduser()
        if not path.is_file():
            raise ConfigError(f"study file {path} does not exist")
        return path
    path = STUDIES_DIR / f"{study}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown study {study!r}; choose one of: {', '.join(available_studies())}")
    return path


def import_entry(module: str) -> Any:
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(f"entry module {module!r} cannot be imported: {exc}") from None
    if not hasattr(mod, "Config") or not hasattr(mod, "run"):
        raise ConfigError(f"entry module {module!r} has no Config/run")
    return mod


def _section(raw: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = raw.get(key) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: '{key}' must be a mapping, got {type(value).__name__}")
    return value


def _number(value: Any, what: str) -> float:
    try:
        number = float(value)  # YAML 1.1 reads 1e-4 (no dot) as a string
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ConfigError(f"{what} must be finite, got {value!r}")
    return number


def _check_distribution(key: str, dist: Any, where: str) -> dict[str, Any]:
    if not isinstance(dist, dict) or dist.get("type") not in DISTRIBUTIONS:
        raise ConfigError(f"{where}: search_space.{key} needs type: one of {', '.join(DISTRIBUTIONS)}")
    kind = dist["type"]
    if kind == "categorical":
        choices = dist.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}: search_space.{key} (categorical) needs a non-empty list 'choices'")
        return {"type": kind, "choices": choices}
    unknown = set(dist) - {"type", "low", "high", "log", "step"}
    if unknown:
        raise ConfigError(f"{where}: search_space.{key} has unknown field(s) {sorted(unknown)}")
    low, high = _number(dist.get("low"), f"{key}.low"), _number(dist.get("high"), f"{key}.high")
    log = bool(dist.get("log", False))
    if not low < high or (log and low <= 0):
        raise ConfigError(f"{where}: search_space.{key} needs low < high (low > 0 if log), got {low}..{high}")
    out: dict[str, Any] = {"type": kind, "low": low, "high": high, "log": log}
    if kind == "int":
        if not (low.is_integer() and high.is_integer()):
            raise ConfigError(f"{where}: search_space.{key} (int) needs integer bounds")
        out.update(low=int(low), high=int(high), step=int(dist.get("step", 1)))
    elif dist.get("step") is not None:
        out["step"] = _number(dist["step"], f"{key}.step")
    return out


def resolve_module(entry_point: str) -> str:
    """An ENTRY_POINTS name, or else an importable module with Config/run (e.g. a test's tiny entry)."""
    if entry_point in ENTRY_POINTS:
        return ENTRY_POINTS[entry_point]
    if importlib.util.find_spec(entry_point.split(".")[0]) is None:
        raise ConfigError(f"unknown entry_point {entry_point!r}; choose one of: {', '.join(ENTRY_POINTS)}")
    return entry_point


def load_spec(study: str) -> StudySpec:
    """Read and validate a study file: a ``ConfigError`` (one line) for anything wrong in it."""
    path = study_path(study)
    where = str(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must hold a mapping")
    unknown = set(raw) - TOP_LEVEL_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(TOP_LEVEL_KEYS)}")
    if "entry_point" not in raw:
        raise ConfigError(f"{where}: missing 'entry_point'")
    objective = _section(raw, "objective", where)
    if not objective.get("metric"):
        raise ConfigError(f"{where}: objective.metric is required (a per-epoch metric of the entry's runs)")
    direction = objective.get("direction", "maximize")
    if direction not in DIRECTIONS:
        raise ConfigError(f"{where}: objective.direction must be maximize or minimize, got {direction!r}")
    space = _section(raw, "search_space", where)
    if not space:
        raise ConfigError(f"{where}: search_space is empty")
    pruner = {"type": "median", **_section(raw, "pruner", where)}
    sampler = {"type": "tpe", **_section(raw, "sampler", where)}
    if pruner["type"] not in PRUNERS:
        raise ConfigError(f"{where}: pruner.type must be one of {', '.join(PRUNERS)}; got {pruner['type']}")
    if sampler["type"] not in SAMPLERS:
        raise ConfigError(f"{where}: sampler.type: one of {', '.join(SAMPLERS)}; not {sampler['type']}")
    registry = raw.get("registry")
    spec = StudySpec(
        name=str(raw.get("name") or path.stem),
        entry_point=str(raw["entry_point"]),
        module=resolve_module(str(raw["entry_point"])),
        metric=str(objective["metric"]),
        direction=direction,
        search_space={k: _check_distribution(k, v, where) for k, v in space.items()},
        base=_section(raw, "base", where),
        pruner=pruner,
        sampler=sampler,
        registry=_registry(registry, str(objective["metric"]), where) if registry is not None else None,
        path=str(path),
    )
    return spec


def _registry(raw: Any, objective_metric: str, where: str) -> dict[str, str]:
    if not isinstance(raw, dict) or not raw.get("name"):
        raise ConfigError(f"{where}: registry needs a name (and optionally metric, direction, submodule)")
    unknown = set(raw) - {"name", "metric", "direction", "submodule"}
    if unknown:
        raise ConfigError(f"{where}: registry has unknown key(s) {sorted(unknown)}")
    out = {"name": str(raw["name"]), "metric": str(raw.get("metric", objective_metric))}
    out.update({k: str(raw[k]) for k in ("direction", "submodule") if raw.get(k)})
    return out


def trial_values(spec: StudySpec, overrides: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The entry Config's values for one trial: base < overrides < sampled params < tune's fixed fields."""
    fields = {f.name for f in dataclasses.fields(spec.config_class())}
    fixed = {k: v for k, v in TRIAL_FIXED.items() if k in fields}
    return {**spec.base, **overrides, **params, **fixed}


def representative_params(spec: StudySpec) -> dict[str, Any]:
    """One in-range value per search-space key (low bound / first choice), to validate a config early."""
    return {
        k: d["choices"][0] if d["type"] == "categorical" else d["low"] for k, d in spec.search_space.items()
    }


def validate(spec: StudySpec, overrides: dict[str, Any]) -> None:
    """Every key must be a field of the entry's Config, and a trial's config must build; else ConfigError."""
    cls = spec.config_class()
    fields = {f.name for f in dataclasses.fields(cls)}
    for section, keys in (("search_space", spec.search_space), ("base", spec.base), ("overrides", overrides)):
        unknown = sorted(set(keys) - fields)
        if unknown:
            raise ConfigError(
                f"{section} key(s) {unknown} are not parameters of entry point {spec.entry_point!r} "
                f"({spec.module}.Config); known: {sorted(fields)}"
            )
    searched = sorted(set(overrides) & set(spec.search_space))
    if searched:
        raise ConfigError(f"overrides fix {searched}, which study {spec.name!r} searches; drop them")
    try:
        cfg = from_dict(cls, trial_values(spec, overrides, representative_params(spec)))
    except ConfigError as exc:
        raise ConfigError(f"study {spec.name!r}: a trial's config is invalid: {exc}") from None
    monitored = getattr(cfg, "monitor_metric", spec.metric)
    if monitored != spec.metric:
        raise ConfigError(
            f"study {spec.name!r} prunes on {spec.metric} but its trials' monitor logs {monitored}: set the "
            "study's objective.metric to the trials' eval_metric, or override eval_metric to match"
        )
    if getattr(cfg, "nproc_per_node", 1) > 1:
        raise ConfigError(
            f"study {spec.name!r}: a trial trains in its worker's process, so nproc_per_node must be 1; "
            "run trials in parallel with more workers instead"
        )


def suggest(trial: optuna.Trial, spec: StudySpec) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key, d in spec.search_space.items():
        if d["type"] == "categorical":
            params[key] = trial.suggest_categorical(key, d["choices"])
        elif d["type"] == "int":
            params[key] = trial.suggest_int(key, d["low"], d["high"], step=d["step"], log=d["log"])
        else:
            params[key] = trial.suggest_float(key, d["low"], d["high"], step=d.get("step"), log=d["log"])
    return params


def make_pruner(settings: dict[str, Any], epochs: int | None) -> optuna.pruners.BasePruner:
    """MedianPruner with warm-up by default (Optuna's advice for short DL budgets); Hyperband on request."""
    kind = settings.get("type", "median")
    kwargs = {k: v for k, v in settings.items() if k != "type"}
    try:
        if kind == "median":
            kwargs.setdefault("n_startup_trials", 5)
            kwargs.setdefault("n_warmup_steps", max(1, (epochs or 10) // 10))
            return optuna.pruners.MedianPruner(**kwargs)
        if kind == "hyperband":
            kwargs.setdefault("min_resource", 1)
            kwargs.setdefault("max_resource", epochs or "auto")
            kwargs.setdefault("reduction_factor", 3)
            return optuna.pruners.HyperbandPruner(**kwargs)
        if kind == "none":
            return optuna.pruners.NopPruner()
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"pruner {kind}: {exc}") from None
    raise ConfigError(f"pruner must be one of {', '.join(PRUNERS)}, got {kind!r}")


def make_sampler(settings: dict[str, Any], seed: int | None) -> optuna.samplers.BaseSampler:
    kind = settings.get("type", "tpe")
    kwargs = {k: v for k, v in settings.items() if k != "type"}
    try:
        if kind == "tpe":
            # constant_liar: parallel workers do not all sample next to the same running trial.
            kwargs.setdefault("constant_liar", True)
            return optuna.samplers.TPESampler(seed=seed, **kwargs)
        if kind == "random":
            return optuna.samplers.RandomSampler(seed=seed, **kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"sampler {kind}: {exc}") from None
    raise ConfigError(f"sampler must be one of {', '.join(SAMPLERS)}, got {kind!r}")
