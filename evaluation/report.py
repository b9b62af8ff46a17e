"""Write an evaluation's results: metrics.json, report.md and PNG plots (matplotlib)."""

from __future__ import annotations

import json
from pathlib import Path

from . import metrics

RECALL_COLUMNS = tuple(f"R@{k}" for k in metrics.RECALL_KS)
THRESHOLDS = tuple(f"R1@{m:g}" for m in metrics.TIOU_THRESHOLDS)


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def summary_table(result: dict) -> str:
    """Return the text-to-video table (one row per configuration, then chance) in Markdown."""
    head = ["configuration", *(f"{c} %" for c in RECALL_COLUMNS), "MdR", "MnR", "mAP",
            f"nDCG@{metrics.NDCG_K}", "found %", "p50 ms", "p95 ms"]
    lines = [_row(head), _row(["---"] + ["---:"] * (len(head) - 1))]
    for config in result["configurations"]:
        video, latency = config.get("video"), config.get("latency_ms", {})
        if video is None:
            continue
        lines.append(_row([
            _label(config), *(_pct(video[c]) for c in RECALL_COLUMNS),
            f"{video['MdR']:.1f}", f"{video['MnR']:.1f}", f"{video['mAP']:.3f}",
            f"{video[f'nDCG@{metrics.NDCG_K}']:.3f}", _pct(config["found_share"]),
            f"{latency.get('p50', 0):.1f}", f"{latency.get('p95', 0):.1f}",
        ]))
    chance = result.get("chance")
    if chance:
        lines.append(_row([
            "*random ranking (expected)*", *(_pct(chance[c]) for c in RECALL_COLUMNS),
            f"{chance['MdR']:.1f}", f"{chance['MnR']:.1f}", f"{chance['mAP']:.3f}",
            f"{chance[f'nDCG@{metrics.NDCG_K}']:.3f}", "", "", "",
        ]))
    return "\n".join(lines)


def _label(config: dict) -> str:
    """Return a configuration's label, marking the one the API uses with no parameters."""
    return f"**{config['label']}** (API default)" if config.get("default") else config["label"]


def tier_table(result: dict) -> str:
    """Return how the relevance tiers did per configuration ('' when nothing to show)."""
    rows = [c for c in result["configurations"] if c.get("tiers")]
    if not rows:
        return ""
    lines = [_row(["configuration", "answerable: target in high tier %",
                   "answerable: top result high %", "no-answer: no high-tier result %"]),
             _row(["---", "---:", "---:", "---:"])]
    for config in rows:
        tiers = config["tiers"]
        lines.append(_row([_label(config),
                           *(_pct(tiers[k]) if k in tiers else "" for k in (
                               "answerable_target_high", "answerable_top_high",
                               "no_answer_without_high"))]))
    return "\n".join(lines)


def moment_kind_table(result: dict) -> str:
    """Return moment metrics per kind of moment query ('' when queries have no kinds)."""
    rows = [(c, kind, data) for c in result["configurations"]
            for kind, data in c.get("moments", {}).get("by_kind", {}).items()]
    if not rows:
        return ""
    head = ["configuration", "answer", "n", *(f"top {t} %" for t in THRESHOLDS), "top mIoU",
            *(f"in video {t} %" for t in THRESHOLDS), "in-video mIoU"]
    lines = [_row(head), _row(["---", "---"] + ["---:"] * (len(head) - 2))]
    for config, kind, data in rows:
        top, inside = data["top_moment"], data["in_target_video"]
        lines.append(_row([_label(config), kind, str(data["n"]),
                           *(_pct(top[t]) for t in THRESHOLDS), f"{top['mIoU']:.3f}",
                           *(_pct(inside[t]) for t in THRESHOLDS), f"{inside['mIoU']:.3f}"]))
    return "\n".join(lines)


