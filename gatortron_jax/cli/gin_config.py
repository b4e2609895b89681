"""Gin at the edge: the only place configuration classes become gin-configurable.

Library code takes plain dataclasses. The CLI parses ``--gin_file`` / ``--gin.NAME=VALUE``
here and builds the dataclasses with :func:`build`. Any mistake — an unknown configurable,
a misspelled parameter, a missing required value, a missing file — becomes one
:class:`ConfigError` line naming the culprit.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from typing import Any, Sequence, TypeVar

import gin

from gatortron_jax.core.errors import ConfigError
from gatortron_jax.models.config import EncoderConfig
from gatortron_jax.core.optimizer import OptimizerConfig
from gatortron_jax.core.partitioning import MeshConfig
from gatortron_jax.pretraining.config import MLMDataConfig, TrainConfig
from gatortron_jax.finetuning.config import (
    FinetuneConfig, NERDataConfig, NERTrainConfig, TaskDataConfig, TaskTrainConfig,
)
from gatortron_jax.core.paths import REPO_ROOT
from gatortron_jax.annotations.patterns import PatternConfig


_CONFIGURABLES = {
    cls: gin.external_configurable(cls, name=cls.__name__, module="gatortron_jax")
    for cls in (EncoderConfig, OptimizerConfig, TrainConfig, MLMDataConfig, MeshConfig)
    # fine-tuning (finetuning/config.py): one train config; NERTrainConfig / TaskTrainConfig are
    # the names existing gin files use for the same fields (see build_finetune_config)
    + (FinetuneConfig, NERTrainConfig, TaskTrainConfig, NERDataConfig, TaskDataConfig)
    # de-id: which pattern recognizers run beside the model (stored in the model dir by finetune)
    + (PatternConfig,)
}

T = TypeVar("T")


def _resolve(path: str) -> str:
    for candidate in (path, os.path.join(REPO_ROOT, path)):
        if os.path.isfile(candidate):
            return candidate
    raise ConfigError(f"gin file not found: {path}")


def parse(gin_files: Sequence[str], overrides: Sequence[str]) -> None:
    """Parse gin files then ``NAME=VALUE`` overrides (later wins); errors become one line."""
    gin.clear_config()
    gin.add_config_file_search_path(REPO_ROOT)
    files = [_resolve(f) for f in gin_files]
    for override in overrides:
        if "=" not in override:
            raise ConfigError(f"--gin.{override}: expected --gin.NAME=VALUE")
    try:
        gin.parse_config_files_and_bindings(files, list(overrides), finalize_config=True)
    except (ValueError, IOError, SyntaxError) as e:
        first = str(e).strip().splitlines()
        where = " ".join(line.strip() for line in first[1:3])
        raise ConfigError(f"gin: {first[0] if first else e}" + (f" ({where})" if where else "")) from None


def _accepts(expected: Any, value: Any) -> bool:
    """Whether ``value`` fits the field annotation ``expected`` (the simple types configs use)."""
    if expected is Any:
        return True
    origin = typing.get_origin(expected)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(arg, value) for arg in typing.get_args(expected))
    if expected is type(None):
        return value is None
    if origin is not None:  # tuple[...], list[...], dict[...]: the container type only
        expected = origin
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected is tuple:  # gin writes lists for tuples
        return isinstance(value, (tuple, list))
    return isinstance(value, expected) if isinstance(expected, type) else True


def _type_name(expected: Any) -> str:
    return getattr(expected, "__name__", None) or str(expected).replace("typing.", "")


def check_bindings(cls: type) -> None:
    """One ``ConfigError`` naming the binding and the expected type for a wrongly typed value.

    Runs on the bound values before the dataclass is built (its own validation would otherwise
    fail first with a bare ``TypeError``), so e.g. ``--gin.TrainConfig.num_steps="'five'"``
    ends here instead of deep inside the optimizer schedule. Macros and ``@references`` are
    left to gin.
    """
    try:
        hints = typing.get_type_hints(cls)
    except (NameError, TypeError):  # an annotation that does not resolve: nothing to check against
        return
    for field in dataclasses.fields(cls):
        try:
            value = gin.query_parameter(f"{cls.__name__}.{field.name}")
        except ValueError:  # not bound: the dataclass default applies
            continue
        if type(value).__module__.startswith("gin"):  # a macro or @reference: gin resolves it
            continue
        expected = hints.get(field.name, Any)
        if not _accepts(expected, value):
            raise ConfigError(
                f"gin: {cls.__name__}.{field.name}={value!r} is a {type(value).__name__}; "
                f"expected {_type_name(expected)}"
            )


def build(cls: type[T]) -> T:
    """Instantiate a config dataclass with its gin bindings, type-checked against its fields."""
    try:
        check_bindings(cls)
        return _CONFIGURABLES[cls]()
    except TypeError as e:
        msg = str(e)
        if "missing" in msg and "argument" in msg:
            missing = msg.split(":", 1)[-1].strip()
            raise ConfigError(
                f"gin: {cls.__name__} needs {missing}; bind it in a gin file or with --gin.{cls.__name__}.<name>=..."
            ) from None
        raise


def build_finetune_config() -> FinetuneConfig:
    """The one fine-tuning train config from ``FinetuneConfig.*`` and the older names
    ``NERTrainConfig.*`` / ``TaskTrainConfig.*`` (same fields). A field bound to two different
    values under two names is one error naming both."""
    default = FinetuneConfig()
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for cls in (FinetuneConfig, NERTrainConfig, TaskTrainConfig):
        built = build(cls)
        for f in dataclasses.fields(FinetuneConfig):
            value = getattr(built, f.name)
            if value == getattr(default, f.name):
                continue
            if f.name in merged and merged[f.name] != value:
                raise ConfigError(f"gin: {origin[f.name]}.{f.name}={merged[f.name]!r} and {cls.__name__}.{f.name}="
                                  f"{value!r} bind the same setting; keep one (FinetuneConfig.{f.name})")
            merged[f.name], origin[f.name] = value, cls.__name__
    return FinetuneConfig(**merged)


def operative_config() -> str:
    return gin.operative_config_str()


def config_str() -> str:
    return gin.config_str()


__all__ = ["parse", "build", "operative_config", "config_str", "REPO_ROOT", "Any"]
