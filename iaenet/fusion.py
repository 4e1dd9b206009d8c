"""Importance-Aware Fusion (IAF, the paper's §3.3): a selector weighs the two experts' scores, a predictor maps the
weighted scores to p(anomaly). Also the baseline fusions it is compared with (Max, Add, OCSVM).

    iaf = ImportanceAwareFusion(FusionConfig()).fit(samples)      # samples: FusionSample per scan (synthetic + good)
    a = iaf.predict_points(x)                                     # x (N, 2) normalised [x1, x2] -> (N,) p(anomaly)
    s = iaf.predict_objects(o)                                    # o (M, 2) normalised [s1, s2] -> (M,) p(anomaly)

Inputs are each expert's score divided by its robust scale (`ScoreScales`: the 99th percentile of its point scores,
and of its object scores, on good scans the memory banks do not hold), so both experts' scores are of order 1.

Networks (DESIGN.md §3 IAF): selector and predictor are per-point MLPs 2 -> H -> H -> H -> 2 (ReLU, H = 64);
S = softmax(selector(x)), A = softmax(predictor(x * S))[1]. The same two networks score the object level on
[s1, s2] (paper eq. 21); they are trained on point and object samples together.

Loss: L = L_p + lambda * L_s. L_p is the cross-entropy of the predictor. L_s = mean(r * H(S)) with the performance gate
r = max(m - (b - CE), 0) per sample, held constant (no gradient through r), H(S) = -sum S log S, and b = the smaller of
the two experts' own cross-entropies, each after a 1-D logistic calibration on the same training samples. Point
classes are very unequal (anomalous points are a few percent of a defective scan): each class contributes half of
the point loss (per-class weights, the same weights in b), and every epoch draws a class-stratified sample of
points per scan. The selector starts at S = [0.5, 0.5] and stays there for the first `warmup` share of the epochs
while the predictor alone learns; see docs/fusion.md for why.

Ablations (`FusionConfig.variant`, the paper's Table 7): "predictor" (no selector: the predictor sees x),
"selector" (selector trained by L_p only), "gate" (L_s = mean(r) without H, gradient through r), "full".
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

VARIANTS = ("full", "predictor", "selector", "gate")
SCALE_PERCENTILE = 99.0


@dataclass(frozen=True)
class FusionConfig:
    """Sizes and schedule of IAF; the defaults are the paper's (AdamW 0.01, cosine, 150 epochs, batch 32 scans,
    m = 0.1, lambda = 0.1, H = 64)."""

    hidden: int = 64
    hidden_layers: int = 3
    margin: float = 0.1
    lam: float = 0.1
    learning_rate: float = 0.01
    weight_decay: float = 0.01
    epochs: int = 150
    batch_scans: int = 32
    points_per_scan: int = 2048      # class-stratified sample of each scan's points per epoch
    object_weight: float = 1.0       # weight of the object-level loss beside the point-level loss
    # share of the epochs at the start in which the selector stays at S = [0.5, 0.5] (its last layer starts at zero)
    # and only the predictor learns, with L_p: the entropy term then moves S from a predictor that already reads
    # the experts, instead of locking it onto whichever expert a random predictor favours (docs/fusion.md)
    warmup: float = 0.1
    variant: str = "full"
    seed: int = 0

    def __post_init__(self):
        for name in ("hidden", "hidden_layers", "epochs", "batch_scans", "points_per_scan"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"FusionConfig.{name}: expected a positive int, got {value!r}")
        if not (isinstance(self.warmup, (int, float)) and 0 <= self.warmup < 1):
            raise ValueError(f"FusionConfig.warmup: expected a share of the epochs in [0, 1), got {self.warmup!r}")
        for name in ("margin", "lam", "weight_decay", "object_weight"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"FusionConfig.{name}: expected a finite number >= 0, got {value!r}")
        if not (isinstance(self.learning_rate, (int, float)) and self.learning_rate > 0):
            raise ValueError(f"FusionConfig.learning_rate: expected a positive number, got {self.learning_rate!r}")
        if self.hidden > 256 or self.hidden_layers > 4:
            raise ValueError("FusionConfig: at most 4 hidden layers of width 256 (the fused kernel's limits)")
        if self.variant not in VARIANTS:
            raise ValueError(f"FusionConfig.variant: expected one of {VARIANTS}, got {self.variant!r}")

    def replace(self, **changes) -> "FusionConfig":
        return dataclasses.replace(self, **changes)


@dataclass
class FusionSample:
    """One scan of the fusion training set: points (N, 2) normalised [x1, x2], point_labels (N,) bool, objects (2,)
    normalised [s1, s2], label 0/1 (a good scan: all point labels False)."""

    points: np.ndarray
    point_labels: np.ndarray
    objects: np.ndarray
    label: int


@dataclass(frozen=True)
class ScoreScales:
    """Robust scales of the experts' scores: the 99th percentile of good scans' point scores (x1, x2) and of their
    object scores (s1, s2). normalise_* divide by them."""

    point: tuple[float, float]
    object: tuple[float, float]

    @classmethod
    def fit(cls, point_scores: Sequence[np.ndarray], object_scores: np.ndarray) -> "ScoreScales":
        """point_scores: per good scan (N_i, 2) raw [x1, x2]; object_scores (M, 2) raw [s1, s2]."""
        points = np.concatenate([np.asarray(p, np.float64).reshape(-1, 2) for p in point_scores])
        objects = np.asarray(object_scores, np.float64).reshape(-1, 2)
        point = np.percentile(points, SCALE_PERCENTILE, axis=0)
        obj = np.percentile(objects, SCALE_PERCENTILE, axis=0)
        if not (np.isfinite(point).all() and np.isfinite(obj).all() and (point > 0).all() and (obj > 0).all()):
            raise ValueError(f"ScoreScales: the good scans' scores give no positive finite scale (points {point}, "
                             f"objects {obj}); an expert scores every good point 0")
        return cls(tuple(float(v) for v in point), tuple(float(v) for v in obj))

    def normalise_points(self, x) -> np.ndarray:
        return (np.asarray(x, np.float32).reshape(-1, 2) / np.asarray(self.point, np.float32)).astype(np.float32)

    def normalise_objects(self, s) -> np.ndarray:
        return (np.asarray(s, np.float32).reshape(-1, 2) / np.asarray(self.object, np.float32)).astype(np.float32)


def mlp(hidden: int, layers: int) -> nn.Sequential:
    """2 -> hidden (x layers) -> 2, ReLU between layers."""
    widths = [2] + [hidden] * layers + [2]
    modules: list[nn.Module] = []
    for i in range(len(widths) - 1):
        modules.append(nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            modules.append(nn.ReLU())
    return nn.Sequential(*modules)


class IAFNet(nn.Module):
    """Selector + predictor. forward(x (N, 2)) -> (predictor logits (N, 2), S (N, 2))."""

    def __init__(self, hidden: int = 64, layers: int = 3, use_selector: bool = True):
        super().__init__()
        self.selector = mlp(hidden, layers)
        self.predictor = mlp(hidden, layers)
        self.use_selector = use_selector
        # S starts at [0.5, 0.5] for every input, as the paper describes the selector's start
        nn.init.zeros_(self.selector[-1].weight)
        nn.init.zeros_(self.selector[-1].bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.use_selector:
            weights = torch.softmax(self.selector(x), dim=1)
        else:
            weights = torch.ones_like(x)  # "predictor only": the scores enter unweighted
        return self.predictor(x * weights), weights


def selector_loss(ce: torch.Tensor, weights: torch.Tensor, baseline: float, margin: float,
                  sample_weight: torch.Tensor, with_entropy: bool = True) -> torch.Tensor:
    """L_s = weighted mean of r * H(S) (with_entropy) or of r (the "gate" ablation), r = max(m - (b - CE), 0).

    ce (N,) per-sample cross-entropy of the fused prediction, weights (N, 2) the selector's S, baseline b, margin m,
    sample_weight (N,) (class weights, summing to 1). With the entropy the gate r is a constant (detached): the
    gradient flows through H(S) only, pushing S away from [0.5, 0.5] while the fused prediction is not yet better
    than b by the margin; once it is (r = 0) the sample stops pulling. Without the entropy r keeps its gradient.
    """
    gate = torch.clamp(margin - (baseline - ce), min=0)
    if not with_entropy:
        return (sample_weight * gate).sum()
    entropy = -(weights * torch.log(weights.clamp_min(1e-12))).sum(dim=1)
    return (sample_weight * gate.detach() * entropy).sum()


def calibrated_cross_entropy(x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray) -> float:
    """Cross-entropy of one expert alone: a 1-D logistic regression of the labels `y` (N,) on its scores `x` (N,),
    fitted by weighted maximum likelihood (Newton), evaluated with the same weights (summing to 1)."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    w = np.asarray(sample_weight, np.float64)
    design = np.stack([x, np.ones_like(x)], 1)
    theta = np.zeros(2)
    for _ in range(50):
        p = 1 / (1 + np.exp(-np.clip(design @ theta, -50, 50)))
        grad = design.T @ (w * (p - y))
        hess = (design * (w * p * (1 - p))[:, None]).T @ design + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.abs(step).max() < 1e-10:
            break
    z = design @ theta
    # -log sigmoid(z) for y = 1, -log(1 - sigmoid(z)) for y = 0, in a stable form
    return float((w * (np.logaddexp(0, -z) * y + np.logaddexp(0, z) * (1 - y))).sum())


