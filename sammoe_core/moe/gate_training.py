"""Gate training: run every candidate once per training prompt, cache, and fit the gate.

A training prompt is a labelled crop centred on a click inside a target, cut from the volume
resampled once onto segmentation's closest-RAS lattice (at most half a voxel away from the crop
segmentation would resample around that click) and normalised as segmentation normalises. For
each prompt the foundation's image embedding and
prompt tokens are cached (keyed by the prompt and the foundation's weight hash), and each
candidate's low-res logits and Dice are cached under that candidate's weight hash. Retraining
after adding one expert therefore computes only the new expert's column. The cache is filled a
chunk of prompts at a time (``batch_size``): one batched encoder pass over the chunk's prompts
without features, one batched decode per candidate over those without its entry, the tensors on
the device until each prompt's entries are written. The gate then learns to
pick, per prompt, the candidate with the best Dice; ties and near-ties (within ``margin``) go to
the foundation. Experts and foundation stay frozen; only the gate's few weights train.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from sammoe_core.evaluation.metrics import dice_per_item
from sammoe_core.files.atomic import atomic_output
from sammoe_core.model import Sam3D
from sammoe_core.moe.gate import GateInput
from sammoe_core.segmentation.encoder_runtime import EncoderRunners
from sammoe_core.segmentation.preprocessing import Preprocessing

if TYPE_CHECKING:
    from sammoe_core.segmentation.intensity import Modality


@dataclass
class Candidate:
    """A frozen model the gate can route to. ``model()`` builds it lazily."""

    name: str
    weights_sha256: str
    model: Callable[[], Sam3D]
    own_encoder: bool = False


@dataclass
class TrainingPrompt:
    key: str  # stable identity: dataset, case, class, click, preprocessing
    image: torch.Tensor  # (1, S, S, S) normalised crop centred on the click
    target: torch.Tensor  # (S, S, S) bool
    click: torch.Tensor  # (3,) crop voxel
    group: str  # the case's content key: held-out splits never share a case
    class_name: str = ""


@dataclass(frozen=True)
class PromptRef:
    """Where a training prompt comes from, without its voxels: a prepared case in the volume
    cache, a class and a lattice voxel. Small and picklable (it travels to Ray actors);
    :meth:`load` cuts and normalises the crop."""

    key: str
    group: str
    class_name: str
    class_values: tuple[int, ...]
    centre: tuple[int, int, int]
    case_name: str
    modality: Modality
    cache_dir: str
    preprocessing: str  # Preprocessing as JSON

    def load(self) -> TrainingPrompt:
        from sammoe_core.segmentation.intensity import normalize_crop
        from sammoe_core.training.data import PreparedCase, case_array_path, cut_crop

        pre = Preprocessing.model_validate_json(self.preprocessing)
        arrays = {
            part: np.load(case_array_path(self.cache_dir, self.group, part), mmap_mode="r")
            for part in ("image", "labels")
        }
        case = PreparedCase(
            self.case_name,
            self.modality,
            arrays["image"],
            arrays["labels"],
            {},
            {self.class_name: self.class_values},
            self.group,
        )
        s = pre.crop_size
        image, target = cut_crop(case, np.asarray(self.centre), s, self.class_name)
        return TrainingPrompt(
            key=self.key,
            image=normalize_crop(image, self.modality, pre)[None],
            target=target,
            click=torch.tensor([s // 2] * 3),
            group=self.group,
            class_name=self.class_name,
        )


def iter_dataset_prompt_refs(
    root: str | Path,
    preprocessing: Preprocessing,
    cache_dir: str | Path,
    classes: Sequence[str] | None = None,
    prompts_per_class: int = 4,
    seed: int = 0,
    first_click: str = "random",
) -> Iterator[PromptRef]:
    """Prompts from a labelled dataset, by reference: a click drawn uniformly inside each present
    class, or with ``first_click="deepest"`` one click per class and case at the voxel farthest
    from the structure's border, as a user clicks (the dataset is resampled into ``cache_dir``
    first, once)."""
    from sammoe_core.training.data import prepare_dataset

    if first_click not in ("random", "deepest"):
        raise ValueError(f"first click {first_click!r}: expected 'random' or 'deepest'")
    cases = prepare_dataset(root, cache_dir, preprocessing, list(classes) if classes else None, seed)
    rng = np.random.default_rng(seed)
    settings = preprocessing.model_dump_json()
    for case in cases:
        for name, voxels in sorted(case.class_voxels.items()):
            if first_click == "deepest":
                voxels = _deepest_voxel(case.labels, case.class_values[name])
                picks = np.zeros(1, dtype=int)
            else:
                picks = rng.choice(len(voxels), size=min(prompts_per_class, len(voxels)), replace=False)
            for i in picks:
                key = hashlib.sha256(
                    f"{case.content_key}|{case.class_values[name]}|{tuple(voxels[i])}|{settings}".encode()
                ).hexdigest()[:24]
                centre = tuple(int(v) for v in voxels[i])
                yield PromptRef(
                    key,
                    case.content_key,
                    name,
                    tuple(case.class_values[name]),
                    centre,  # type: ignore[arg-type]
                    case.name,
                    case.modality,
                    str(cache_dir),
                    settings,
                )


def _deepest_voxel(labels: np.ndarray, values: tuple[int, ...]) -> np.ndarray:
    """(1, 3) lattice voxel of the structure farthest from its border (ties: the first)."""
    from scipy import ndimage

    mask = np.isin(labels, values)
    box = ndimage.find_objects(mask.astype(np.uint8))[0]
    depth = ndimage.distance_transform_edt(np.pad(mask[box], 1))[1:-1, 1:-1, 1:-1]
    local = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return np.array([[s.start + i for s, i in zip(box, local)]], dtype=np.int32)


@dataclass
class CacheStats:
    encoder_passes: int = 0
    candidate_passes: dict[str, int] = field(default_factory=dict)

    def add(self, other: CacheStats) -> None:
        self.encoder_passes += other.encoder_passes
        for name, n in other.candidate_passes.items():
            self.candidate_passes[name] = self.candidate_passes.get(name, 0) + n


class CandidateModels:
    """Candidates' networks on ``device``, each built on first use and kept; their image encoders
    run through the segmentation runtime (fp32, replayed as CUDA graphs on CUDA)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._models: dict[str, Sam3D] = {}
        self._runners = EncoderRunners()

    def get(self, candidate: Candidate) -> Sam3D:
        if candidate.name not in self._models:
            self._models[candidate.name] = candidate.model().to(self.device).eval()
        return self._models[candidate.name]

    def encode(self, candidate: Candidate, images: torch.Tensor) -> torch.Tensor:
        """``candidate``'s fp32 image embeddings of a (B, 1, S, S, S) batch."""
        return self._runners.get(candidate.name, self.get(candidate), "fp32", True)(images)


