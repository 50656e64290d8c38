"""`report.md` of a batch of repeated runs and of a comparison (pure: aggregates in, text out).

Invalid runs lead, in a banner, each named with its reasons, and are left out of every
figure. Spreads read `median / p95 / max`; `never`: the figure fell on a handover that did
not happen within its phase or a player that never started.
"""

from __future__ import annotations

import json
import shlex

from mpstream.measurement.report.markdown import provenance_lines, table
from mpstream.measurement.report.mib import short_name

SPREAD_NOTE = ("Figures over the valid runs: median / p95 / max; *never*: a handover that did not happen within its "
               "phase, or a player that never started, at that rank.")


def number(value, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def spread_text(figures: dict | None, digits: int = 3) -> str:
    """`median / p95 / max`, each `never` where it fell on one, `–` where nothing was counted."""
    if not figures or not figures.get("count"):
        return "–"
    return " / ".join("never" if figures.get(k) is None else f"{figures[k]:.{digits}f}"
                      for k in ("median", "p95", "max"))


def share_text(value) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def fraction_text(block: dict) -> str:
    if not block.get("runs"):
        return "–"
    return f"{block['stall_free_runs']}/{block['runs']} ({100 * block['stall_free_fraction']:.0f} %)"


def invalid_banner(invalid: list[dict], total: int, label: str = "") -> list[str]:
    """The banner over the report when any run is invalid (nothing when none is)."""
    if not invalid:
        return []
    where = f" of {label}" if label else ""
    out = [f"**INVALID RUNS** — {len(invalid)} of {total} runs{where} do not describe the planned scenario; "
           f"they are left out of every figure:", ""]
    out += [f"- {entry['run']}: " + "; ".join(entry["reasons"]) for entry in invalid]
    return out + [""]


def players_table(agg: dict) -> list[str]:
    header = ["client", "runs", "stall-free runs", "stall [s] median / p95 / max", "stalls in all",
              "startup [s] median / p95 / max"]
    rows = [[client, block["runs"], fraction_text(block), spread_text(block["stall_s"]), block["stall_count"],
             spread_text(block["startup_s"])] for client, block in agg["clients"].items()]
    overall = agg["overall"]
    if len(agg["clients"]) > 1:
        rows.append(["**all clients**", overall["runs"], fraction_text(overall), spread_text(overall["stall_s"]),
                     overall["stall_count"], spread_text(overall["startup_s"])])
    return table(header, rows)


def handover_table(agg: dict) -> list[str]:
    rows = []
    for client, block in list(agg["clients"].items()) + ([("**all clients**", agg["overall"])]
                                                          if len(agg["clients"]) > 1 else []):
        for entry in block["handover_s"]:
            rows.append([f"{entry['index'] + 1}. {entry['from']} → {entry['to']}", client, spread_text(entry),
                         entry["never"]])
    if not rows:
        return []
    return table(["change (to phase)", "client", "handover [s] median / p95 / max", "never"], rows)


def down_share_table(agg: dict) -> list[str]:
    rows = []
    for client, block in list(agg["clients"].items()) + ([("**all clients**", agg["overall"])]
                                                          if len(agg["clients"]) > 1 else []):
        for entry in block["down_share"]:
            rows.append([f"{entry['index'] + 1}. {entry['name']}", ", ".join(entry["down"]), client,
                         share_text(entry["median"]), share_text(entry["max"])])
    if not rows:
        return []
    return table(["phase", "down", "client", "share median", "share max"], rows)


def mib_table(agg: dict) -> list[str]:
    counters = agg.get("mptcp_mib") or {}
    if not counters:
        return []
    rows = []
    for node, phases in counters.items():
        for entry in phases:
            text = ", ".join(f"{short_name(k)} {v['median']:+g} (max {v['max']:+d})"
                             for k, v in entry["changed"].items()) or "no change"
            rows.append([node, f"{entry['phase'] + 1}. {entry.get('name') or ''}", entry["runs"], text])
    return (["## MPTCP counters per phase", "",
             "Change of each kernel MPTcpExt counter that moved in a phase (prefix left out): median over the "
             "valid runs that recorded it, and the max.", ""]
            + table(["node", "phase", "runs", "counters: median (max)"], rows))


def runs_table(rows: list[dict]) -> list[str]:
    """`rows`: run, valid, stall_free (n/N), stall_s, slowest handover, reasons."""
    return table(["run", "valid", "stall-free clients", "stalled [s] in all", "slowest handover [s]", "reasons"], [
        [r["run"], "yes" if r["valid"] else "**no**", r["stall_free"], number(r["stall_s"]),
         "never" if r["slowest_handover_s"] == float("inf") else number(r["slowest_handover_s"]),
         "; ".join(r["reasons"]).replace("|", "\\|") or "–"] for r in rows])


def figures_section(plots: list[str], what: str) -> list[str]:
    pngs = [p for p in plots if p.endswith(".png")]
    if not pngs:
        return []
    return (["## Distributions", ""] + [f"![{p}]({p})" for p in pngs] + [""]
            + [f"Each dot one run and client ({what}); boxes: quartiles and median (red), whiskers to 1.5 IQR. "
               "Invalid runs are not drawn.", ""])


def render_batch(batch: dict, agg: dict, run_rows: list[dict], plots: list[str], meta: dict,
                 notes: list[str]) -> str:
    out = invalid_banner(agg["invalid_runs"], agg["runs"])
    out += [f"# mpstream batch {batch.get('batch_id') or '?'}", ""]
    facts = [f"- **runs**: {agg['runs']} ({agg['valid_runs']} valid, {len(agg['invalid_runs'])} invalid)"]
    if batch.get("repeat") is not None:
        facts.append(f"- **repeat**: {batch['repeat']}")
    if batch.get("command"):
        command = batch["command"]
        facts.append(f"- **command**: `{shlex.join(map(str, command)) if isinstance(command, list) else command}`")
    if batch.get("extra_vars"):
        facts.append(f"- **extra vars**: `{json.dumps(batch['extra_vars'], sort_keys=True)}`")
    out += facts + [""]
    for note in notes + agg.get("notes", []):
        out.append(f"> note: {note}")
    if notes or agg.get("notes"):
        out.append("")
    out += ["## Players across runs", "", SPREAD_NOTE, ""] + players_table(agg)
    handovers = handover_table(agg)
    if handovers:
        out += ["## Handover after each phase change", "",
                "Seconds until the providers still up carry the client's incoming traffic (as in each run's "
                "report).", ""] + handovers
    shares = down_share_table(agg)
    if shares:
        out += ["## The failed provider's share", "",
                "Share of what each client received that still came over the providers down in that phase.",
                ""] + shares
    out += figures_section(plots, "client")
    out += mib_table(agg)
    out += ["## Runs", ""] + runs_table(run_rows)
    provenance = provenance_lines(meta)
    if provenance:
        out += ["## What ran", "", "As the first run's metadata says:", ""] + provenance + [""]
    return "\n".join(out).rstrip() + "\n"


def render_compare(items: list[dict], plots: list[str]) -> str:
    """`items`: label, path, agg (see `aggregate.aggregate`), in the order given."""
    out = []
    for item in items:
        out += invalid_banner(item["agg"]["invalid_runs"], item["agg"]["runs"], item["label"])
    out += ["# mpstream comparison: " + ", ".join(item["label"] for item in items), "", SPREAD_NOTE, ""]
    notes = [f"{item['label']}: {note}" for item in items for note in item.get("notes", []) + item["agg"]["notes"]]
    out += [f"> note: {note}" for note in notes] + ([""] if notes else [])
    out += table(["item", "folder", "runs", "valid", "stall-free runs", "stall [s] median / p95 / max",
                  "startup [s] median / p95 / max", "handover [s] median / p95 / max (every change)"], [
        [item["label"], f"`{item['path']}`", item["agg"]["runs"], item["agg"]["valid_runs"],
         fraction_text(item["agg"]["overall"]), spread_text(item["agg"]["overall"]["stall_s"]),
         spread_text(item["agg"]["overall"]["startup_s"]), spread_text(item.get("handover_all"))]
        for item in items])
    labels = []
    for item in items:
        for entry in item["agg"]["overall"]["handover_s"]:
            label = f"{entry['index'] + 1}. {entry['from']} → {entry['to']}"
            if label not in labels:
                labels.append(label)
    if labels:
        rows = []
        for label in labels:
            row = [label]
            for item in items:
                found = next((e for e in item["agg"]["overall"]["handover_s"]
                              if f"{e['index'] + 1}. {e['from']} → {e['to']}" == label), None)
                row.append(spread_text(found))
            rows.append(row)
        out += ["## Handover per phase change", "", "Over every valid run and client of each item.", ""]
        out += table(["change (to phase)"] + [f"{item['label']} [s]" for item in items], rows)
    phases = []
    for item in items:
        for entry in item["agg"]["overall"]["down_share"]:
            key = (f"{entry['index'] + 1}. {entry['name']}", ", ".join(entry["down"]))
            if key not in phases:
                phases.append(key)
    if phases:
        rows = []
        for name, down in phases:
            row = [name, down]
            for item in items:
                found = next((e for e in item["agg"]["overall"]["down_share"]
                              if (f"{e['index'] + 1}. {e['name']}", ", ".join(e["down"])) == (name, down)), None)
                row.append("–" if found is None else f"{share_text(found['median'])} / {share_text(found['max'])}")
            rows.append(row)
        out += ["## The failed provider's share", "", "Median / max share of what the clients received that still "
                "came over the providers down in that phase.", ""]
        out += table(["phase", "down"] + [item["label"] for item in items], rows)
    out += figures_section(plots, "one box per compared item")
    return "\n".join(out).rstrip() + "\n"
