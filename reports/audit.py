"""`convcheck audit`: which route to deploy a model on, decided from an already-run results document.

The audit is evidence first: every candidate route keeps its measured parity, latency, throughput,
memory, artifact size and lock-in; the recommendation is a documented rule applied to those numbers,
and the rule, each step of its application and the conditions that would flip it are part of the
output. A route that could not run on this host (missing_dep, no_device) is listed as unverified and
never recommended: a conversion that was not compared proves nothing.

This module is the public face; the work is split by kind:

- audit_evidence: deployment profiles and the candidate built from each cell (pure data);
- audit_rule: the criteria, the decision, the tie-break, the fallback (pure data);
- audit_triggers: what would change the choice (pure data);
- audit_engine: `build_audit`, the audit dict that is audit.json;
- audit_render: audit.md and audit.html from that dict.
"""

from __future__ import annotations

from convcheck.reports.audit_engine import AUDIT_VERSION, build_audit
from convcheck.reports.audit_evidence import HOURS_PER_MONTH, UNVERIFIED, load_profiles, matches, profile
from convcheck.reports.audit_render import CAND_HEAD, CSS, render_audit_html, render_audit_md
from convcheck.reports.audit_rule import CRITERIA, CRITERIA_TEXT, DEFAULT_TIE_POINTS, NOISE_FRACTION
from convcheck.reports.audit_triggers import NEAR_BUDGET

__all__ = ["AUDIT_VERSION", "CAND_HEAD", "CRITERIA", "CRITERIA_TEXT", "CSS", "DEFAULT_TIE_POINTS", "HOURS_PER_MONTH",
           "NEAR_BUDGET", "NOISE_FRACTION", "UNVERIFIED", "build_audit", "load_profiles", "profile",
           "render_audit_html", "render_audit_md"]

# The older private name of the profile filter (a cell is a candidate of a profile).
_matches = matches
