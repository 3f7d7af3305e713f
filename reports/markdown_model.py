"""models/<page>.md: every cell of one model, one section per route [target] — the stage ladder and
where it stopped, parity per output, localisation, latency, memory, artifacts, static check, warnings,
lock-in, tool versions and the converter log.

Every string that comes from the document goes through `md_escape` exactly once, where it is placed.
"""

from __future__ import annotations

import re
from typing import Any

from convcheck.reports.cell_view import (HOP_FACTS, STOP_REASONS, cross_check_text, headline_or_status, label, lockin_of,
                                        no_latency_reason, target, tvm_build_text)
from convcheck.reports.escaping import md_escape, md_table
from convcheck.reports.ladder import ladder_states
from convcheck.reports.load_view import capacity_text, load_note, scenario_rows, sut_text
from convcheck.reports.markdown_common import (CELL_LIMIT, LINE_LIMIT, MESSAGE_LIMIT, db, inline, ms, num, seconds,
                                               summary_line)
from convcheck.reports.numbers import human_bytes, is_number, percent
from convcheck.reports.route_packages import relevant_packages
from convcheck.reports.status_groups import NOT_HERE, is_failure, mark

#: Converter log lines kept on a model page (the last ones: the error is usually at the end).
LOG_LINES = 12


def render_model_md(document: dict[str, Any], model: str) -> str:
    """models/<page>.md: every cell of `model`, one section per route [target]."""
    run = document.get("run") or {}
    cells = [c for c in document.get("cells") or [] if c.get("model") == model]
    out = [f"# {md_escape(model)} — convcheck run {md_escape(run.get('id', '?'))}", "",
           "[← matrix](../matrix.md)", ""]
    if not cells:
        return "\n".join(out + ["_No cells for this model in this run._"]) + "\n"
    failed = sum(is_failure(c["status"]) for c in cells)
    out += [summary_line({"cells": cells}) + (f" — {failed} failing." if failed else "."), ""]
    anchors = _anchors(cells)
    rows = []
    for c, anchor in zip(cells, anchors):
        err = c.get("error") or {}
        rows.append([f"[{md_escape(label(c))}](#{anchor})", f"{mark(c['status'])} {md_escape(c['status'])}",
                     md_escape(headline_or_status(c)), human_bytes(c.get("artifact_bytes")),
                     _lockin_score(document, c),
                     md_escape(err.get("message"), 90) if err else ""])
    out += md_table(["route [target]", "status", "headline", "artifact", "lock-in", "reason"], rows) + [""]
    lockin_shown: dict[str, str] = {}  # route -> anchor of the section that has its breakdown
    for c, anchor in zip(cells, anchors):
        out += _cell_section(document, c, anchor, lockin_shown)
    return "\n".join(out).rstrip() + "\n"


def _anchors(cells: list[dict[str, Any]]) -> list[str]:
    """Explicit ids for the sections (`<a id>`): renderers disagree on how headings get theirs."""
    seen: dict[str, int] = {}
    out = []
    for c in cells:
        base = re.sub(r"[^a-z0-9]+", "-", f"{c['route']} {target(c)}".lower()).strip("-") or "cell"
        seen[base] = seen.get(base, 0) + 1
        out.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return out


def _lockin_score(document: dict[str, Any], cell: dict[str, Any]) -> str:
    entry = lockin_of(document, cell) or {}
    return num(entry.get("score"), ".1f") if entry.get("score") is not None else "—"


