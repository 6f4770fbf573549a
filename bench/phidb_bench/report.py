"""Turn a results JSON into Markdown tables and PNG plots for docs/PERFORMANCE.md."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from phidb_bench.workloads import WORKLOADS


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None or value != value:  # None or NaN
        return "-"
    return f"{value:,.{digits}f}"


def rows_table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| workload | system | client | clients | ops/s | p50 ms | p95 ms | p99 ms "
        "| server CPU µs/op | client CPU µs/op | server RSS MB |\n"
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    order = {w: k for k, w in enumerate(WORKLOADS)}
    body = []
    for r in sorted(rows, key=lambda r: (order[r["name"]], r["system"], r["client"], r["clients"])):
        unit = " docs" if r.get("unit") == "document" else ""
        body.append(
            f"| {r['name']} | {r['system']} | {r['client']} | {r['clients']} "
            f"| {_fmt(r['ops_per_s'])}{unit} | {_fmt(r['p50_ms'], 2)} | {_fmt(r['p95_ms'], 2)} "
            f"| {_fmt(r['p99_ms'], 2)} | {_fmt(r['server_cpu_us_per_op'])} "
            f"| {_fmt(r['client_cpu_us_per_op'])} | {_fmt(r['server_rss_mb'])} |"
        )
    return head + "\n".join(body) + "\n"


def tax_table(data: dict[str, Any]) -> str:
    """phidb's throughput per configuration, relative to all security off."""
    rows = [r for r in data["workloads"] if r["system"].startswith("phidb")]
    clients = sorted({r["clients"] for r in rows if r["phase"] == "tax"})
    if not clients:
        return "(no security-tax rows)\n"
    n = clients[0]
    by: dict[tuple[str, str, str], float] = {}
    for r in rows:
        if r["clients"] == n and r["phase"] in ("tax", "main"):
            by[(r["name"], r["client"], r["system"])] = r["ops_per_s"]
    systems = (
        ["phidb-insecure"]
        + sorted({s for (_, _, s) in by if s not in ("phidb", "phidb-insecure")})
        + ["phidb"]
    )
    head = (
        f"| workload ({n} clients) | client | "
        + " | ".join(systems)
        + " | tax (all on vs off) |\n|---|---|"
        + "---:|" * (len(systems) + 1)
        + "\n"
    )
    body = []
    for workload in WORKLOADS:
        for client in ("pymongo", "raw"):
            base = by.get((workload, client, "phidb-insecure"))
            if base is None:
                continue
            cells = [_fmt(by.get((workload, client, s))) for s in systems]
            full = by.get((workload, client, "phidb"))
            tax = f"{100 * (1 - full / base):.0f}%" if full and base else "-"
            body.append(f"| {workload} | {client} | " + " | ".join(cells) + f" | {tax} |")
    return head + "\n".join(body) + "\n"


def scale_table(data: dict[str, Any]) -> str:
    rows = [
        r
        for r in data["workloads"]
        if r["name"] in ("point_read", "indexed_query") and r["phase"] in ("main", "scale")
    ]
    clients = sorted({r["clients"] for r in rows if r["phase"] == "scale"})
    if clients:
        rows = [r for r in rows if r["clients"] == clients[0]]
    head = (
        "| patients | system | client | workload | ops/s | p50 ms | p99 ms | server RSS MB |\n"
        "|---:|---|---|---|---:|---:|---:|---:|\n"
    )
    body = [
        f"| {r['patients']:,} | {r['system']} | {r['client']} | {r['name']} "
        f"| {_fmt(r['ops_per_s'])} | {_fmt(r['p50_ms'], 2)} | {_fmt(r['p99_ms'], 2)} "
        f"| {_fmt(r['server_rss_mb'])} |"
        for r in sorted(rows, key=lambda r: (r["system"], r["client"], r["name"], r["patients"]))
    ]
    return head + "\n".join(body) + "\n"


def loads_table(data: dict[str, Any]) -> str:
    head = (
        "| system | patients | documents | load s | documents/s | index build s | RSS MB |\n"
        "|---|---:|---:|---:|---:|---:|---:|\n"
    )
    body = [
        f"| {x['system']} | {x['patients']:,} | {x['documents']:,} | {x['load_s']:.1f} "
        f"| {_fmt(x['documents_per_s'])} | {x['index_s']:.1f} | {_fmt(x['server_rss_mb'])} |"
        for x in data["loads"]
    ]
    conns = data.get("connections_rss", [])
    if conns:
        body.append("")
        body.append("| system | patients | open connections | server RSS MB |")
        body.append("|---|---:|---:|---:|")
        body.extend(
            f"| {c['system']} | {c['patients']:,} | {c['connections']} "
            f"| {_fmt(c['server_rss_mb'])} |"
            for c in conns
        )
    return head + "\n".join(body) + "\n"


