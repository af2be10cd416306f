"""Medians of tools/cloud/group_run.py's records (.cloud/group_runs.jsonl), per strategy, as a
markdown table: python tools/cloud/summarize.py [FILE]."""
import json
import statistics
import sys
from pathlib import Path

path = Path(sys.argv[1] if len(sys.argv) > 1 else
            Path(__file__).resolve().parents[2] / ".cloud" / "group_runs.jsonl")
runs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def mb(value):
    return None if value is None else round(value / 1e6, 1)


def med(values):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    m = statistics.median(values)
    lo, hi = min(values), max(values)
    return f"{m:g} ({lo:g}-{hi:g})" if len(values) > 1 else f"{m:g}"


print("| strategy | runs | ok | CLI --wait s | real split s (libvirt) | split SLM reports s |"
      " member | switchover s after call | libvirt job s | downtime ms (libvirt) |"
      " downtime ms SLM | memory MB (libvirt) | bytes MB SLM |")
print("|---" * 13 + "|")
for strategy in sorted({r["strategy"] for r in runs}):
    rs = [r for r in runs if r["strategy"] == strategy]
    for name in sorted(rs[0]["members"]):
        rate = name.split("-d")[1]
        slm = [next((m for m in r["slm_members"] if m["name"].endswith(name)), {}) for r in rs]
        print(f"| {strategy} | {len(rs)} | {sum(r['ok'] for r in rs)} | "
              f"{med([r['cli_wait_s'] for r in rs])} | {med([r['real_split_s'] for r in rs])} | "
              f"{med([(r['slm_switchover'] or {}).get('spread_s') for r in rs])} | "
              f"{rate} MiB/s | {med([r['members'][name]['switchover_s'] for r in rs])} | "
              f"{med([r['members'][name]['libvirt_job_s'] for r in rs])} | "
              f"{med([r['members'][name]['downtime_ms'] for r in rs])} | "
              f"{med([m.get('downtime_ms') for m in slm])} | "
              f"{med([r['members'][name]['memory_MB'] for r in rs])} | "
              f"{med([mb(m.get('bytes_transferred')) for m in slm])} |")