def _cell_section(document: dict[str, Any], c: dict[str, Any], anchor: str,
                  lockin_shown: dict[str, str]) -> list[str]:
    out = [f'<a id="{anchor}"></a>', "",
           f"## {mark(c['status'])} {md_escape(label(c))} — {md_escape(c['status'])}", ""]
    hops = " → ".join(md_escape(s) for s in [c.get("source") or "?", *(c.get("steps") or [])])
    converters = ", ".join(md_escape(x) for x in c.get("converters") or []) or "none"
    reference = f"; reference outputs from {md_escape(c['reference'])}" if c.get("reference") else ""
    out += [f"Route: {hops}, run by {md_escape(c.get('runtime', '?'))} on {md_escape(target(c))}; "
            f"converters: {converters}{reference}.", ""]
    out += _ladder(c)
    if c.get("parity") or c.get("latency_ms") or c.get("memory_mb"):
        out += _parity_block(c.get("parity"))
        if cross_check_text(c):
            out += [f"Cross-check: {md_escape(cross_check_text(c), MESSAGE_LIMIT)}", ""]
        out += _localization_block(c.get("localization"))
        out += _latency_block(c)
        out += _load_block(c)
        out += _memory_block(c.get("memory_mb"))
    else:
        # Nothing was measured: one line instead of three empty sections.
        out += ["Parity, latency, memory: — (the converted model did not run).", ""]
        out += _localization_block(c.get("localization"))
        out += _one_off_times(c)
    out += _artifacts_block(c)
    out += _precheck_block(c.get("precheck"), ran=c.get("status") not in NOT_HERE)
    out += _warnings_block(c.get("warnings"))
    out += _lockin_block(document, c, anchor, lockin_shown)
    out += _versions_block(document, c)
    out += _log_block(c.get("log"))
    return out


def _ladder(c: dict[str, Any]) -> list[str]:
    rungs = ladder_states(c)
    one_hop = len(c.get("steps") or []) == 1
    parts = []
    for rung, sign, secs in rungs:
        if secs is not None:
            note = f" ({seconds(secs)})"
        else:
            note = " (same hop)" if rung == "converted" and one_hop and sign != "·" else ""
        parts.append(f"{sign} {rung}{note}")
    out = ["**Stages:** " + " → ".join(parts), ""]
    err = c.get("error") or {}
    if c["status"] == "pass":
        return out + ["Completed every stage.", ""]
    stage = md_escape(err.get("stage") or "?")
    op = f" (op {md_escape(err['op'], 80)})" if err.get("op") else ""
    message = md_escape(err.get("message") or c["status"], MESSAGE_LIMIT)
    if c["status"] in NOT_HERE:
        # error.stage is `plan` even when a hop was converted for the static check: not a stop.
        out.append(f"Not run on this machine ({md_escape(c['status'])}){op}: {message}")
    else:
        failed_at = next((i for i, (_, sign, _s) in enumerate(rungs) if sign == "✘"), None)
        went_on = failed_at is not None and any(m == "✔" for _, m, _s in rungs[failed_at + 1:])
        verb, tail = ("Failed at", " (the later stages still ran)") if went_on else ("Stopped at", "")
        out.append(f"{verb} **{stage}**{tail}{op}: {message}")
    return out + [""]


def _tolerance_text(tol: dict[str, Any]) -> str:
    if not tol:
        return "—"
    parts = []
    if tol.get("profile"):
        parts.append(f"profile {md_escape(tol['profile'])}")
    if tol.get("check") == "snr" or tol.get("min_snr_db") is not None:
        parts.append(f"SNR ≥ {num(tol.get('min_snr_db'))} dB")
    if tol.get("check") != "snr":
        parts.append(f"\\|a − r\\| ≤ atol {num(tol.get('atol'))} + rtol {num(tol.get('rtol'))} × \\|r\\|")
    if tol.get("per_output"):
        per = "; ".join(f"{md_escape(k, 60)}: {md_escape(inline(v), 120)}" for k, v in tol["per_output"].items())
        parts.append(f"per output: {per}")
    if tol.get("raised_by_noise_floor"):
        raised = "; ".join(f"{md_escape(k, 60)} → atol {num(v)}" for k, v in tol["raised_by_noise_floor"].items())
        parts.append(f"raised by the noise floor: {raised}")
    if tol.get("snr_lowered_by_fp16_floor"):
        lowered = "; ".join(f"{md_escape(k, 60)} → SNR ≥ {num(v, '.3g')} dB"
                            for k, v in tol["snr_lowered_by_fp16_floor"].items())
        parts.append(f"lowered to the source's own fp16 error: {lowered}")
    return ", ".join(parts)


