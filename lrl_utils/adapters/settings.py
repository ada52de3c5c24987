"""Adapter settings checked against the method they belong to, when params load (before any compute).

An entry of `params/adapters.yaml` is keyed by an adapter method of `registry.ADAPTER_METHODS` (`seq_bn`,
`seq_bn_inv`, `lora`, `mosa`) and names the `adapters` 1.3.0 config (`config`) it is built from plus config
`overrides`; a profile may override further (`adapter_overrides.<method>`). Checked here, each as a one-line
ParamError naming the file and the key:

- the method is registered; the `config` is a name of the library's `ADAPTER_CONFIG_MAP` that stands for the
  method's own config (`seq_bn` or its alias `pfeiffer` for `seq_bn`; `lora` is not a config of `seq_bn`);
- every override key is a field of the method's config class (`SeqBnConfig`, `SeqBnInvConfig`, `LoRAConfig`, ...)
  or one of the method's own settings (`mosa`: `num_modules`, `consistency_weight`), with a close-match hint;
- every override value has the type the config class declares (`reduction_factor: float | Mapping`, `r: int`,
  `attn_matrices: List[str]`, ...), and, where a range is known, lies in it (`LIBRARY_BOUNDS`, and the bounds of
  the method's settings class: MoSA's `num_modules >= 2`, `consistency_weight >= 0`); floats are finite.

This imports the `adapters` library (and torch), ~2-4 s once per process.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import types
import typing
from typing import Any, Literal

from lrl_utils.config import params, paths, profiles
from lrl_utils.config.params import Registry
from lrl_utils.config.profiles import Profile
from lrl_utils.config.schema import ParamError, _check_bounds, _help, _type_name, check_name, from_dict

# Ranges of `adapters` config fields (the library does not check them before a model is built).
LIBRARY_BOUNDS: dict[str, dataclasses.Field] = {
    "reduction_factor": _help("hidden size / bottleneck size (or per layer)", above=0),
    "inv_adapter_reduction_factor": _help("invertible adapter reduction", above=0),
    "r": _help("LoRA rank", minimum=1),
    "alpha": _help("LoRA scaling numerator", above=0),
    "dropout": _help("dropout probability", minimum=0, below=1),
    "phm_dim": _help("PHM dimension", minimum=1),
    "phm_rank": _help("PHM rank", minimum=1),
    "leave_out": _help("layers without an adapter", minimum=0),
    "init_weights_seed": _help("seed of every layer's initialisation", minimum=0),
}


def _accepts(value: Any, tp: Any) -> bool:
    """Whether a YAML value fits a config field's annotation (unknown annotations accept anything)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(value, option) for option in args)
    if tp is type(None):
        return value is None
    if origin is Literal:
        return value in args
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if origin in (list, tuple, collections.abc.Sequence) or tp in (list, tuple):
        item = args[0] if args else Any
        return isinstance(value, (list, tuple)) and all(_accepts(v, item) for v in value)
    if origin in (dict, collections.abc.Mapping) or tp in (dict, collections.abc.Mapping):
        item = args[1] if len(args) == 2 else Any
        return isinstance(value, dict) and all(_accepts(v, item) for v in value.values())
    return isinstance(value, tp) if isinstance(tp, type) else True


def _config_map() -> dict:
    from adapters.configuration.adapter_config import ADAPTER_CONFIG_MAP

    return ADAPTER_CONFIG_MAP


def _registry():
    from lrl_utils.adapters import registry

    return registry


def check_adapter_setting(method: str, config: str, overrides: dict[str, Any], file: str, where: str) -> None:
    """Check a `params/adapters.yaml` entry `where` (`adapters.<method>`): method, config name, overrides."""
    registry, configs = _registry(), _config_map()
    check_name(method, registry.ADAPTER_METHODS, file, where, "adapter method")
    own = configs[registry.method(method).config_name]
    check_name(config, configs, file, f"{where}.config", "`adapters` config")
    if not registry.builds_on(method, config):
        aliases = [name for name in configs if registry.builds_on(method, name)]
        raise ParamError(
            f"{file}: `{where}.config`: {config!r} is not a config of adapter method {method!r}, which builds on "
            f"{type(own).__name__} ({' or '.join(repr(a) for a in aliases)})"
        )
    check_overrides(method, overrides, file, f"{where}.overrides")


def check_overrides(method: str, overrides: dict[str, Any], file: str, where: str) -> None:
    """Check config overrides `where` (e.g. `adapter_overrides.seq_bn`) against method `method`'s config class."""
    spec = _registry().method(method)
    cls = type(_config_map()[spec.config_name])
    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    own = set(spec.settings)  # the method's own settings (MoSA's)
    for key, value in overrides.items():
        if key in own:
            continue
        if key not in fields:
            known = sorted(fields | own)
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean `{where}.{close[0]}`?" if close else f"known: {', '.join(known)}"
            raise ParamError(
                f"{file}: unknown key `{where}.{key}` for adapter method {method!r} ({cls.__name__}; {hint})"
            )
        if not _accepts(value, hints[key]):
            raise ParamError(
                f"{file}: `{where}.{key}`: expected {_type_name(hints[key])} ({cls.__name__}), "
                f"got {type(value).__name__} {value!r}"
            )
        _check_bounds(value, LIBRARY_BOUNDS.get(key, _help("")), f"{where}.{key}", file)
    if own & set(overrides) and spec.settings_class is not None:  # types and bounds of its settings class
        from_dict(spec.settings_class, {k: v for k, v in overrides.items() if k in own}, file, where)


def check_registry(reg: Registry) -> None:
    """Check every entry of `params/adapters.yaml` against its method (`check_adapter_setting`)."""
    for name, setting in reg.adapters.items():
        check_adapter_setting(
            name, setting.config, setting.overrides, "params/adapters.yaml", f"adapters.{name}"
        )


def load_registry() -> Registry:
    """`config.params.load_registry`, plus the adapter entries checked against the `adapters` library."""
    reg = params.load_registry()
    check_registry(reg)
    return reg


def load_profile(name: str, registry: Registry | None = None) -> tuple[Profile, Registry]:
    """`config.profiles.load_profile`, plus every check against the `adapters` library: the registry's adapter
    entries (unless `registry` is given, already checked) and the profile's `adapter_overrides`."""
    prof, reg = profiles.load_profile(name, registry)
    if registry is None:
        check_registry(reg)
    file = paths.relative(profiles.profile_path(name))
    for adapter, overrides in prof.adapter_overrides.items():
        check_overrides(adapter, overrides, file, f"adapter_overrides.{adapter}")
    return prof, reg