class GateCache:
    """On-disk cache: features per prompt (foundation-keyed), logits + Dice per candidate."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _features_path(self, foundation_sha: str, key: str) -> Path:
        return self.root / "features" / foundation_sha[:16] / f"{key}.safetensors"

    def _candidate_path(self, cand_sha: str, key: str) -> Path:
        return self.root / "candidates" / cand_sha[:16] / f"{key}.safetensors"

    @staticmethod
    def _write(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(path, overwrite=True) as tmp:
            save_file({k: v.contiguous().cpu() for k, v in tensors.items()}, str(tmp), metadata=meta)

    def complete(self, key: str, candidates: Sequence[Candidate]) -> bool:
        """Whether prompt ``key`` has its features (first candidate: the foundation) and every
        candidate's entry cached."""
        return self._features_path(candidates[0].weights_sha256, key).exists() and all(
            self._candidate_path(c.weights_sha256, key).exists() for c in candidates
        )

    def build(
        self,
        prompts: Iterable[TrainingPrompt],
        foundation: Candidate,
        experts: Sequence[Candidate],
        device: torch.device,
        progress: bool = False,
        total: int | None = None,
        batch_size: int | None = None,
    ) -> tuple[list[dict[str, Any]], CacheStats]:
        """Fill what is missing; return one record per prompt (features + Dice per candidate).
        Prompts go through the networks ``batch_size`` at a time (None: :func:`default_batch_size`
        of ``device``); the results do not depend on it. ``progress``: a bar with ``total`` and an
        ETA on a terminal."""
        size = default_batch_size(device) if batch_size is None else batch_size
        if size < 1:
            raise ValueError(f"batch size {size}: need at least 1")
        stats = CacheStats()
        models = CandidateModels(device)
        records = []
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(desc="gate cache", unit="prompt", total=total, disable=None)
        for chunk in _unique_chunks(prompts, size):
            records.extend(self.entries(chunk, foundation, experts, models, stats))
            if bar is not None:
                bar.update(len(chunk))
        if bar is not None:
            bar.close()
        return records, stats

    def entries(
        self,
        prompts: Sequence[TrainingPrompt],
        foundation: Candidate,
        experts: Sequence[Candidate],
        models: CandidateModels,
        stats: CacheStats,
    ) -> list[dict[str, Any]]:
        """The records of ``prompts`` (distinct keys), computing (and caching) only what is
        missing: one batched foundation pass for the prompts without features, then per candidate
        one batched decode over the prompts without its entry. Every prompt's entries are written
        on their own, atomically, so an interrupted fill keeps what it wrote."""
        from safetensors import safe_open

        chunk = _Chunk(list(prompts), models.device)
        self._fill_features(chunk, foundation, models, stats)
        dice: list[dict[str, float]] = [{} for _ in chunk.prompts]
        for c in [foundation, *experts]:
            missing = []
            for i, p in enumerate(chunk.prompts):
                cpath = self._candidate_path(c.weights_sha256, p.key)
                if cpath.exists():
                    with safe_open(str(cpath), framework="pt") as f:
                        dice[i][c.name] = float(f.metadata()["dice"])
                else:
                    missing.append(i)
            if missing:
                for i, d in zip(missing, self._fill_candidate(chunk, missing, c, models, stats)):
                    dice[i][c.name] = d
        return [
            {"key": p.key, "group": p.group, "features": f, "dice": d}
            for p, f, d in zip(chunk.prompts, chunk.features, dice)
        ]

    def _fill_features(self, chunk: _Chunk, foundation: Candidate, models: CandidateModels, stats: CacheStats) -> None:
        """Load or compute (one batched pass) the foundation features of every prompt of ``chunk``."""
        paths = [self._features_path(foundation.weights_sha256, p.key) for p in chunk.prompts]
        loaded = {i: load_file(str(path)) for i, path in enumerate(paths) if path.exists()}
        missing = [i for i in range(len(paths)) if i not in loaded]
        computed: dict[int, dict[str, torch.Tensor]] = {}
        if missing:
            fm = models.get(foundation)
            with torch.no_grad():
                emb = models.encode(foundation, chunk.select(chunk.images, missing))
                sparse, _ = fm.embed_prompts(chunk.select(chunk.clicks, missing), chunk.select(chunk.labels, missing))
            stats.encoder_passes += len(missing)
            emb_host, sparse_host = emb.cpu(), sparse.float().cpu()  # one transfer for the chunk
            for j, i in enumerate(missing):
                p = chunk.prompts[i]
                computed[i] = {"embedding": emb_host[j], "sparse": sparse_host[j], "click": p.click.float()}
                self._write(paths[i], computed[i], {"group": p.group})
                chunk.device_embeddings[i] = emb[j]
        chunk.features = [loaded[i] if i in loaded else computed[i] for i in range(len(paths))]

    def _fill_candidate(
        self, chunk: _Chunk, rows: list[int], c: Candidate, models: CandidateModels, stats: CacheStats
    ) -> list[float]:
        """Run candidate ``c`` on the prompts ``rows`` of ``chunk`` in one batch, write each
        prompt's low-res logits and Dice; return the Dice values."""
        m = models.get(c)
        with torch.no_grad():
            if c.own_encoder:
                emb = models.encode(c, chunk.select(chunk.images, rows))
                stats.encoder_passes += len(rows)
            else:
                emb = chunk.embeddings(rows)
            low = m.decode(emb, chunk.select(chunk.clicks, rows), chunk.select(chunk.labels, rows))
            dice = dice_per_item(m.upsample(low)[:, 0] > 0, chunk.select(chunk.targets, rows))
        stats.candidate_passes[c.name] = stats.candidate_passes.get(c.name, 0) + len(rows)
        low_host = low.half().cpu()  # one transfer for the batch
        for j, i in enumerate(rows):
            path = self._candidate_path(c.weights_sha256, chunk.prompts[i].key)
            self._write(path, {"low_res_logits": low_host[j]}, {"dice": repr(dice[j])})
        return dice