def _share(x: Any) -> str:
    return percent(x) if is_number(x) else num(x)


def _parity_block(p: dict[str, Any] | None) -> list[str]:
    out = ["### Parity", ""]
    if not p:
        return out + ["— (the converted model did not run)", ""]
    exact = bool(p.get("exact")) or p.get("max_abs") == 0
    out.append(f"- verdict: {'✔ within tolerance' if p.get('ok') else '✘ outside tolerance'} on "
               f"{num(p.get('samples'))} samples (worst: sample {num(p.get('worst_sample'))})")
    out.append(f"- tolerance applied: {_tolerance_text(p.get('tolerance') or {})}")
    psnr = f", PSNR {db(p.get('psnr_db'), exact)}" if "psnr_db" in p else ""
    out.append(f"- overall (worst output): max_abs {num(p.get('max_abs'))}, max_rel {num(p.get('max_rel'))}, "
               f"mean_abs {num(p.get('mean_abs'))}, cosine {num(p.get('cosine'), '.6g')}, "
               f"SNR {db(p.get('snr_db'), exact)}{psnr}")
    names = {"top1_agreement": "top-1 agreement", "top5_agreement": "top-5 agreement", "exact_match": "exact match"}
    agree = [f"{label} {_share(p[k])}" for k, label in names.items() if p.get(k) is not None]
    if agree:
        out.append("- agreement: " + ", ".join(agree))
    mp = p.get("min_passing") or {}
    if mp:
        out.append(f"- smallest bounds that would pass: atol {num(mp.get('atol'))} at rtol {num(mp.get('rtol'))}"
                   + (f", SNR {db(mp.get('snr_db'))}" if "snr_db" in mp else ""))
    nf = p.get("noise_floor")
    if "noise_floor" not in p:
        pass  # an older results.json: nothing to say
    elif nf:
        text = (f"source fp32 vs {md_escape(nf.get('reference') or 'float64')}: max_abs {num(nf.get('max_abs'))}"
                if nf.get("max_abs") is not None else md_escape(nf.get("error") or "not measured", LINE_LIMIT))
        out.append(f"- noise floor: {text}")
    else:
        out.append("- noise floor: — (the source framework does not run in float64 here)")
    half = p.get("fp16_floor")
    if isinstance(half, dict):
        if half.get("error"):
            text = f"not measured ({md_escape(half['error'], LINE_LIMIT)}): the fixed SNR bound applies"
        else:
            text = ", ".join(f"{md_escape(k, 60)} SNR {db(v.get('snr_db'))}" for k, v in (half.get("per_output") or {}).items())
        out.append(f"- fp16 floor (the source computed in fp16, {md_escape(half.get('reference') or '?')}): {text or '—'}")
    if p.get("reference_nonfinite"):
        out.append(f"- reference non-finite positions: {num(p['reference_nonfinite'])} (compared as NaN/Inf)")
    per = p.get("per_output") or {}
    if per:
        floor = ((nf or {}).get("per_output") or {})
        rows = []
        for name, s in per.items():
            s = s if isinstance(s, dict) else {}
            exact_o = s.get("max_abs") == 0
            rows.append([md_escape(name, 80), md_escape("×".join(map(str, s.get("shape") or [])) or "—"),
                         md_escape(s.get("dtype") or "—"), num(s.get("max_abs")), num(s.get("max_rel")),
                         num(s.get("cosine"), ".6g"), db(s.get("snr_db"), exact_o),
                         num((floor.get(name) or {}).get("max_abs")),
                         "✔" if s.get("ok") else "✘", md_escape(s.get("problem") or "", CELL_LIMIT)])
        out += ["", *md_table(["output", "shape", "dtype", "max_abs", "max_rel", "cosine", "snr_db",
                              "noise floor", "ok", "problem"], rows)]
    return out + [""]


