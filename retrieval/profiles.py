"""Named fusion profiles: how a request with no fusion parameters is ranked.

A profile is a FusionSpec plus per-kind weights. ``REELSEARCH['FUSION_PROFILES']`` holds the
shipped ones (``default`` is what the API uses when a request names no fusion), and
``REELSEARCH['FUSION_PROFILE_FILE']`` a JSON file of profiles that ``manage.py tune_fusion``
fitted to this catalog's labelled queries; a profile in the file overrides one of the same
name in settings. A request picks one with ``profile=NAME``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .fusion import FusionSpec

DEFAULT = "default"


@dataclass(frozen=True)
class Profile:
    """A way of fusing: a FusionSpec plus per-kind weights (1.0 for kinds not named)."""

    fusion: FusionSpec
    kind_weights: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind_weights", MappingProxyType(
            {str(k): float(v) for k, v in self.kind_weights.items()}))

    @property
    def key(self) -> str:
        """Return a short readable name, e.g. "arithmetic/min_max bm25=0.3,text=1"."""
        spec = self.fusion
        parts = [spec.method if spec.method == "rrf" else f"{spec.method}/{spec.normalization}",
                 ",".join(f"{n}={w:g}" for n, w in sorted(spec.weights.items())),
                 _pairs("kinds", {k: w for k, w in self.kind_weights.items() if w != 1.0}),
                 _pairs("lb", spec.lower_bounds), spec.rescore,
                 f"coverage^{spec.coverage:g}" if spec.coverage else ""]
        return " ".join(part for part in parts if part)

    def as_settings(self) -> dict:
        """Return the profile in the form FUSION_PROFILES and the profile file store."""
        spec = self.fusion
        return {"method": spec.method, "normalization": spec.normalization,
                "weights": dict(spec.weights), "rank_constant": spec.rank_constant,
                "lower_bounds": dict(spec.lower_bounds), "rescore": spec.rescore,
                "coverage": spec.coverage, "kind_weights": dict(self.kind_weights)}

    @classmethod
    def from_settings(cls, data: Mapping[str, object]) -> Profile:
        """Build a profile from its settings form (ValueError on bad values)."""
        spec = FusionSpec.parse(
            str(data.get("method", "arithmetic")), str(data.get("normalization", "min_max")),
            weights=dict(data.get("weights") or {}),
            rank_constant=int(data.get("rank_constant", 60)),
            lower_bounds=dict(data.get("lower_bounds") or {}),
            rescore=str(data.get("rescore") or ""), coverage=float(data.get("coverage") or 0))
        return cls(spec, dict(data.get("kind_weights") or {}))


def _pairs(label: str, values: Mapping[str, float]) -> str:
    return f"{label}:" + ",".join(f"{n}={v:g}" for n, v in sorted(values.items())) \
        if values else ""


def profile_file() -> Path | None:
    """Return the tuned-profile file named in settings, if any."""
    name = settings.REELSEARCH.get("FUSION_PROFILE_FILE") or ""
    return Path(name) if name else None


def _file_profiles() -> dict[str, dict]:
    path = profile_file()
    if path is None or not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ImproperlyConfigured(
            f"REELSEARCH['FUSION_PROFILE_FILE'] ({path}) is not readable JSON ({exc}): run "
            "`manage.py tune_fusion` again or remove the file.") from exc
    return dict(data.get("profiles") or {})


def all_profiles() -> dict[str, dict]:
    """Return every profile by name, in settings form (the file's win over settings')."""
    return {**(settings.REELSEARCH.get("FUSION_PROFILES") or {}), **_file_profiles()}


def get_profile(name: str = DEFAULT) -> Profile:
    """Return a named profile (ValueError naming the known ones when it does not exist)."""
    known = all_profiles()
    if name not in known:
        if name == DEFAULT:
            return Profile(FusionSpec())
        raise ValueError(f"Unknown fusion profile {name!r}: choose one of "
                         f"{', '.join(sorted(known)) or 'default'}, or run "
                         "`manage.py tune_fusion` to make one.")
    return Profile.from_settings(known[name])


def save_profile(name: str, profile: Profile, path: Path, about: dict) -> None:
    """Write (or replace) one profile in a profile file, atomically."""
    data = {"profiles": {}}
    if path.exists():
        data = json.loads(path.read_text(encoding="utf-8"))
    data.setdefault("profiles", {})[name] = {**profile.as_settings(), "about": about}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    tmp.replace(path)