def moment_table(result: dict) -> str:
    """Return the moment table in Markdown ('' when the manifest has no moments)."""
    rows = [c for c in result["configurations"] if "moments" in c]
    if not rows:
        return ""
    head = ["configuration", *(f"top moment {t} %" for t in THRESHOLDS), "top mIoU",
            *(f"in target video {t} %" for t in THRESHOLDS), "target mIoU", "video R@1 %"]
    lines = [_row(head), _row(["---"] + ["---:"] * (len(head) - 1))]
    for config in rows:
        top, inside = config["moments"]["top_moment"], config["moments"]["in_target_video"]
        lines.append(_row([
            _label(config), *(_pct(top[t]) for t in THRESHOLDS), f"{top['mIoU']:.3f}",
            *(_pct(inside[t]) for t in THRESHOLDS), f"{inside['mIoU']:.3f}",
            _pct(config["moments"]["video"]["R@1"]),
        ]))
    return "\n".join(lines)


def latency_table(result: dict) -> str:
    """Return the median time of each search step per configuration, in Markdown."""
    rows = [c for c in result["configurations"] if c.get("latency_ms")]
    steps = sorted({step for c in rows for step in c["latency_ms"].get("steps_p50", {})})
    if not rows or not steps:
        return ""
    lines = [_row(["configuration", *(f"{s} ms" for s in steps), "total p50 ms"]),
             _row(["---"] + ["---:"] * (len(steps) + 1))]
    for config in rows:
        medians = config["latency_ms"]["steps_p50"]
        lines.append(_row([config["label"], *(f"{medians.get(s, 0.0):.1f}" for s in steps),
                           f"{config['latency_ms']['p50']:.1f}"]))
    return "\n".join(lines)


def environment_lines(result: dict) -> list[str]:
    """Return the configuration the numbers were measured with, as Markdown bullets."""
    env, catalog = result["environment"], result["catalog"]
    return [
        f"- manifest: `{Path(result['manifest']).name}`, {catalog['clips_in_manifest']} clips; "
        f"{catalog['clips_evaluated']} evaluated, {len(catalog['excluded'])} excluded; ranks "
        f"over {catalog['videos_ranked_over']} videos",
        f"- queries: {result['queries']['captions']} caption queries, "
        f"{result['queries']['moments']} moment queries",
        f"- backend `{env['backend']}` ({env['backend_class'].rsplit('.', 1)[-1]}); signals "
        f"{', '.join(env['signals_available'])}; visual model: {env['visual_model'] or 'none'}",
        f"- text model {env['text_model']}, ASR {env['asr_model']}, visual concepts "
        f"{env.get('concept_model') or 'none'}, OCR {'on' if env.get('ocr') else 'off'}, chunks "
        f"{env['chunk_seconds']:g} s / overlap {env['chunk_overlap_seconds']:g} s, signal "
        f"window {env['signal_window']}, k = {env['k_per_page']} per page",
        f"- {env['cpus']} CPU(s), {env['machine']}, load average {env['load_average_1m']} at "
        f"the start, Python {env['python']}; {result['created']}",
    ]


def render_markdown(result: dict, plots: list[str]) -> str:
    """Return report.md."""
    parts = ["# reelsearch evaluation", "", *environment_lines(result), "",
             "## Text to video", ""]
    if result["configurations"]:
        parts += [summary_table(result), "",
                  "R@K: share of queries whose clip is in the top K. MdR/MnR: median/mean "
                  "rank of the clip. mAP (= MRR with one clip per query) and nDCG@10 use "
                  "binary relevance. Ties rank pessimistically (after every video with the "
                  "same score); a clip no signal returned ranks last (the number of videos). "
                  "found: share of queries whose clip is anywhere in the fused list. Latency: "
                  "one `search()` call (k = 100, page 1) after a warm-up query.", ""]
    else:
        parts += ["No query could be evaluated: no clip of the manifest is ready.", ""]
    moments = moment_table(result)
    if moments:
        parts += ["## Moments", "", moments, "",
                  "top moment: the first moment of the first video must lie in the query's "
                  "clip with tIoU >= m (0 otherwise). in target video: the best moment the "
                  "query's clip got, wherever the clip ranked (0 when it was not returned).", ""]
        by_kind = moment_kind_table(result)
        if by_kind:
            parts += [by_kind, ""]
    tiers = tier_table(result)
    if tiers:
        parts += ["## Relevance tiers", "", tiers, "",
                  "A result's tier comes from its relevance (best query-segment cosine, "
                  "retrieval/relevance.py). No-answer queries ask about topics the catalog "
                  "does not have.", ""]
    steps = latency_table(result)
    if steps:
        parts += ["## Latency by step (median ms)", "", steps, "",
                  "Steps as `search()` times them; they do not add up to the total, which "
                  "is measured around the whole call.", ""]
    excluded = result["catalog"]["excluded"]
    parts += ["## Excluded clips", ""]
    parts += [f"- `{e['clip_id']}` ({e['file'] or 'no file'}): {e['reason']}" for e in excluded]
    parts += ["" if excluded else "None.", ""]
    parts += [f"![{name}]({name})" for name in plots]
    return "\n".join(parts).rstrip() + "\n"


