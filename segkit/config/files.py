"""Config files: ``read_config`` runs one, ``load_config`` also validates it and applies ``key=value`` overrides
(``apply_overrides``)."""
from __future__ import annotations

import dataclasses
import difflib
import re
import runpy
import traceback
import typing
from pathlib import Path

from segkit.config.coerce import coerce, field_types
from segkit.config.sections import ALIASES, SECTIONS, Config, check_key, validate
from segkit.errors import UserError


def read_config(path: str | Path) -> Config:
    """Run a config file (it must define ``config = Config(...)``) and return its config as written, not validated:
    for config files that build on another (``config = read_config(HERE / "lraspp_large.py")``, then change
    fields). A config still named ``segkit`` (the default) is named after the file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file {path} does not exist; pass a file from configs/, e.g. configs/lraspp_large.py.")
    try:
        namespace = runpy.run_path(str(path))
    except UserError as exc:
        message = str(exc)
        raise UserError(message if message.startswith("config file ") else f"config file {path}: {message}",
                        exc.parameter) from None
    except Exception as exc:  # a config file is user code: its mistake is one line, not a traceback
        raise UserError(_config_error(path, exc)) from None
    config = namespace.get("config")
    if not isinstance(config, Config):
        raise UserError(f"config file {path} must define `config = Config(...)` (segkit.config.Config).")
    if config.name == "segkit":
        config.name = path.stem
    return config


def load_config(path: str | Path, overrides: typing.Iterable[str] = ()) -> Config:
    """Run a config file, validate it (``validate``: also the fields a file set after building its config), apply
    ``key=value`` overrides, and resolve the defaults that follow other fields (``Config.resolved``)."""
    config = read_config(path)
    try:
        validate(config)
    except UserError as exc:
        raise UserError(f"config file {path}: {exc}", exc.parameter) from None
    apply_overrides(config, overrides)
    return config.resolved()


def _config_error(path: Path, exc: Exception) -> str:
    """One sentence for an exception raised while running config file ``path``: a misspelt field names the
    closest real one; anything else gives the line of the file."""
    match = re.match(r"(\w+)\.__init__\(\) got an unexpected keyword argument '(\w+)'", str(exc))
    sections = {cls.__name__: cls for cls in (Config, *SECTIONS.values())}
    if isinstance(exc, TypeError) and match and match[1] in sections:
        fields = [f.name for f in dataclasses.fields(sections[match[1]])]
        close = difflib.get_close_matches(match[2], fields, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"its fields are {', '.join(fields)}."
        return f"config file {path}: {match[1]} has no field {match[2]!r}; {hint}"
    lines = [frame.lineno for frame in traceback.extract_tb(exc.__traceback__) if Path(frame.filename) == path]
    where = f" line {lines[-1]}" if lines else ""
    if isinstance(exc, SyntaxError):
        where = f" line {exc.lineno}"
    message = str(exc).splitlines()[0] if str(exc) else ""
    return f"config file {path}{where}: {type(exc).__name__}: {message}; fix the file."


def apply_overrides(config: Config, items: typing.Iterable[str]) -> Config:
    """Apply ``section.field=value`` items (or older spellings, ``ALIASES``) in order, each value parsed by its
    field's declared type, then validate the config once: rules between fields see every item (iterations=2
    with warmup_iterations=0 is valid in either order)."""
    for item in items:
        _set(config, item)
    return validate(config)


def apply_override(config: Config, item: str) -> Config:
    """``apply_overrides`` of one item."""
    return apply_overrides(config, [item])


def _set(config: Config, item: str) -> None:
    key, sep, raw = item.partition("=")
    if not sep:
        raise UserError(f"override {item!r} must look like key=value, e.g. train.iterations=1000.")
    key = ALIASES.get(key.strip(), key.strip())
    check_key(key)
    if key == "name":
        config.name = raw
    else:
        section_name, field_name = key.split(".")
        section = getattr(config, section_name)
        setattr(section, field_name, coerce(raw.strip(), field_types(type(section))[field_name], key, from_text=True))