def _localization_block(loc: dict[str, Any] | None) -> list[str]:
    if not loc:
        return []
    out = ["### Localisation", ""]
    if not loc.get("found"):
        return out + [f"Not found: {md_escape(loc.get('reason') or 'no reason given', MESSAGE_LIMIT)}"
                      + (f" ({seconds(loc.get('seconds'))})" if loc.get("seconds") is not None else ""), ""]
    if loc.get("summary"):
        out.append(f"**{md_escape(loc['summary'], LINE_LIMIT)}**")
        out.append("")
    facts = [
        ("method", loc.get("method")), ("node", loc.get("node")), ("op_type", loc.get("op_type")),
        ("output", loc.get("output")), ("layer", loc.get("layer")), ("keras class", loc.get("keras_class")),
        ("tflite tensor", loc.get("tflite_tensor")), ("torch module", loc.get("torch_module")),
        ("torch class", loc.get("torch_class")),
    ]
    out += [f"- {name}: {md_escape(v, CELL_LIMIT)}" for name, v in facts if v not in (None, "")]
    for name in ("span", "parameter_modules", "inputs_from"):
        if loc.get(name):
            values = loc[name] if isinstance(loc[name], list) else [loc[name]]
            shown = ", ".join(md_escape(v, 60) for v in values[:8]) + (", …" if len(values) > 8 else "")
            out.append(f"- {name.replace('_', ' ')}: {shown}")
    out.append(f"- error in → out: max_abs {num(loc.get('max_abs_in'))} → {num(loc.get('max_abs_out'))}"
               + (f"; {md_escape(loc['problem'], CELL_LIMIT)}" if loc.get("problem") else ""))
    tail = [f"{num(loc['compared'])} tensors compared" if loc.get("compared") is not None else "",
            f"took {seconds(loc['seconds'])}" if loc.get("seconds") is not None else ""]
    if any(tail):
        out.append("- " + ", ".join(t for t in tail if t))
    return out + [""]


def _latency_block(c: dict[str, Any]) -> list[str]:
    lat = c.get("latency_ms")
    out = ["### Latency", ""]
    if lat:
        noisy = " ⚠ noisy" if lat.get("noisy") else ""
        out += md_table(["p50", "p90", "p99", "mean", "min", "n", "cv", "batch", "threads"],
                      [[ms(lat.get("p50")), ms(lat.get("p90")), ms(lat.get("p99")), ms(lat.get("mean")),
                        ms(lat.get("min")), num(lat.get("n")),
                        (percent(lat["cv"]) if isinstance(lat.get("cv"), (int, float)) else "—") + noisy,
                        num(lat.get("batch")), num(lat.get("threads"))]])
        if lat.get("timer_overhead_ms") is not None:
            out += ["", f"Timer overhead {ms(lat['timer_overhead_ms'])} a call; "
                    f"{num(lat.get('warmup'))} warm-up calls."]
        if lat.get("stopped_by"):
            out += ["", f"Stopped by: {md_escape(STOP_REASONS.get(lat['stopped_by'], lat['stopped_by']))}."]
        build = tvm_build_text(c)
        if build:
            out += ["", f"TVM build: {md_escape(build, MESSAGE_LIMIT)}."]
    else:
        why = no_latency_reason(c)
        out.append(f"— (not measured: {md_escape(why, MESSAGE_LIMIT)})" if why else
                   "— (no steady-state figure: the converted model did not run)")
    out += ["", *_one_off_times(c)]
    out += _batches(c.get("batches"))
    out += _variants(c.get("variants"))
    return out if out[-1] == "" else out + [""]


def _load_block(c: dict[str, Any]) -> list[str]:
    """The cell's MLPerf LoadGen runs: one row per scenario, the capacity, how the SUT was built."""
    if not c.get("load"):
        return []
    out = ["### Under load (MLPerf LoadGen)", ""]
    rows = scenario_rows(c)
    if rows:
        out += md_table(["scenario", "LoadGen", "throughput", "p50", "p90", "p99", "latency of"],
                        [[r["scenario"], md_escape(r["verdict"], MESSAGE_LIMIT), r["qps"], r["p50"], r["p90"], r["p99"],
                          md_escape(r["latency_of"] or "")] for r in rows])
        out.append("")
    load = c["load"]
    for line in (f"Capacity: {capacity_text(c)}." if capacity_text(c) else "",
                 f"System under test: {sut_text(c)}." if sut_text(c) else "",
                 f"LoadGen's summary and detail logs: {load.get('logs')}/" if load.get("logs") else "",
                 str(load.get("note") or "") and f"{load['note']}.",
                 "" if rows or capacity_text(c) else f"— ({load_note(c)})"):
        if line:
            out += [md_escape(line, MESSAGE_LIMIT), ""]
    return out