def default_batch_size(device: torch.device) -> int:
    """Prompts per batched pass of the gate cache fill when none is named: 8 on a GPU, 1 on a CPU
    (batches measured 0.84-0.92x the speed of batch 1 there, ``bench/gate_training.py``; the
    encoder's relative-position bias costs more per prompt in a batch)."""
    return 8 if device.type == "cuda" else 1


def _unique_chunks(prompts: Iterable[TrainingPrompt], size: int) -> Iterator[list[TrainingPrompt]]:
    """``prompts`` ``size`` at a time, each key once (the same case may ship twice, e.g. in
    identical calibration sets)."""
    seen: set[str] = set()
    chunk: list[TrainingPrompt] = []
    for p in prompts:
        if p.key in seen:
            continue
        seen.add(p.key)
        chunk.append(p)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class _Chunk:
    """Prompts filled together: their inputs stacked on ``device`` on first use, their features
    (host tensors, as cached) and the foundation embeddings already on the device."""

    def __init__(self, prompts: list[TrainingPrompt], device: torch.device) -> None:
        self.prompts = prompts
        self.device = device
        self.features: list[dict[str, torch.Tensor]] = []
        self.device_embeddings: dict[int, torch.Tensor] = {}

    @functools.cached_property
    def images(self) -> torch.Tensor:
        """(B, 1, S, S, S) normalised crops."""
        return torch.stack([p.image for p in self.prompts]).to(self.device)

    @functools.cached_property
    def targets(self) -> torch.Tensor:
        """(B, S, S, S) boolean target masks."""
        return torch.stack([p.target for p in self.prompts]).to(self.device)

    @functools.cached_property
    def clicks(self) -> torch.Tensor:
        """(B, 1, 3) the click of each prompt, crop voxels."""
        return torch.stack([p.click.float() for p in self.prompts])[:, None].to(self.device)

    @functools.cached_property
    def labels(self) -> torch.Tensor:
        """(B, 1) every click positive."""
        return torch.ones(len(self.prompts), 1, dtype=torch.long, device=self.device)

    def select(self, stacked: torch.Tensor, rows: list[int]) -> torch.Tensor:
        """The rows ``rows`` of one of the stacked inputs above."""
        return stacked if len(rows) == len(self.prompts) else stacked[rows]

    def embeddings(self, rows: list[int]) -> torch.Tensor:
        """(len(rows), C, g, g, g) foundation embeddings of the prompts ``rows``, on the device."""
        for i in rows:
            if i not in self.device_embeddings:
                self.device_embeddings[i] = self.features[i]["embedding"].to(self.device)
        return torch.stack([self.device_embeddings[i] for i in rows])


