"""Stateful environments: Python classes whose instances hold a state that tools change.

Loading the classes of a row's ``environment`` with their initial state, their tools,
and the state's canonical form, digest and diff. Pure (the standard library and
orjson), so the worker that runs the user's classes loads these modules by path,
without the rest of apigen: what they import must stay as small.
"""

from __future__ import annotations

from .state import Change, Diff, Limits, StateError, canonical, canonical_json, diff, digest, state_of

__all__ = ["Change", "Diff", "Limits", "StateError", "canonical", "canonical_json", "diff", "digest", "state_of"]