def _one_off_times(c: dict[str, Any]) -> list[str]:
    """Times paid once (kept apart from the steady-state figures): reference, convert, load, first call."""
    t = c.get("timings_s") or {}
    times = [f"{name} {seconds(t.get(key))}" for key, name in
             (("reference", "reference"), ("convert", "convert"), ("load", "load/compile"),
              ("first_inference", "first inference")) if isinstance(t.get(key), (int, float))]
    return ["One-off times: " + ", ".join(times) + ".", ""] if times else []


def _batches(batches: Any) -> list[str]:
    if not isinstance(batches, dict) or not batches:
        return []
    if batches.get("skipped"):
        return ["", f"Batch sweep skipped: {md_escape(batches['skipped'], LINE_LIMIT)}"]
    rows = []
    for b in batches.get("per_batch") or []:
        lat = b.get("latency_ms") or {}
        rows.append([num(b.get("batch")), ms(lat.get("p50")) if lat else "—",
                     num(b.get("throughput_per_s"), ".4g"), md_escape(b.get("error") or "", CELL_LIMIT)])
    return ["", "Batch sweep:", "", *md_table(["batch", "p50", "rows/s", "error"], rows)] if rows else []


def _variants(variants: Any) -> list[str]:
    if not isinstance(variants, dict) or not variants:
        return []
    rows = []
    for name, v in variants.items():
        v = v if isinstance(v, dict) else {}
        p, lat = v.get("parity") or {}, v.get("latency_ms") or {}
        rows.append([md_escape(name, 60), ms(lat.get("p50")) if lat else "—",
                     num(p.get("max_abs")), ("✔" if p.get("ok") else "✘") if p else "—"])
    return ["", "Other builds of the same artifact:", "", *md_table(["variant", "p50", "max_abs", "parity ok"], rows)]


def _memory_block(mem: dict[str, Any] | None) -> list[str]:
    out = ["### Memory", ""]
    if not mem:
        return out + ["— (not measured)", ""]
    names = (("rss_before_load", "RSS before load"), ("rss_after_load", "RSS after load"),
             ("rss_after_run", "RSS after run"), ("process_peak_rss", "process peak RSS"),
             ("gpu_peak", "GPU peak"))
    out += md_table([n for _, n in names], [[("—" if mem.get(k) is None else f"{num(mem[k], '.1f')} MiB")
                                          for k, _ in names]])
    return out + ["", "The process peak is an upper bound while cells share a process.", ""]


def _hop_details(meta: dict[str, Any]) -> str:
    """The few metadata facts that identify how a hop was built."""
    return md_escape(", ".join(f"{k.replace('_', ' ')} {inline(meta[k])}" for k in HOP_FACTS
                               if meta.get(k) not in (None, "")) or "—", 200)


def _artifacts_block(c: dict[str, Any]) -> list[str]:
    arts = [a for a in c.get("artifacts") or [] if isinstance(a, dict)]
    if not arts and c.get("artifact_bytes") is None:
        return []
    out = ["### Artifacts", "", f"Final artifact: {human_bytes(c.get('artifact_bytes'))}."]
    if arts:
        rows = [[md_escape(a.get("hop")), md_escape(a.get("converter")), "✔" if a.get("ok") else "✘",
                 md_escape(a.get("format") or "—"), seconds(a.get("seconds")), human_bytes(a.get("bytes")),
                 md_escape((a.get("sha256") or "")[:12] or "—"), _hop_details(a.get("metadata") or {})]
                for a in arts]
        out += ["", *md_table(["hop", "converter", "ok", "format", "time", "size", "sha256", "details"], rows)]
    return out + [""]