def best_candidate(dice: dict[str, float], order: Sequence[str], margin: float) -> int:
    """Index of the best candidate; the foundation (index 0) wins ties within ``margin``."""
    best = max(range(len(order)), key=lambda i: dice[order[i]])
    if dice[order[0]] >= dice[order[best]] - margin:
        return 0
    return best


@dataclass
class GateFit:
    gate: torch.nn.Module
    train_accuracy: float
    heldout_accuracy: float | None
    heldout_size: int
    label_counts: dict[str, int]
    heldout_table: list[dict[str, Any]]  # per candidate: true count, predicted count, correct


class _SplitGate(Protocol):
    """A gate made of fixed ``features`` and a trainable ``head``."""

    def features(self, inp: GateInput) -> torch.Tensor: ...

    def head(self, features: torch.Tensor) -> torch.Tensor: ...


def _batch(records: list[dict[str, Any]], crop_size: int, device: torch.device | str) -> GateInput:
    emb = torch.stack([r["features"]["embedding"] for r in records]).float().to(device)
    sparse = torch.stack([r["features"]["sparse"] for r in records]).float().to(device)
    click = torch.stack([r["features"]["click"] for r in records]).float().to(device)
    return GateInput(
        emb, sparse, click[:, None, :], torch.ones(len(records), 1, dtype=torch.long, device=device), crop_size
    )


