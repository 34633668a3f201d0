"""The dashboard's form to add a scenario, made from the scenario JSON Schema
(effects.scenario_schema): one control per property, its kind read from the property's schema,
so a new effect or parameter shows up here without an edit. The page's script sends what is
filled in to POST /__admin/scenarios, which checks it against the same schema and says what is
wrong."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

# The controls that are not a plain property of a scenario: the effect's type picks which
# effect's fields show; match and effect are groups.
_GROUPS = ("match", "effect")


def _json_type(schema: Mapping[str, Any]) -> str:
    """How the script reads a control's value into JSON: string, integer, number or boolean."""
    if "enum" in schema:
        kinds = {type(value) for value in schema["enum"]}
        return "integer" if kinds == {int} else "string"
    kind = schema.get("type")
    return kind if kind in ("integer", "number", "boolean") else "string"


def control(field: str, schema: Mapping[str, Any], suggestions: Mapping[str, list[str]]) -> str:
    """A labelled control for one property; `field` is its path in the scenario ("effect.status")."""
    name = field.rsplit(".", 1)[-1]
    kind = _json_type(schema)
    common = f'name="{escape(field)}" data-field="{escape(field)}" data-type="{kind}"'
    if "enum" in schema:
        options = "".join(f'<option value="{escape(str(v))}">{escape(str(v))}</option>' for v in schema["enum"])
        widget = f'<select {common}><option value="">(any / default)</option>{options}</select>'
    elif kind == "boolean":
        return f'<label class="check"><input type="checkbox" {common}> {escape(name)}</label>'
    elif kind in ("integer", "number"):
        bounds = "".join(f' {attribute}="{schema[key]}"' for attribute, key in (("min", "minimum"), ("max", "maximum"))
                         if key in schema)
        step = "1" if kind == "integer" else "any"
        widget = f'<input type="number" step="{step}"{bounds} {common}>'
    else:
        listed = suggestions.get(field)
        datalist = (f'<datalist id="list-{escape(field)}">'
                    + "".join(f'<option value="{escape(v)}">' for v in listed) + "</datalist>") if listed else ""
        listing = f' list="list-{escape(field)}"' if listed else ""
        widget = f'<input type="text"{listing} {common}>{datalist}'
    return f"<label>{escape(name)} {widget}</label>"


def _hint(effect: Mapping[str, Any]) -> str:
    """What an effect's extra constraint asks, in words: "give error, or status, code and message"."""
    choices = [" + ".join(option["required"]) for option in effect.get("anyOf", []) if "required" in option]
    return f"give {' or '.join(choices)}" if choices else ""


def scenario_form(schema: Mapping[str, Any], suggestions: Mapping[str, list[str]]) -> str:
    """The form: the scenario's own properties, its match, then an effect type and each effect's
    parameters (the script shows those of the chosen type only)."""
    properties = schema["properties"]
    own = "".join(control(name, sub, suggestions) for name, sub in properties.items() if name not in _GROUPS)
    match = "".join(control(f"match.{name}", sub, suggestions) for name, sub in properties["match"]["properties"].items())
    kinds = properties["effect"]["properties"]["type"]["enum"]
    chooser = ('<label>type <select name="effect.type" data-effect-type required>'
               + "".join(f'<option value="{escape(k)}">{escape(k)}</option>' for k in kinds) + "</select></label>")
    fieldsets = []
    for rule in schema.get("allOf", []):
        kind = rule["if"]["properties"]["effect"]["properties"]["type"]["const"]
        then = rule["then"]["properties"]
        effect = then["effect"]
        params = "".join(control(f"effect.{name}", sub, suggestions)
                         for name, sub in effect["properties"].items() if name != "type")
        endpoints = then["match"]["properties"]["endpoint"]["enum"]
        notes = [f"applies to {', '.join(endpoints)}", _hint(effect)]
        fieldsets.append(f'<div class="effect-fields" data-effect="{escape(kind)}">{params or "<em>no parameters</em>"}'
                         f'<p class="note">{escape("; ".join(n for n in notes if n))}</p></div>')
    return ('<form id="scenario-form" class="scenario-form" autocomplete="off">'
            f'<fieldset><legend>scenario</legend>{own}</fieldset>'
            f'<fieldset><legend>match (all optional; all given must hold)</legend>{match}</fieldset>'
            f'<fieldset><legend>effect</legend>{chooser}{"".join(fieldsets)}</fieldset>'
            '<button type="submit">Add scenario</button> <span class="error" role="alert" hidden></span></form>')