def plot_recall(result: dict, path: Path) -> None:
    """Plot recall@K against K for every configuration (and chance)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    n = result["catalog"]["videos_ranked_over"]
    ks = list(range(1, n + 1))
    for config in result["configurations"]:
        if "recall_curve" in config:
            ax.plot(ks, [100 * r for r in config["recall_curve"]], marker=".",
                    label=config["label"], linestyle="-" if config["kind"] == "fusion" else "--")
    ax.plot(ks, [100 * k / n for k in ks], color="grey", linestyle=":", label="random")
    ax.set(xlabel="K", ylabel="recall@K (%)", title="Text to video: recall@K",
           xlim=(0.8, n + 0.2), ylim=(0, 102))
    if n > 20:
        ax.set_xscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_latency(result: dict, path: Path) -> None:
    """Plot a histogram of query latency per configuration."""
    import matplotlib.pyplot as plt

    samples = {c["label"]: c["latency_ms"]["samples"] for c in result["configurations"]
               if c.get("latency_ms")}
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    values = sorted(v for series in samples.values() for v in series)
    top = metrics.percentile(values, 99) * 1.1 if values else 1.0
    bins = [top * i / 40 for i in range(41)]
    for label, series in samples.items():
        ax.hist([min(v, top) for v in series], bins=bins, histtype="step", label=label)
    ax.set(xlabel="latency per query (ms; the last bin holds everything slower)",
           ylabel="queries", title="search() latency")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_moments(result: dict, path: Path) -> None:
    """Plot R1@tIoU per configuration (top moment overall) as grouped bars."""
    import matplotlib.pyplot as plt

    rows = [c for c in result["configurations"] if "moments" in c]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    width = 0.8 / len(THRESHOLDS)
    for i, name in enumerate(THRESHOLDS):
        ax.bar([x + i * width for x in range(len(rows))],
               [100 * c["moments"]["top_moment"][name] for c in rows], width, label=name)
    ax.set_xticks([x + width for x in range(len(rows))],
                  [c["label"] for c in rows], rotation=30, ha="right", fontsize=7)
    ax.set(ylabel="% of moment queries", ylim=(0, 100), title="Moments: R1@tIoU (top moment)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_report(result: dict, out: Path) -> list[Path]:
    """Write metrics.json, report.md and the plots into out; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    out.mkdir(parents=True, exist_ok=True)
    written, plots = [], []
    if any("recall_curve" in c for c in result["configurations"]):
        plot_recall(result, out / "recall_at_k.png")
        plots.append("recall_at_k.png")
    if any(c.get("latency_ms") for c in result["configurations"]):
        plot_latency(result, out / "latency.png")
        plots.append("latency.png")
    if any("moments" in c for c in result["configurations"]):
        plot_moments(result, out / "moments.png")
        plots.append("moments.png")
    (out / "metrics.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (out / "report.md").write_text(render_markdown(result, plots), encoding="utf-8")
    written = [out / "metrics.json", out / "report.md", *(out / name for name in plots)]
    return written
