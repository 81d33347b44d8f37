"""Probes: models fit on frozen location embeddings.

Common interface: ``fit(x_train, y_train, x_val, y_val)`` (validation for model selection and
early stopping), then ``predict(x)``. Regression targets are floats (the harness passes them
standardized on the training split); classification labels may be of any dtype (strings).

- ``MLPProbe``: the paper's choice, a small MLP (torch, CPU, deterministic under a seed);
  hyper-parameters chosen from a small grid on the validation loss; early stopping.
- ``XGBoostProbe``: ``hist`` gradient-boosted trees on the top principal components of the
  embedding (fit on the training split, the same number for every encoder), small grid, early
  stopping on validation.
- ``LinearProbe``: the protocol of RANGE's re-evaluation (Dhakal et al., CVPR 2025, Table 2):
  MinMax-scaled embeddings, ``RidgeCV`` / ``RidgeClassifierCV`` (efficient leave-one-out over the
  alpha grid), fit on train + validation, so its numbers can be placed beside theirs. ``ridge_loo``
  computes that estimator from one (d, d) eigendecomposition (tested equal to scikit-learn's).
- ``ValidatedLinearProbe`` (``linear_val``): the same features and alpha grid, the alpha chosen on
  the validation split (whole spatial blocks on the checkerboard and held-out continents).

Classification: classes are those seen in training; validation points of other classes are left
out of the validation loss; test points of other classes can never be predicted and so count as
errors. A single training class gives a constant predictor instead of a crash.
"""

from __future__ import annotations

import contextlib
import itertools
from abc import ABC, abstractmethod
from collections.abc import Iterator

import numpy as np

from satclip.evaluation.config import EvaluateConfig, LinearConfig, MLPConfig, XGBoostConfig
from satclip.evaluation.preprocess import InputTransform, pca_basis
from satclip.evaluation.ridge import ridge_coefs, ridge_loo


class ProbeError(RuntimeError):
    """A probe cannot be fit on the data it was given."""


class ProbeSkipped(ProbeError):
    """A probe declines a fit by configuration (e.g. XGBoost with too many classes)."""


class LabelCodes:
    """Integer codes for the classes seen in training (-1 for any other label)."""

    def __init__(self, y_train: np.ndarray) -> None:
        self.classes = np.unique(np.asarray(y_train))  # (k,) sorted

    def __len__(self) -> int:
        return len(self.classes)

    def encode(self, y: np.ndarray) -> np.ndarray:
        """(n,) labels -> (n,) int64 codes, -1 where the label is not a training class."""
        y = np.asarray(y)
        pos = np.clip(np.searchsorted(self.classes, y), 0, len(self.classes) - 1)
        return np.where(self.classes[pos] == y, pos, -1).astype(np.int64)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """(n,) codes in [0, k) -> (n,) labels."""
        return self.classes[np.asarray(codes, dtype=np.int64)]


def _check_xy(x: np.ndarray, y: np.ndarray, what: str) -> None:
    if x.ndim != 2 or y.ndim != 1 or len(x) != len(y):
        raise ProbeError(f"{what}: need x of shape (n, d) and y of shape (n,), got {x.shape}, {y.shape}")


