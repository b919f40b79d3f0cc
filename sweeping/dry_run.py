"""What ``dry_run=true`` prints: the runs to do and done, and the GPU-hours of those to do."""
from __future__ import annotations

from .estimate import DEFAULT_THROUGHPUT, estimate, measured_throughput
from .plan import Plan


def describe_counts(counts: dict[str, int]) -> str:
    order = ("done", "failed", "todo", "blocked", "pending", "error")
    names = {"todo": "to do"}
    return ", ".join(f"{counts.get(s, 0)} {names.get(s, s)}" for s in order if counts.get(s) or s in ("done", "todo"))


def dry_run_report(name: str, plan: Plan, throughput="900") -> str:
    """The runs to do and done, and the GPU-hours of those to do."""
    runs = plan.unique()
    lines = [f"sweep {name}: {len(runs)} runs ({sum(r.stage == 'search' for r in runs)} search, "
             f"{sum(r.stage == 'replicate' for r in runs)} replication only): {describe_counts(plan.counts())}"]
    remaining = [r for r in runs if r.state not in ("done", "failed")]
    for title, selected in (("to do", remaining), ("done", [r for r in runs if r.state in ("done", "failed")])):
        lines.append(f"{title} ({len(selected)}):")
        for r in selected:
            extra = f" [{r.reason}]" if r.reason and r.state != "done" else ""
            score = f" {r.score:.4f}" if r.score is not None else ""
            lines.append(f"  {r.state:8s} {r.stage:9s} {r.label()}{score}{extra}")
    measured = measured_throughput([_metrics(r) for r in runs if r.state == "done"])
    if str(throughput) == "measured":
        speed, source = (measured, "measured on the finished runs") if measured else (DEFAULT_THROUGHPUT, "default")
    else:
        speed, source = float(throughput), "throughput"
    est = estimate([r.cfg for r in remaining], speed)
    lines.append(f"estimate: {est.runs} runs to do, {est.examples:,.0f} examples, "
                 f"{est.gpu_hours:,.2f} GPU-hours at {speed:,.0f} examples/s per GPU ({source}; "
                 "override with throughput=<examples/s> or throughput=measured)")
    if measured and source != "measured on the finished runs":
        lines.append(f"  (the finished runs measured {measured:,.0f} examples/s)")
    return "\n".join(lines)


def _metrics(run) -> dict | None:
    from .identity import status
    return status(run.directory).metrics
