"""``sammoe evaluate``: Dice per structure of the foundation alone, each expert alone, and the MoE.

The protocol is SAM-Med3D's: for each labelled structure a first click drawn uniformly inside
it (or, with ``first_click="deepest"``, the voxel farthest from its border, as a user clicks), the
128³ crop centred on that click (cut from the volume resampled once onto segmentation's
closest-RAS lattice, normalised as segmentation does), then later clicks in the current error
region, each passed alone with the previous low-res logits as the mask prompt. ``next_click``
``"largest-error"`` (the default: the official evaluation's ``ritm`` rule) clicks deep inside the
larger of the false-negative and false-positive regions; ``"random"`` anywhere in the errors (the
training rule). Dice is measured on the crop after 1, 3, 5... clicks. Every model sees the same
crops and the same first click; later clicks depend on each model's own errors (seeded per
prompt and model).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from sammoe_core.errors import SammoeError
from sammoe_core.evaluation.metrics import dice
from sammoe_core.files.atomic import atomic_output, write_text_atomic

if TYPE_CHECKING:
    from sammoe_core.model import Sam3D
    from sammoe_core.moe.gate_training import TrainingPrompt
    from sammoe_core.moe.segmenter import MoESegmenter

# (state, points, point labels, previous low-res logits) -> low-res logits
Decode = Callable[[Any, torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]

MOE = "moe"


def _seed(*parts: object) -> int:
    return int(hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:8], 16)


@dataclass
class EvalReport:
    methods: list[str]
    clicks: list[int]
    # rows[class][method][clicks] -> list of Dice values
    rows: dict[str, dict[str, dict[int, list[float]]]] = field(default_factory=dict)
    routing: dict[str, dict[str, int]] = field(default_factory=dict)  # class -> chosen -> prompts
    prompts: int = 0
    sources: list[str] = field(default_factory=list)

    def mean(self, cls: str, method: str, k: int) -> float:
        values = self.rows[cls][method][k]
        return sum(values) / len(values)

    def to_dict(self) -> dict[str, Any]:
        return {
            "methods": self.methods,
            "clicks": self.clicks,
            "prompts": self.prompts,
            "sources": self.sources,
            "dice": {
                cls: {m: {str(k): round(self.mean(cls, m, k), 4) for k in self.clicks} for m in self.methods}
                for cls in sorted(self.rows)
            },
            "cases_per_class": {
                cls: len(next(iter(self.rows[cls].values()))[self.clicks[0]]) for cls in sorted(self.rows)
            },
            "moe_routing": self.routing,
        }

    def markdown(self, k: int | None = None) -> str:
        """A table: one row per structure, one column per method, Dice at ``k`` clicks."""
        k = k or self.clicks[0]
        head = "| structure | n | " + " | ".join(self.methods) + " | MoE routed to (prompts) |"
        lines = [
            f"Dice after {k} click{'s' if k > 1 else ''} (mean over prompts; best single model in bold)",
            "",
            head,
            "|" + "---|" * (len(self.methods) + 3),
        ]
        for cls in sorted(self.rows):
            values = {m: self.mean(cls, m, k) for m in self.methods}
            best = max(v for m, v in values.items() if m != MOE)
            cells = [f"**{v:.3f}**" if m != MOE and v == best else f"{v:.3f}" for m, v in values.items()]
            n = len(self.rows[cls][self.methods[0]][k])
            routed = ", ".join(f"{name} {count}" for name, count in sorted(self.routing.get(cls, {}).items()))
            lines.append(f"| {cls} | {n} | " + " | ".join(cells) + f" | {routed} |")
        return "\n".join(lines)

    def bar_chart(self, path: str | Path, k: int | None = None, overwrite: bool = False) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        k = k or self.clicks[0]
        classes = sorted(self.rows)
        width = 0.8 / len(self.methods)
        fig, ax = plt.subplots(figsize=(max(8, 0.9 * len(classes) + 3), 4.5))
        for i, m in enumerate(self.methods):
            xs = [c + (i - (len(self.methods) - 1) / 2) * width for c in range(len(classes))]
            ax.bar(xs, [self.mean(cls, m, k) for cls in classes], width, label=m, color="black" if m == MOE else None)
        ax.set_xticks(range(len(classes)), classes, rotation=35, ha="right")
        ax.set_ylim(0, 1)
        ax.set_ylabel(f"Dice, {k} click{'s' if k > 1 else ''}")
        ax.legend(fontsize=8, ncol=min(len(self.methods), 5))
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        with atomic_output(path, overwrite=overwrite) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
        plt.close(fig)


NEXT_CLICKS = ("largest-error", "random")
FIRST_CLICKS = ("random", "deepest")


def _run_clicks(
    model: Sam3D | MoESegmenter,
    state: Any,
    prompt: TrainingPrompt,
    clicks: Sequence[int],
    gen: torch.Generator,
    decode: Decode,
    next_click: str = "largest-error",
) -> dict[int, float]:
    """Dice after each requested click count, one click at a time (newest + previous logits)."""
    from sammoe_core.training.interaction import largest_error_click, next_clicks

    target = prompt.target
    device = state.embedding.device if hasattr(state, "embedding") else state.device
    point = prompt.click[None, None].float().to(device)
    label = torch.ones(1, 1, dtype=torch.long, device=device)
    prev, out = None, {}
    for k in range(1, max(clicks) + 1):
        low = decode(state, point, label, prev)
        logits = model.upsample(low)[0, 0].cpu()
        if k in clicks:
            out[k] = dice(logits > 0, target)
        if k == max(clicks):
            break
        prev = low
        pred = logits > 0
        if next_click == "largest-error":
            pts, labs = largest_error_click(target, pred, gen)
        else:
            pts, labs = next_clicks(target[None], pred[None], gen)
        point, label = pts.to(low.device), labs.to(low.device)
    return out


def evaluate(
    data: Sequence[str | Path],
    *,
    clicks: Sequence[int] = (1,),
    classes: Sequence[str] | None = None,
    prompts_per_class: int = 1,
    device: str = "auto",
    policy: str = "threshold",
    policy_options: Mapping[str, Any] | None = None,
    expert: str | None = None,
    seed: int = 0,
    progress: bool = False,
    first_click: str = "random",
    next_click: str = "largest-error",
    cache_dir: str | Path | None = None,
) -> EvalReport:
    """Evaluate the foundation in use, every enabled expert alone, and the MoE on ``data``.

    The datasets are resampled onto the model lattice once and kept in ``cache_dir`` (default
    ``SAMMOE_HOME/cache/volumes``; ``sammoe cache`` shows and clears it)."""
    from sammoe_core.devices import resolve_device
    from sammoe_core.experts.registry import Registry
    from sammoe_core.moe.gate_training import iter_dataset_prompt_refs
    from sammoe_core.moe.segmenter import MoEState, build_from_registry
    from sammoe_core.segmentation.predictor import Route

    if not data:
        raise SammoeError("evaluate needs at least one labelled dataset folder")
    if first_click not in FIRST_CLICKS:
        raise SammoeError(f"first click {first_click!r}: expected one of {', '.join(FIRST_CLICKS)}")
    if next_click not in NEXT_CLICKS:
        raise SammoeError(f"next click {next_click!r}: expected one of {', '.join(NEXT_CLICKS)}")
    clicks = sorted(set(int(k) for k in clicks))
    if not clicks or clicks[0] < 1:
        raise SammoeError("click counts must be positive integers, e.g. 1,3,5")
    dev = resolve_device(device)
    moe = build_from_registry(dev, policy=policy, policy_options=policy_options, expert=expert)
    methods = [*moe.candidates, MOE]
    report = EvalReport(methods=methods, clicks=clicks, sources=[str(d) for d in data])
    pre = moe.preprocessing
    cache = Path(cache_dir) if cache_dir is not None else Registry().layout.volume_cache
    refs = [  # by reference first: cheap, and it gives the progress bar its total
        ref
        for src in data
        for ref in iter_dataset_prompt_refs(src, pre, cache, classes, prompts_per_class, seed, first_click)
    ]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(desc="evaluate", unit="prompt", total=len(refs), disable=None)
    with torch.no_grad():
        for ref in refs:
            prompt = ref.load()
            report.prompts += 1
            crop = prompt.image[None].to(dev)
            shared = moe.encode(crop).embedding  # the runtime's encoder: a CUDA graph on CUDA
            row = report.rows.setdefault(prompt.class_name, {m: defaultdict(list) for m in methods})
            for i, name in enumerate(methods):
                gen = torch.Generator().manual_seed(_seed(seed, prompt.key, i))
                if name == MOE:
                    chosen: dict[str, int] = report.routing.setdefault(prompt.class_name, {})
                    routes: list[Route] = []  # the prompt's route, decided by its first click and kept

                    def decode(
                        state: MoEState,
                        p: torch.Tensor,
                        lab: torch.Tensor,
                        prev: torch.Tensor | None,
                        routes: list[Route] = routes,
                        chosen: dict[str, int] = chosen,
                    ) -> torch.Tensor:
                        pred = moe.decode(state, p, lab, prev, route=routes[0] if routes else None)
                        if not routes and pred.route is not None:
                            routes.append(pred.route)
                            top = max(pred.route.weights, key=pred.route.weights.__getitem__)
                            chosen[top] = chosen.get(top, 0) + 1
                        return pred.low_res_logits

                    dice = _run_clicks(moe, MoEState(crop, shared), prompt, clicks, gen, decode, next_click)
                else:
                    model = moe.model_of(name)
                    own = moe.uses_own_encoder(name)
                    state = model.encode(crop) if own else shared
                    dice = _run_clicks(model, state, prompt, clicks, gen, model.decode, next_click)
                for k, v in dice.items():
                    row[name][k].append(v)
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    if not report.prompts:
        raise SammoeError(f"no labelled structure found in {', '.join(map(str, data))}")
    return report


def report_paths(out_dir: str | Path) -> dict[str, Path]:
    out = Path(out_dir)
    return {"json": out / "evaluation.json", "markdown": out / "evaluation.md", "chart": out / "evaluation.png"}


def check_report_paths(out_dir: str | Path, overwrite: bool) -> None:
    """Refuse existing report files before any work (nothing is overwritten without ``overwrite``)."""
    from sammoe_core.files.atomic import OutputExistsError

    for path in report_paths(out_dir).values():
        if path.exists() and not overwrite:
            raise OutputExistsError(path)


def write_report(report: EvalReport, out_dir: str | Path, overwrite: bool = False) -> dict[str, Path]:
    """evaluation.json, evaluation.md (one table per click count) and evaluation.png (bar chart)."""
    check_report_paths(out_dir, overwrite)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    paths = report_paths(out_dir)
    write_text_atomic(paths["json"], json.dumps(report.to_dict(), indent=2) + "\n", overwrite=overwrite)
    write_text_atomic(
        paths["markdown"], "\n\n".join(report.markdown(k) for k in report.clicks) + "\n", overwrite=overwrite
    )
    report.bar_chart(paths["chart"], overwrite=overwrite)
    return paths