class Probe(ABC):
    """A model fit on embeddings (n, d) -> targets (n,)."""

    name: str = "probe"

    def __init__(self, kind: str, seed: int = 0, threads: int = 1) -> None:
        if kind not in ("regression", "classification"):
            raise ValueError(f"unknown task kind {kind!r}")
        self.kind, self.seed, self.threads = kind, seed, threads
        self.selected: dict = {}  # the chosen hyper-parameters (for reports)
        self._codes: LabelCodes | None = None
        self._constant: object | None = None

    def fit(self, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray | None = None,
            y_val: np.ndarray | None = None) -> Probe:
        """Fit on (x_train, y_train); (x_val, y_val) select hyper-parameters and stop early."""
        x_train, y_train = np.asarray(x_train), np.asarray(y_train)
        _check_xy(x_train, y_train, "training data")
        if len(x_train) == 0:
            raise ProbeError("no training points")
        if x_val is None or y_val is None:
            x_val, y_val = x_train[:0], y_train[:0]
        x_val, y_val = np.asarray(x_val), np.asarray(y_val)
        _check_xy(x_val, y_val, "validation data")
        self._constant = None
        if self.kind == "classification":
            self._codes = LabelCodes(y_train)
            if len(self._codes) == 1:  # nothing to learn: always predict the one class
                self._constant = self._codes.classes[0]
                return self
            c_val = self._codes.encode(y_val)
            known = c_val >= 0
            self._fit(x_train, self._codes.encode(y_train), x_val[known], c_val[known])
        else:
            self._fit(x_train, y_train.astype(np.float64), x_val, y_val.astype(np.float64))
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(n, d) -> (n,) predictions (labels for classification)."""
        x = np.asarray(x)
        if self._constant is not None:
            return np.full(len(x), self._constant, dtype=self._codes.classes.dtype)
        out = self._predict(x)
        return self._codes.decode(out) if self.kind == "classification" else out

    @abstractmethod
    def _fit(self, x_train, y_train, x_val, y_val) -> None:
        """Fit with classification labels as codes 0..k-1 (validation codes all known)."""

    @abstractmethod
    def _predict(self, x: np.ndarray) -> np.ndarray:
        """Regression values or classification codes, (n,)."""


def _blas_threads(n: int):
    """Limit BLAS (numpy, scipy) threads: oversubscribed BLAS on a shared 2-core machine crawls."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=n, user_api="blas")


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads, then restore the previous count."""
    import torch

    before = torch.get_num_threads()
    if before == n:  # already set (e.g. by the evaluation driver for its worker threads): no change
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class MLPProbe(Probe):
    """A small MLP (``layers`` hidden ReLU layers), AdamW, early stopping on validation loss.

    Features standardized or whitened on the training split (``preprocess``, a grid axis);
    regression targets standardized (predictions are mapped back). Every point of ``cfg``'s grid
    (preprocess x hidden x lr x weight_decay) is trained and the one with the lowest validation
    loss kept, at its best epoch; no early stop before ``min_epochs``.
    """

    name = "mlp"

    def __init__(self, kind: str, cfg: MLPConfig | None = None, seed: int = 0, threads: int = 1) -> None:
        super().__init__(kind, seed, threads)
        self.cfg = cfg or MLPConfig()
        self._net = None

    def _fit(self, x_train, y_train, x_val, y_val) -> None:
        import torch

        if self.kind == "regression":
            self._y_mean = float(y_train.mean())
            self._y_scale = float(y_train.std()) or 1.0
            t_train = (y_train - self._y_mean) / self._y_scale
            t_val = (y_val - self._y_mean) / self._y_scale
            n_out = 1
        else:
            t_train, t_val, n_out = y_train, y_val, len(self._codes)
        with torch_threads(self.threads):
            dtype = torch.float32 if self.kind == "regression" else torch.int64
            yt = torch.as_tensor(t_train, dtype=dtype)
            yv = torch.as_tensor(t_val, dtype=dtype)
            best = (np.inf, None, None, None)
            i = 0
            for prep in self.cfg.preprocess:
                transform = InputTransform(prep, x_train, self.cfg.whiten_components)
                xt = torch.from_numpy(transform(x_train))
                xv = torch.from_numpy(transform(x_val))
                for hidden, lr, wd in itertools.product(self.cfg.hidden, self.cfg.lr, self.cfg.weight_decay):
                    net, loss, epochs = self._train(xt, yt, xv, yv, n_out, hidden, lr, wd, self.seed + 1000 * i)
                    i += 1
                    if loss < best[0] or best[1] is None:
                        best = (loss, net, transform, {"preprocess": prep, "hidden": hidden, "lr": lr,
                                                       "weight_decay": wd, "best_epoch": epochs,
                                                       "epochs": self._epochs_trained,
                                                       # no validation points: loss is a training loss
                                                       "val_loss": loss if len(yv) else None})
        _, self._net, self._transform, self.selected = best

    def _loss(self, out, y):
        import torch.nn.functional as F

        return F.mse_loss(out[:, 0], y) if self.kind == "regression" else F.cross_entropy(out, y)

    def _train(self, xt, yt, xv, yv, n_out: int, hidden: int, lr: float, wd: float, seed: int):
        """Train one grid point; return (net at its best epoch, its validation loss, that epoch)."""
        import torch

        gen = torch.Generator().manual_seed(seed)  # local: probes may train on several threads at once
        dims = [xt.shape[1]] + [hidden] * self.cfg.layers + [n_out]
        linears = []
        for d_in, d_out in itertools.pairwise(dims):
            lin = torch.nn.Linear(d_in, d_out, device="meta").to_empty(device="cpu")
            bound = 1.0 / np.sqrt(d_in)  # torch's default Linear init, U(-1/sqrt(fan_in), 1/sqrt(fan_in))
            with torch.no_grad():
                lin.weight.uniform_(-bound, bound, generator=gen)
                lin.bias.uniform_(-bound, bound, generator=gen)
            linears.append(lin)
        layers: list[torch.nn.Module] = []
        for lin in linears[:-1]:
            layers += [lin, torch.nn.ReLU()]
        net = torch.nn.Sequential(*layers, linears[-1])
        try:  # the fused CPU kernel is ~10 % faster per step
            opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=wd, fused=True)
        except (RuntimeError, TypeError):
            opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=wd)
        n, bs = len(xt), self.cfg.batch_size
        total_steps = self.cfg.max_epochs * -(-n // bs)
        step = 0
        has_val = len(xv) > 0
        best_loss, best_state, stale, best_epoch = np.inf, None, 0, 0
        for epoch in range(1, self.cfg.max_epochs + 1):
            net.train()
            perm = torch.randperm(n, generator=gen)
            total = 0.0
            for start in range(0, n, bs):
                idx = perm[start:start + bs]
                if self.cfg.schedule == "cosine":  # decay to 0 over max_epochs (per step)
                    for group in opt.param_groups:
                        group["lr"] = 0.5 * lr * (1.0 + np.cos(np.pi * step / total_steps))
                step += 1
                loss = self._loss(net(xt[idx]), yt[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
            if has_val:
                net.eval()
                with torch.no_grad():
                    score = float(self._loss(net(xv), yv))
            else:  # no validation points: keep the last epoch, rank grid points by training loss
                score = total / n
            if not np.isfinite(score):
                break
            if score < best_loss or not has_val:
                best_loss, stale, best_epoch = score, 0, epoch
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                stale += 1
                if stale >= self.cfg.patience and epoch >= self.cfg.min_epochs:
                    break
        if best_state is None:
            raise ProbeError(f"MLP training diverged (hidden={hidden}, lr={lr})")
        net.load_state_dict(best_state)
        net.eval()
        self._epochs_trained = epoch
        return net, best_loss, best_epoch

    def _predict(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch_threads(self.threads), torch.no_grad():
            out = self._net(torch.from_numpy(self._transform(x)))
        if self.kind == "regression":
            return out[:, 0].numpy().astype(np.float64) * self._y_scale + self._y_mean
        return out.argmax(dim=1).numpy()


class XGBoostProbe(Probe):
    """Gradient-boosted trees (``hist``), grid over depth x learning rate, early stopping on val.

    With ``pca_components`` k, the trees split on the embedding's top-k principal components
    (fit on the training split). XGBoost grows one tree per class and round at a cost that grows
    with the features, so 256-d embeddings of 600 classes cost minutes per fit without it
    (``benchmarks/bench_evaluate.py`` measures it).
    """

    name = "xgboost"

    def __init__(self, kind: str, cfg: XGBoostConfig | None = None, seed: int = 0, threads: int = 1) -> None:
        super().__init__(kind, seed, threads)
        self.cfg = cfg or XGBoostConfig()
        self._model = None

    def _fit(self, x_train, y_train, x_val, y_val) -> None:
        import xgboost as xgb

        cfg = self.cfg
        has_val = len(x_val) > 0
        classify = self.kind == "classification"
        if classify and cfg.max_classes is not None and len(self._codes) > cfg.max_classes:
            raise ProbeSkipped(f"{len(self._codes)} classes > evaluate.xgboost.max_classes "
                               f"({cfg.max_classes}): one tree per class and round is too slow")
        self._pca = None
        if cfg.pca_components is not None and x_train.shape[1] > cfg.pca_components:
            with _blas_threads(self.threads):
                self._pca = pca_basis(x_train, cfg.pca_components)
            x_train, x_val = self._project(x_train), self._project(x_val)
        best = (np.inf, None, None)
        rates = cfg.learning_rate_classification if classify else cfg.learning_rate
        for depth, lr in itertools.product(cfg.max_depth, rates):
            params = dict(
                tree_method="hist", max_bin=cfg.max_bin, max_depth=depth, learning_rate=lr,
                n_estimators=cfg.n_estimators_classification if classify else cfg.n_estimators,
                subsample=cfg.subsample, colsample_bytree=cfg.colsample_bytree,
                n_jobs=self.threads, random_state=self.seed, verbosity=0,
                early_stopping_rounds=cfg.early_stopping_rounds if has_val else None)
            if classify:
                model = xgb.XGBClassifier(objective="multi:softprob" if len(self._codes) > 2
                                          else "binary:logistic", eval_metric="mlogloss"
                                          if len(self._codes) > 2 else "logloss", **params)
            else:
                model = xgb.XGBRegressor(objective="reg:squarederror", eval_metric="rmse", **params)
            model.fit(x_train, y_train, eval_set=[(x_val, y_val)] if has_val else None, verbose=False)
            score = float(model.best_score) if has_val else 0.0
            if score < best[0] or best[1] is None:
                rounds = int(model.best_iteration) + 1 if has_val else params["n_estimators"]
                best = (score, model, {"max_depth": depth, "learning_rate": lr, "rounds": rounds,
                                       "val_loss": score if has_val else None,
                                       "features": int(x_train.shape[1])})
        _, self._model, self.selected = best

    def _project(self, x: np.ndarray) -> np.ndarray:
        if self._pca is None:
            return x
        mean, axes = self._pca
        return np.ascontiguousarray((np.asarray(x, dtype=np.float64) - mean) @ axes, dtype=np.float32)

    def _predict(self, x: np.ndarray) -> np.ndarray:
        out = self._model.predict(self._project(x))  # uses the best iteration after early stopping
        return np.asarray(out, dtype=np.int64 if self.kind == "classification" else np.float64)


class LinearProbe(Probe):
    """RANGE's linear probe: MinMax-scaled features, RidgeCV / RidgeClassifierCV on train + val.

    Classification regresses one-hot targets (equivalent to RidgeClassifierCV's +-1 coding: the
    same alpha and the same argmax) and predicts the class with the largest score.
    """

    name = "linear"

    def __init__(self, kind: str, cfg: LinearConfig | None = None, seed: int = 0, threads: int = 1) -> None:
        super().__init__(kind, seed, threads)
        self.cfg = cfg or LinearConfig()

    def _fit(self, x_train, y_train, x_val, y_val) -> None:
        x = np.concatenate([x_train, x_val]).astype(np.float64)
        y = np.concatenate([y_train, y_val])
        self._lo = x.min(axis=0)
        span = x.max(axis=0) - self._lo
        self._span = np.where(span > 0, span, 1.0)  # as sklearn's MinMaxScaler for constant columns
        # regression: (n, 1) values; classification: (n,) codes for one-hot targets
        targets = y[:, None].astype(np.float64) if self.kind == "regression" else y
        with _blas_threads(self.threads):
            alpha, self._coef, self._intercept = ridge_loo((x - self._lo) / self._span, targets,
                                                           self.cfg.alphas)
        self.selected = {"alpha": alpha}

    def _predict(self, x: np.ndarray) -> np.ndarray:
        scores = ((np.asarray(x, dtype=np.float64) - self._lo) / self._span) @ self._coef + self._intercept
        return scores[:, 0] if self.kind == "regression" else scores.argmax(axis=1)


class ValidatedLinearProbe(LinearProbe):
    """The linear probe with its ridge penalty chosen on the validation split instead of leave-one-out.

    Leave-one-out rewards interpolation between neighbouring points; on the checkerboard and the
    held-out continents the validation split is whole spatial blocks, so the penalty is chosen for
    extrapolation, as the test demands. Same MinMax features and alpha grid as ``linear``; the
    chosen alpha is refit on train + validation. Without validation points it is ``linear``.
    """

    name = "linear_val"

    def _fit(self, x_train, y_train, x_val, y_val) -> None:
        if len(x_val) == 0:
            super()._fit(x_train, y_train, x_val, y_val)
            return
        x_fit = np.asarray(x_train, dtype=np.float64)
        lo = x_fit.min(axis=0)
        span = x_fit.max(axis=0) - lo
        span = np.where(span > 0, span, 1.0)
        targets = y_train[:, None].astype(np.float64) if self.kind == "regression" else y_train
        best = (np.inf, self.cfg.alphas[0])
        with _blas_threads(self.threads):
            fits = ridge_coefs((x_fit - lo) / span, targets, self.cfg.alphas)  # one eigendecomposition
            for alpha, (coef, intercept) in zip(self.cfg.alphas, fits, strict=True):
                scores = ((np.asarray(x_val, dtype=np.float64) - lo) / span) @ coef + intercept
                if self.kind == "regression":
                    loss = float(np.mean((scores[:, 0] - y_val) ** 2))
                else:  # validation error rate, ties broken by the squared error of the scores
                    onehot = np.eye(coef.shape[1])[y_val]
                    loss = float(np.mean(scores.argmax(axis=1) != y_val)) + 1e-6 * float(np.mean((scores - onehot) ** 2))
                if loss < best[0]:
                    best = (loss, alpha)
            # refit on train + validation with the chosen alpha (MinMax over both, as ``linear``)
            x = np.concatenate([x_train, x_val]).astype(np.float64)
            self._lo = x.min(axis=0)
            span = x.max(axis=0) - self._lo
            self._span = np.where(span > 0, span, 1.0)
            y = np.concatenate([y_train, y_val])
            targets = y[:, None].astype(np.float64) if self.kind == "regression" else y
            [(self._coef, self._intercept)] = ridge_coefs((x - self._lo) / self._span, targets, [best[1]])
        self.selected = {"alpha": float(best[1]), "val_loss": best[0]}


def make_probe(name: str, kind: str, cfg: EvaluateConfig, seed: int) -> Probe:
    """The probe called ``name`` ("mlp", "xgboost", "linear", "linear_val") configured from ``cfg``."""
    if name == "mlp":
        return MLPProbe(kind, cfg.mlp, seed, cfg.threads)
    if name == "xgboost":
        return XGBoostProbe(kind, cfg.xgboost, seed, cfg.threads)
    if name == "linear":
        return LinearProbe(kind, cfg.linear, seed, cfg.threads)
    if name == "linear_val":
        return ValidatedLinearProbe(kind, cfg.linear, seed, cfg.threads)
    raise ValueError(f"unknown probe {name!r}; choose from mlp, xgboost, linear, linear_val")
