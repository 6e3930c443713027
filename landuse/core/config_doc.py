"""Generate the scenario-config reference (``docs/config.md``) from the pydantic schema.

Run ``python -m landuse.core.config_doc > docs/config.md`` after changing the schema (``landuse/core/config.py``
and its sections in ``config_plan.py`` and ``config_stages.py``); a test checks that the committed reference lists
every key.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from landuse.core.config import ScenarioConfig
from landuse.core.config_types import UrbanType

HEADER = """# Scenario configuration reference

A scenario is a YAML file. Paths under `layers` are relative to the YAML file. Unknown keys
are errors that list the valid keys; a wrong value names its key path and the allowed range.
Check a file with `landuse validate CONFIG`.

This page is generated from the schema in `landuse/core/config*.py` by `python -m landuse.core.config_doc`.

| key | type | default | meaning |
|---|---|---|---|
"""


def _models_in(annotation: typing.Any) -> list[type[BaseModel]]:
    out = []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    for arg in typing.get_args(annotation):
        out += _models_in(arg)
    return out


def _type_name(annotation: typing.Any) -> str:
    import re

    text = repr(annotation).replace("typing.", "").replace("pathlib.", "")
    text = re.sub(r"landuse\.core\.config\w*\.", "", text)  # a section model by its class name
    text = text.replace("<class '", "").replace("'>", "")
    text = re.sub(r"Annotated\[(\w+), AfterValidator\([^)]*\)\]", r"\1", text)
    text = text.replace(repr(UrbanType).replace("typing.", ""), "UrbanType")
    return text.replace("|", "\\|")


def iter_keys(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, str, str, str]]:
    """Yield ``(key path, type, default, description)`` for every key, depth first."""
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        if field.default is not PydanticUndefined:
            default = repr(field.default)
        elif field.default_factory is not None:
            value = field.default_factory()
            default = repr(value) if not isinstance(value, BaseModel) else "(section)"
        else:
            default = "required"
        subs = _models_in(field.annotation)
        doc = (subs[0].__doc__ or "").strip().splitlines()[0] if subs and subs[0].__doc__ else ""
        desc = (field.description or doc).replace("|", "\\|")
        yield path, _type_name(field.annotation), default.replace("|", "\\|"), desc
        for sub in _models_in(field.annotation):
            yield from iter_keys(sub, prefix=path + ("[].") if "list" in repr(field.annotation) else path + ".")


def render() -> str:
    """The whole reference page (``docs/config.md``): the header and one table row per config key."""
    rows = [f"| `{p}` | {t} | `{d}` | {m} |" for p, t, d, m in iter_keys(ScenarioConfig)]
    return HEADER + "\n".join(rows) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(render(), end="")
