"""The tolerance policy: what a converted model's outputs are held to, per precision.

Core, not a plugin's: every runtime, the pipeline, localisation and a plugin's own checks judge by the
same profiles. The profiles are data (convcheck/data/tolerances.json), each with its reasoning.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


def _load_profiles() -> dict[str, dict[str, Any]]:
    from importlib.resources import files

    return json.loads(files("convcheck").joinpath("data/tolerances.json").read_text())


#: Tolerance profiles per precision, as data with the reasoning beside each (convcheck/data/tolerances.json).
PROFILES: dict[str, dict[str, Any]] = _load_profiles()
#: Elementwise bounds per precision (reported as min_passing for every profile; decisive for fp32).
TOLERANCES: dict[str, dict[str, float]] = {k: {"atol": v["atol"], "rtol": v["rtol"]}
                                           for k, v in PROFILES.items() if "atol" in v}


@dataclass
class Tolerance:
    """What one output is held to.

    - "elementwise": |a - r| <= atol_eff + rtol*|r| everywhere, atol_eff = max(atol, atol_rel x the
      output's peak |r|), and, where `min_snr_db` is set, SNR >= min_snr_db beside it;
    - "snr": SNR >= min_snr_db, or the whole error is at most `negligible` (an output near zero);
    - integer, boolean and string outputs are always compared exactly.
    """

    atol: float
    rtol: float
    check: str = "elementwise"
    min_snr_db: float | None = None
    atol_rel: float = 0.0
    negligible: float | None = None

    @classmethod
    def for_precision(cls, precision: str) -> "Tolerance":
        profile = PROFILES[precision]
        return cls(profile["atol"], profile["rtol"], profile["check"], profile.get("min_snr_db"),
                   profile.get("atol_rel", 0.0), profile.get("negligible_abs"))

    def effective_atol(self, scale: float) -> float:
        """The absolute bound for an output whose peak |reference| is `scale`."""
        return max(self.atol, self.atol_rel * scale)


