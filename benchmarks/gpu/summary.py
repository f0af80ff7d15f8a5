"""The one short table gpu_check.sh ends with: each section's outcome, the test counts, and
the measurements against issue #13's targets, read from gpu_check.sh's log folder
(sections.tsv, the pytest logs, gpu_bench.json, readme_seconds). Standard library only.

    python benchmarks/gpu/summary.py LOG_DIR
"""
from __future__ import annotations

import json
import pathlib
import re
import sys

out = pathlib.Path(sys.argv[1])
rows = []  # (what, value, target, verdict)


def add(what, value, target="", ok=None):
    rows.append((what, value, target, "" if ok is None else ("yes" if ok else "NO")))


sections = out / "sections.tsv"
for line in (sections.read_text().splitlines() if sections.exists() else []):
    name, rc, seconds = line.split("\t")
    log = out / f"{name}.log"
    counts = ""
    if log.exists() and name.endswith(("tests", "memcheck")):
        # pytest's closing line: "3 passed, 1 skipped in 2.0s" under -q (what gpu_check.sh
        # runs), "==== 3 passed ... in 2.0s (0:00:02) ====" without it.
        found = re.findall(r"^=* ?(\d+ (?:passed|failed|errors?|skipped|deselected|xfailed|"
                           r"xpassed|warnings?)\b[^=\n]*?)(?: in [\d.]+s.*?)? ?=*$",
                           log.read_text(errors="replace"), re.M)
        counts = found[-1] if found else ""
    status = {"0": "ok", "124": "TIMED OUT"}.get(rc, rc if not rc.isdigit() else f"rc={rc}")
    add(f"section {name}", f"{status} ({seconds} s) {counts}".strip(), "ok",
        rc == "0" if rc.isdigit() else None)

bench = out / "gpu_bench.json"
steps = json.loads(bench.read_text())["steps"] if bench.exists() else []
ms = {(r["batch"], r["impl"]): r["ms_per_step"] for r in steps}
for (batch, impl), value in sorted(ms.items()):
    target = {(64, "gan_fast graph"): 0.25, (256, "gan_fast graph"): 0.6}.get((batch, impl))
    add(f"ms/step batch {batch}, {impl}", f"{value:.3f}",
        f"<= {target}" if target else "", value <= target if target else None)
ours = ms.get((64, "gan_fast graph"))
for impl, factor in (("torch graph", 2), ("torch eager", 10)):
    if ours and (64, impl) in ms:
        ratio = ms[(64, impl)] / ours
        add(f"batch 64: {impl} / gan_fast graph", f"{ratio:.2f}x", f">= {factor}x", ratio >= factor)
if bench.exists():
    for name, reason in json.loads(bench.read_text()).get("skipped", {}).items():
        add(f"not measured: {name}", reason)

readme = out / "readme_seconds"
if readme.exists():
    seconds = float(readme.read_text())
    add("README 20-epoch command, wall", f"{seconds:.1f} s", "< 5 s", seconds < 5)

widths = [max(len(str(r[i])) for r in rows + [("what", "value", "target", "met")]) for i in range(4)]
for r in [("what", "value", "target", "met")] + rows:
    print(" | ".join(str(c).ljust(w) for c, w in zip(r, widths)))