def fit_gate(
    records: list[dict[str, Any]],
    order: Sequence[str],
    gate: torch.nn.Module,
    crop_size: int,
    epochs: int = 60,
    lr: float = 3e-3,
    margin: float = 0.02,
    holdout: float = 0.2,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> GateFit:
    """Train ``gate`` to predict the best candidate; hold out whole cases for the accuracy.

    A gate with fixed ``features`` and a trainable ``head`` is trained on features computed once;
    any other gate module is trained end to end on the cached inputs.
    """
    labels = [best_candidate(r["dice"], order, margin) for r in records]
    groups = sorted({r["group"] for r in records})
    random.Random(seed).shuffle(groups)
    n_hold = int(round(len(groups) * holdout)) if len(groups) > 1 else 0
    held = set(groups[:n_hold])
    tr = [i for i, r in enumerate(records) if r["group"] not in held]
    te = [i for i, r in enumerate(records) if r["group"] in held]
    torch.manual_seed(seed)
    gate = gate.to(device)
    y = torch.tensor(labels, device=device)
    counts = torch.bincount(y[tr], minlength=len(order)).float()
    weight = (counts.sum() / (len(order) * counts.clamp(min=1))).clamp(max=10.0)
    split = hasattr(gate, "features") and hasattr(gate, "head")

    def inputs(idx: list[int]) -> GateInput | torch.Tensor | None:
        parts = []
        for start in range(0, len(idx), 256):
            batch = _batch([records[i] for i in idx[start : start + 256]], crop_size, device)
            if not split:
                return batch if len(idx) <= 256 else _batch([records[i] for i in idx], crop_size, device)
            with torch.no_grad():
                parts.append(cast(_SplitGate, gate).features(batch))
        return torch.cat(parts) if parts else None

    def scores(x: Any, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Logits for ``x`` (features if ``split``, else a GateInput), or for its ``rows``."""
        if split:
            return cast(_SplitGate, gate).head(x if rows is None else x[rows])
        if rows is None:
            return cast(torch.Tensor, gate(x))
        picked = GateInput(x.embedding[rows], x.sparse[rows], x.points[rows], x.point_labels[rows], crop_size)
        return cast(torch.Tensor, gate(picked))

    x_tr = inputs(tr)
    opt = torch.optim.AdamW(gate.parameters(), lr=lr, weight_decay=0.01)
    for _ in range(epochs):
        gate.train()
        perm = torch.randperm(len(tr), device=device)
        for start in range(0, len(tr), 256):
            rows = perm[start : start + 256]
            loss = torch.nn.functional.cross_entropy(scores(x_tr, rows), y[tr][rows], weight=weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
    gate.eval()
    with torch.no_grad():
        train_acc = (scores(x_tr).argmax(1) == y[tr]).float().mean().item() if tr else 0.0
        table = []
        held_acc = None
        if te:
            pred = scores(inputs(te)).argmax(1)
            held_acc = (pred == y[te]).float().mean().item()
            for k, name in enumerate(order):
                table.append(
                    {
                        "candidate": name,
                        "best": int((y[te] == k).sum()),
                        "routed": int((pred == k).sum()),
                        "correct": int(((pred == k) & (y[te] == k)).sum()),
                    }
                )
    return GateFit(
        gate=gate.cpu(),
        train_accuracy=train_acc,
        heldout_accuracy=held_acc,
        heldout_size=len(te),
        label_counts={name: int((y == k).sum()) for k, name in enumerate(order)},
        heldout_table=table,
    )


def gate_signature(foundation_sha: str, experts: Sequence[tuple[str, str]]) -> str:
    """Identity of an expert set: the foundation hash plus sorted (name, weight hash) pairs."""
    return hashlib.sha256(json.dumps([foundation_sha, sorted(experts)]).encode()).hexdigest()
