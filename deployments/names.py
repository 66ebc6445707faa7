"""Names of models and deployments as users type them: the rule of constants.py, worded with a
suggestion ("Iris" -> use "iris") instead of a paragraph about DNS labels."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

from deployments import constants as st

_NAME = re.compile(st.NAME_PATTERN)


def suggest_name(text: str, max_length: int = st.NAME_MAX_LENGTH) -> str:
    """A valid name close to `text` ("Iris Model" -> "iris-model"), or "" if none is."""
    name = re.sub(r"[^a-z0-9]+", "-", text.strip().lower()).strip("-")
    name = re.sub(r"^[^a-z]+", "", name)[:max_length].rstrip("-")
    return name


def name_problem(text: str) -> str:
    """What is wrong with `text` as a name and what to use instead, or "" when it is fine."""
    if _NAME.match(text):
        return ""
    if len(text) > st.NAME_MAX_LENGTH:
        return f"Use at most {st.NAME_MAX_LENGTH} characters (this name has {len(text)})."
    suggestion = suggest_name(text)
    hint = st.NAME_HINT.format(example=suggestion if _NAME.match(suggestion) else "iris")
    return hint


def validate_name(value: str) -> None:
    """A form and serializer validator: the plain-words `name_problem`."""
    problem = name_problem(value)
    if problem:
        raise ValidationError(problem, code="invalid")