class ImportanceAwareFusion:
    """The trained IAF module: `network` (IAFNet), `baseline` b, the training log. Predictions run the fused
    kernel (iaenet.ops.iaf_forward) when the selector is used, else the torch modules."""

    def __init__(self, config: FusionConfig | None = None):
        self.config = config or FusionConfig()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed)
            self.network = IAFNet(self.config.hidden, self.config.hidden_layers,
                                  use_selector=self.config.variant != "predictor")
        self.network.eval()
        self.baseline: float | None = None
        self.expert_ce: tuple[float, float] | None = None
        self.log: list[dict] = []

    # ---- training ------------------------------------------------------------------------------------------

    def fit(self, samples: Sequence[FusionSample], *, progress: bool = True) -> "ImportanceAwareFusion":
        """Trains on scans with point labels (synthetic anomalies and good scans); returns self."""
        cfg = self.config
        samples = _check_samples(samples)
        rng = np.random.default_rng(cfg.seed)
        # b: the experts' own cross-entropies after calibration, on all points with the class weights of the loss
        all_x = np.concatenate([s.points for s in samples])
        all_y = np.concatenate([s.point_labels for s in samples])
        weights = _class_weights(all_y)
        ce = tuple(calibrated_cross_entropy(all_x[:, k], all_y, weights) for k in range(2))
        objects = np.stack([s.objects for s in samples])
        labels = np.array([s.label for s in samples])
        if 0 < labels.sum() < len(labels):
            object_w = _class_weights(labels.astype(bool))
            ce_objects = tuple(calibrated_cross_entropy(objects[:, k], labels, object_w) for k in range(2))
        else:
            ce_objects = ce
        self.expert_ce = ce
        self.baseline = float(min(ce))
        baseline_objects = float(min(ce_objects))

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self._train(samples, objects, labels, baseline_objects, rng, progress)
        self.network.eval()
        return self

    def _train(self, samples, objects, labels, baseline_objects, rng, progress) -> None:
        cfg = self.config
        net = self.network
        optimizer = torch.optim.AdamW(net.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        steps_per_epoch = math.ceil(len(samples) / cfg.batch_scans)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs * steps_per_epoch)
        object_x = torch.from_numpy(objects.astype(np.float32))
        object_y = torch.from_numpy(labels.astype(np.int64))
        net.train()
        self.log = []
        warm_epochs = round(cfg.warmup * cfg.epochs)
        bar = tqdm(range(cfg.epochs), disable=not progress, desc="IAF training", unit="epoch")
        for epoch in bar:
            warm = epoch < warm_epochs
            lam = 0.0 if warm else cfg.lam
            order = rng.permutation(len(samples))
            totals = np.zeros(4)
            for start in range(0, len(samples), cfg.batch_scans):
                batch = order[start:start + cfg.batch_scans]
                x, y = _stratified_points(samples, batch, cfg.points_per_scan, rng)
                loss_p, loss_s = self._losses(torch.from_numpy(x), torch.from_numpy(y), self.baseline)
                loss = loss_p + lam * loss_s
                if cfg.object_weight > 0 and len(np.unique(labels[batch])) == 2:
                    obj_p, obj_s = self._losses(object_x[batch], object_y[batch], baseline_objects)
                    loss = loss + cfg.object_weight * (obj_p + lam * obj_s)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if warm:  # no gradient, no step (AdamW skips parameters without one): S stays [0.5, 0.5]
                    for parameter in net.selector.parameters():
                        parameter.grad = None
                optimizer.step()
                schedule.step()
                totals += [loss.item(), loss_p.item(), loss_s.item(), 1]
            entry = {"epoch": epoch + 1, "loss": totals[0] / totals[3], "loss_p": totals[1] / totals[3],
                     "loss_s": totals[2] / totals[3]}
            self.log.append(entry)
            bar.set_postfix(loss=f"{entry['loss']:.4f}", L_p=f"{entry['loss_p']:.4f}")

    def _losses(self, x: torch.Tensor, y: torch.Tensor, baseline: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(L_p, L_s) on one batch with class-balanced weights."""
        cfg = self.config
        logits, weights = self.network(x)
        w = torch.from_numpy(_class_weights(y.numpy().astype(bool)).astype(np.float32))
        ce = nn.functional.cross_entropy(logits, y, reduction="none")
        loss_p = (w * ce).sum()
        if cfg.variant in ("predictor", "selector"):
            return loss_p, torch.zeros(())
        return loss_p, selector_loss(ce, weights, baseline, cfg.margin, w, with_entropy=cfg.variant == "full")

    # ---- prediction ----------------------------------------------------------------------------------------

    @torch.no_grad()
    def predict_points(self, x, return_weights: bool = False):
        """x (N, 2) normalised [x1, x2] -> A (N,) float32 p(anomaly), and S (N, 2) with return_weights."""
        x = _as_inputs(x, "x")
        if self.network.use_selector:
            from iaenet.ops import iaf_forward

            return iaf_forward(x, self._layers(self.network.selector), self._layers(self.network.predictor),
                               return_weights=return_weights)
        logits, weights = self.network(torch.from_numpy(x))
        a = torch.softmax(logits, dim=1)[:, 1].numpy()
        return (a, weights.numpy()) if return_weights else a

    def predict_objects(self, s):
        """s (M, 2) normalised [s1, s2] -> (M,) float32 p(anomaly)."""
        return self.predict_points(s)

    @staticmethod
    def _layers(sequential: nn.Sequential) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(m.weight.detach().numpy(), m.bias.detach().numpy()) for m in sequential if isinstance(m, nn.Linear)]

    # ---- state ---------------------------------------------------------------------------------------------

    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        """(tensors, JSON-able header) for a model file."""
        tensors = {f"iaf.{k}": v for k, v in self.network.state_dict().items()}
        header = {"config": dataclasses.asdict(self.config), "baseline": self.baseline,
                  "expert_ce": self.expert_ce, "log": self.log}
        return tensors, header

    @classmethod
    def from_state(cls, tensors: dict[str, torch.Tensor], header: dict) -> "ImportanceAwareFusion":
        fusion = cls(FusionConfig(**header["config"]))
        fusion.network.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("iaf.")})
        fusion.baseline = header["baseline"]
        fusion.expert_ce = tuple(header["expert_ce"]) if header["expert_ce"] is not None else None
        fusion.log = list(header.get("log", []))
        fusion.network.eval()
        return fusion


# ---- baselines -----------------------------------------------------------------------------------------------------

def fuse_max(x) -> np.ndarray:
    """Max of the normalised scores, (N, 2) -> (N,)."""
    return _as_inputs(x, "x").max(axis=1)


def fuse_add(x) -> np.ndarray:
    """Sum of the normalised scores, (N, 2) -> (N,)."""
    return _as_inputs(x, "x").sum(axis=1)


class OCSVMFusion:
    """One-class SVM on normalised [x1, x2] of good scans (RBF kernel, nu = 0.01); score = -decision function (shifted
    to be >= 0), so higher is more anomalous. Fitted by sklearn on a seeded subsample (libsvm scales quadratically); scoring uses
    the stored support vectors, so a saved model needs no pickle."""

    def __init__(self, nu: float = 0.01, max_samples: int = 5000, seed: int = 0):
        self.nu, self.max_samples, self.seed = nu, max_samples, seed
        self.support: np.ndarray | None = None   # (n, 2) support vectors
        self.coef: np.ndarray | None = None      # (n,) dual coefficients
        self.intercept = 0.0
        self.gamma = 1.0

    def fit(self, good) -> "OCSVMFusion":
        from sklearn.svm import OneClassSVM

        good = _as_inputs(good, "good").astype(np.float64)
        rng = np.random.default_rng(self.seed)
        if len(good) > self.max_samples:
            good = good[rng.choice(len(good), self.max_samples, replace=False)]
        gamma = 1.0 / (2 * good.var()) if good.var() > 0 else 1.0  # sklearn's gamma="scale"
        model = OneClassSVM(nu=self.nu, gamma=gamma).fit(good)
        self.support, self.coef = model.support_vectors_.copy(), model.dual_coef_[0].copy()
        self.intercept, self.gamma = float(model.intercept_[0]), float(gamma)
        return self

    def score(self, x) -> np.ndarray:
        """(N, 2) -> (N,) float32, sum_i coef_i - sum_i coef_i exp(-gamma |x - sv_i|^2): minus the decision function
        shifted by a constant (sum coef - intercept) so that every score is >= 0 (the coefficients are >= 0 and the
        kernel <= 1), as score maps need: 0 is where a map has no point."""
        if self.support is None:
            raise RuntimeError("OCSVMFusion.score: call fit() first")
        x = _as_inputs(x, "x").astype(np.float64)
        out = np.empty(len(x), np.float64)
        for start in range(0, len(x), 8192):  # bounds the (chunk, n) kernel matrix
            chunk = x[start:start + 8192]
            d2 = ((chunk[:, None, :] - self.support[None]) ** 2).sum(-1)
            out[start:start + 8192] = np.exp(-self.gamma * d2) @ self.coef
        return np.maximum(self.coef.sum() - out, 0).astype(np.float32)  # max: rounding must not make it negative

    def state(self) -> dict:
        return {"nu": self.nu, "gamma": self.gamma, "intercept": self.intercept,
                "support": self.support.tolist(), "coef": self.coef.tolist()}

    @classmethod
    def from_state(cls, state: dict) -> "OCSVMFusion":
        model = cls(nu=state["nu"])
        model.gamma, model.intercept = float(state["gamma"]), float(state["intercept"])
        model.support = np.asarray(state["support"], np.float64).reshape(-1, 2)
        model.coef = np.asarray(state["coef"], np.float64).reshape(-1)
        if len(model.coef) != len(model.support) or not (np.isfinite(model.support).all()
                                                         and np.isfinite(model.coef).all()):
            raise ValueError("OCSVM state: support vectors and coefficients do not fit together or are not finite")
        return model


# ---- helpers -------------------------------------------------------------------------------------------------------

def _as_inputs(x, name: str) -> np.ndarray:
    arr = np.asarray(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x)
    if arr.dtype.kind not in "fiu" or arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name}: expected an (N, 2) array of [x1, x2] scores, got shape {arr.shape} {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains NaN or inf")
    return arr


def _check_samples(samples: Sequence[FusionSample]) -> list[FusionSample]:
    samples = list(samples)
    if not samples:
        raise ValueError("samples: empty; the fusion needs scans with labels")
    for i, s in enumerate(samples):
        _as_inputs(s.points, f"samples[{i}].points")
        if np.asarray(s.point_labels).shape != (len(s.points),):
            raise ValueError(f"samples[{i}].point_labels: expected ({len(s.points)},), got "
                             f"{np.asarray(s.point_labels).shape}")
        if np.asarray(s.objects).shape != (2,) or not np.isfinite(s.objects).all():
            raise ValueError(f"samples[{i}].objects: expected 2 finite numbers [s1, s2]")
    labels = np.concatenate([np.asarray(s.point_labels, bool) for s in samples])
    if labels.all() or not labels.any():
        raise ValueError("samples: the points need both classes (anomalous and normal) to train the fusion")
    return samples


def _class_weights(y: np.ndarray) -> np.ndarray:
    """Per-sample weights summing to 1 with each present class holding an equal share."""
    y = np.asarray(y, bool)
    w = np.zeros(len(y), np.float64)
    classes = [c for c in (False, True) if (y == c).any()]
    for c in classes:
        w[y == c] = 1.0 / (len(classes) * (y == c).sum())
    return w


def _stratified_points(samples, batch, per_scan: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Points of the scans in `batch`: per scan up to per_scan // 2 anomalous points and the rest normal, drawn
    without replacement; (n, 2) float32 inputs, (n,) int64 labels."""
    xs, ys = [], []
    for i in batch:
        s = samples[i]
        labels = np.asarray(s.point_labels, bool)
        bad, good = np.flatnonzero(labels), np.flatnonzero(~labels)
        n_bad = min(len(bad), per_scan // 2)
        n_good = min(len(good), per_scan - n_bad)
        pick = np.concatenate([rng.choice(bad, n_bad, replace=False), rng.choice(good, n_good, replace=False)])
        xs.append(np.asarray(s.points, np.float32)[pick])
        ys.append(labels[pick])
    return np.concatenate(xs), np.concatenate(ys).astype(np.int64)