def profile_table(data: dict[str, Any]) -> str:
    profile = data.get("profile")
    if not profile or "own" not in profile:
        return f"(no profile: {profile.get('error') if profile else 'not run'})\n"
    lines = [
        f"py-spy, {profile['seconds']:.0f} s of {profile['workload']} at {profile['clients']}"
        f" pymongo clients; {profile['busy_samples']} busy samples of {profile['samples']}.",
        "",
        "| own time (top of stack) | % | phidb inclusive | % |",
        "|---|---:|---|---:|",
    ]
    own, inclusive = profile["own"], profile["inclusive_phidb"]
    for k in range(max(len(own), len(inclusive))):
        a = own[k] if k < len(own) else {"function": "", "percent": ""}
        b = inclusive[k] if k < len(inclusive) else {"function": "", "percent": ""}
        lines.append(f"| `{a['function']}` | {a['percent']} | `{b['function']}` | {b['percent']} |")
    return "\n".join(lines) + "\n"


def write_markdown(data: dict[str, Any]) -> str:
    main = [r for r in data["workloads"] if r["phase"] == "main"]
    parts = [
        f"Commit `{data['commit']}`, mode `{data['mode']}`, resources `{data['resources']}`, "
        f"machine: {data['machine']}.\n",
        "### Every system, every workload\n",
        rows_table(main),
        "### Security tax (phidb, ops/s)\n",
        tax_table(data),
        "### Scale curve\n",
        scale_table(data),
        "### Loading\n",
        loads_table(data),
        "### Profile\n",
        profile_table(data),
    ]
    if data.get("unavailable"):
        parts.append("### Unavailable\n")
        parts.extend(f"- {u['system']}: {u['reason']}\n" for u in data["unavailable"])
    if data.get("failures"):
        parts.append("### Failures\n")
        parts.extend(f"- {f['what']}: {f['error']}\n" for f in data["failures"])
    return "\n".join(parts)


def write_plots(data: dict[str, Any], folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    main = [r for r in data["workloads"] if r["phase"] == "main"]
    series: dict[str, dict[str, dict[int, dict[str, Any]]]] = defaultdict(lambda: defaultdict(dict))
    for r in main:
        series[r["name"]][f"{r['system']}/{r['client']}"][r["clients"]] = r
    workloads = [w for w in WORKLOADS if w in series]
    if workloads:
        fig, axes = plt.subplots(2, len(workloads), figsize=(4 * len(workloads), 7), squeeze=False)
        for col, workload in enumerate(workloads):
            for label, points in sorted(series[workload].items()):
                xs = sorted(points)
                axes[0][col].plot(xs, [points[x]["ops_per_s"] for x in xs], marker="o", label=label)
                axes[1][col].plot(xs, [points[x]["p99_ms"] for x in xs], marker="o", label=label)
            axes[0][col].set_title(workload)
            axes[0][col].set_ylabel("docs/s" if workload == "bulk_load" else "ops/s")
            axes[1][col].set_ylabel("p99 ms")
            axes[1][col].set_yscale("log")
            for row in axes:
                row[col].set_xscale("log", base=2)
                row[col].set_xlabel("clients")
                row[col].grid(alpha=0.3)
        widest = max(range(len(workloads)), key=lambda c: len(series[workloads[c]]))
        axes[0][widest].legend(fontsize=7)
        fig.suptitle(f"throughput and p99 per workload (commit {data['commit'][:12]})")
        fig.tight_layout()
        path = folder / "workloads.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)

    scale = [
        r
        for r in data["workloads"]
        if r["name"] in ("point_read", "indexed_query") and r["phase"] in ("main", "scale")
    ]
    scale_clients = sorted({r["clients"] for r in scale if r["phase"] == "scale"})
    if scale_clients:
        scale = [r for r in scale if r["clients"] == scale_clients[0]]
        fig, axes = plt.subplots(1, 3, figsize=(14, 4), squeeze=False)
        lines: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in scale:
            lines[f"{r['system']}/{r['client']}/{r['name']}"].append(r)
        for label, line in sorted(lines.items()):
            line.sort(key=lambda r: r["patients"])
            xs = [r["patients"] for r in line]
            axes[0][0].plot(xs, [r["p50_ms"] for r in line], marker="o", label=label)
            axes[0][1].plot(xs, [r["p99_ms"] for r in line], marker="o", label=label)
            axes[0][2].plot(xs, [r["server_rss_mb"] for r in line], marker="o", label=label)
        for ax, title in zip(axes[0], ("p50 ms", "p99 ms", "server RSS MB"), strict=True):
            ax.set_xscale("log")
            ax.set_xlabel("patients")
            ax.set_title(title)
            ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize=7)
        fig.suptitle(f"scale curve at {scale_clients[0]} clients")
        fig.tight_layout()
        path = folder / "scale.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    return written