def _precheck_block(pre: dict[str, Any] | None, ran: bool) -> list[str]:
    if not pre:
        return []
    out = ["### Static check" + ("" if ran else " (this machine cannot run the route)"), ""]
    if pre.get("verdict"):
        out += [md_escape(pre["verdict"], MESSAGE_LIMIT), ""]
    if pre.get("unsupported"):
        out.append("- unsupported ops: " + ", ".join(md_escape(o, 60) for o in pre["unsupported"]))
    if pre.get("restricted"):
        out.append("- restricted ops: " + md_escape(inline(pre["restricted"]), LINE_LIMIT))
    checks = [x for x in pre.get("checks") or [] if isinstance(x, dict)]
    if checks:
        out += md_table(["check", "ok", "detail"], [[md_escape(x.get("name")), "✔" if x.get("ok") else "✘",
                                                  md_escape(x.get("detail") or "", 160)] for x in checks])
    return out + [""]


def _warnings_block(warnings: list[str] | None) -> list[str]:
    if not warnings:
        return []
    return ["### Warnings", "", *[f"- {md_escape(w, LINE_LIMIT)}" for w in warnings], ""]


def _lockin_block(document: dict[str, Any], c: dict[str, Any], anchor: str,
                  shown: dict[str, str]) -> list[str]:
    """The score and its breakdown; the score is per route, so a route's later targets on the same page
    point to the first breakdown instead of repeating it."""
    entry = lockin_of(document, c)
    if not entry:
        return ["Lock-in: — (not scored in this run).", ""]
    first = shown.get(c["route"])
    if first is not None:
        return [f"Lock-in: score {num(entry.get('score'), '.1f')} / 100 — the route's breakdown is "
                f"[above](#{first}).", ""]
    shown[c["route"]] = anchor
    out = ["### Lock-in", ""]
    out.append(f"Score {num(entry.get('score'), '.1f')} / 100 (0 = portable); "
               "score = 100 × Σ(weight × value) / Σ weight.")
    factors = entry.get("factors") or {}
    if factors:
        rows = [[md_escape(name), num((f or {}).get("weight"), ".3g"), num((f or {}).get("value"), ".2f"),
                 md_escape((f or {}).get("evidence") or "", 200)] for name, f in factors.items()]
        out += ["", *md_table(["factor", "weight", "value", "evidence"], rows)]
    return out + [""]


def _versions_block(document: dict[str, Any], c: dict[str, Any]) -> list[str]:
    out = ["### Tool versions", ""]
    pkgs = relevant_packages(document, c)
    if pkgs:
        out.append("- packages: " + ", ".join(f"{md_escape(k)} {md_escape(v)}" for k, v in sorted(pkgs.items())))
    rs = c.get("runtime_settings")
    if rs:
        out.append("- runtime settings: " + md_escape(inline(rs), LINE_LIMIT))
    producers = [f"{a.get('hop')}: {(a.get('metadata') or {}).get('producer')}" for a in c.get("artifacts") or []
                 if isinstance(a, dict) and (a.get("metadata") or {}).get("producer")]
    if producers:
        out.append("- producers: " + md_escape("; ".join(producers), LINE_LIMIT))
    if len(out) == 2:
        out.append("—")
    return out + [""]


def _log_block(log: list[str] | None) -> list[str]:
    if not log:
        return []
    tail = log[-LOG_LINES:]
    more = (f"last {len(tail)} of {len(log)} lines" if len(log) > len(tail)
            else f"{len(log)} line{'s' if len(log) != 1 else ''}")
    # Converters repeat themselves (one warning per layer): consecutive repeats are shown once, counted.
    runs: list[list[Any]] = []
    for line in tail:
        if runs and runs[-1][0] == line:
            runs[-1][1] += 1
        else:
            runs.append([line, 1])
    items = [f"- {md_escape(line, LINE_LIMIT)}" + (f" (×{n})" if n > 1 else "") for line, n in runs]
    return [f"### Converter log ({more})", "", *items, ""]
