"""How big a run is: `--smoke`, `--quick` and the full default, and the flags that narrow one."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from phidb_bench.servers import Features
from phidb_bench.workloads import WORKLOADS

SYSTEMS = ("phidb", "postgres", "secantusdb")
TAX_FEATURES = (
    Features.all_off(),
    Features(tls=True, auth=False, encryption=False, audit=False),
    Features(tls=False, auth=True, encryption=False, audit=False),
    Features(tls=False, auth=False, encryption=True, audit=False),
    Features(tls=False, auth=False, encryption=False, audit=True),
)


@dataclass
class Plan:
    mode: str
    patients: int  # the size every workload runs at
    scale_sizes: list[int]  # extra sizes for the scale curve (point read, indexed query)
    clients: list[int]
    tax_clients: list[int]
    scale_clients: int
    warmup_s: float
    duration_s: float
    systems: list[str]
    workloads: list[str]
    tax_features: list[Features] = field(default_factory=list)
    raw: bool = True
    resources: str = "queried"  # "queried": Patient and Observation; "all": every type
    profile_s: float = 0.0
    load_parallel: int = 2
    open_connections: int = 64


def parse_size(text: str) -> int:
    text = text.strip().lower()
    return int(float(text[:-1]) * 1000) if text.endswith("k") else int(text)


def build_plan(argv: list[str] | None = None) -> tuple[Plan, argparse.Namespace]:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--smoke", action="store_true", help="tiny, about a minute (the test)")
    mode.add_argument("--quick", action="store_true", help="a small version of everything")
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON")
    parser.add_argument("--markdown", metavar="FILE", help="write the tables as Markdown")
    parser.add_argument("--plots", metavar="DIR", help="write the PNG plots into DIR")
    parser.add_argument("--patients", help="size the workloads run at, e.g. 1k")
    parser.add_argument("--scale", help="comma-separated sizes for the scale curve, e.g. 1k,10k")
    parser.add_argument("--clients", help="comma-separated client counts, e.g. 1,8,32")
    parser.add_argument("--systems", help=f"comma-separated subset of {','.join(SYSTEMS)}")
    parser.add_argument("--workloads", help=f"comma-separated subset of {','.join(WORKLOADS)}")
    parser.add_argument("--duration", type=float, help="measured seconds per row")
    parser.add_argument("--resources", choices=("queried", "all"), help="which resource types")
    parser.add_argument("--no-tax", action="store_true", help="skip the security-tax runs")
    parser.add_argument("--profile", type=float, help="seconds of py-spy on phidb (0: none)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)

    if args.smoke:
        plan = Plan(
            "smoke",
            30,
            [],
            [2],
            [2],
            2,
            0.2,
            0.5,
            list(SYSTEMS),
            list(WORKLOADS),
            tax_features=[Features.all_off()],
            open_connections=16,
        )
    elif args.quick:
        plan = Plan(
            "quick",
            1000,
            [200],
            [1, 8, 32],
            [8],
            8,
            0.5,
            2.0,
            list(SYSTEMS),
            list(WORKLOADS),
            tax_features=list(TAX_FEATURES),
            profile_s=8.0,
        )
    else:
        plan = Plan(
            "full",
            10_000,
            [1000, 100_000],
            [1, 8, 32],
            [8],
            8,
            1.0,
            5.0,
            list(SYSTEMS),
            list(WORKLOADS),
            tax_features=list(TAX_FEATURES),
            profile_s=15.0,
        )

    if args.patients:
        plan.patients = parse_size(args.patients)
    if args.scale is not None:
        plan.scale_sizes = [parse_size(s) for s in args.scale.split(",") if s.strip()]
    if args.clients:
        plan.clients = [int(c) for c in args.clients.split(",")]
    if args.systems:
        plan.systems = [s for s in args.systems.split(",") if s]
        unknown = set(plan.systems) - set(SYSTEMS)
        if unknown:
            parser.error(f"unknown systems {sorted(unknown)}")
    if args.workloads:
        plan.workloads = [w for w in args.workloads.split(",") if w]
        unknown = set(plan.workloads) - set(WORKLOADS)
        if unknown:
            parser.error(f"unknown workloads {sorted(unknown)}")
    if args.duration:
        plan.duration_s = args.duration
    if args.resources:
        plan.resources = args.resources
    if args.no_tax or "phidb" not in plan.systems:
        plan.tax_features = []
    if args.profile is not None:
        plan.profile_s = args.profile
    # bulk_load grows the data; it runs last so the other rows see the data set as loaded.
    plan.workloads.sort(key=lambda w: (w == "bulk_load", WORKLOADS.index(w)))
    return plan, args
