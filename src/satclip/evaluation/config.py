"""``EvaluateConfig``: the ``evaluate`` section of ``params.yaml``.

Plain dataclasses (str/int/float/bool, lists, ``X | None``, nested dataclasses) so that the generic
loader in ``satclip.config`` can build them and reject unknown keys. The defaults are the full
grid: 7 tasks x 6 encoders x 3 probes x 4 splits (random, checkerboard, Asia, Africa) x 3 seeds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PROBES = ("mlp", "xgboost", "linear", "linear_val")
MLP_PREPROCESS = ("standardize", "whiten")
SPLITS = ("random", "checkerboard", "continent")
CONTINENTS = ("Africa", "Antarctica", "Asia", "Europe", "North America", "Oceania",
              "South America", "Seven seas (open ocean)")


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}")


def _nonempty_positive(name: str, values: list) -> None:
    if not values:
        raise ValueError(f"{name} must not be empty")
    for v in values:
        _positive(name, v)


def _unique(name: str, values: list) -> None:
    if len(set(values)) != len(values):
        raise ValueError(f"{name} has duplicates: {values}")


@dataclass
class MLPConfig:
    """The MLP probe (the paper's choice). Every list is a grid axis; the grid is their product."""

    hidden: list[int] = field(default_factory=lambda: [128])  # hidden width (grid axis)
    layers: int = 2                                             # hidden layers
    lr: list[float] = field(default_factory=lambda: [1e-2])     # AdamW peak learning rate (grid axis)
    weight_decay: list[float] = field(default_factory=lambda: [1e-4])  # AdamW (grid axis)
    # input preprocessing (grid axis), fit on the training split: "standardize" (per feature) or
    # "whiten" (the top ``whiten_components`` principal components, each scaled to unit variance)
    preprocess: list[str] = field(default_factory=lambda: ["standardize"])
    whiten_components: int = 32
    max_epochs: int = 20
    min_epochs: int = 1         # no early stop before this epoch (noisy validation losses)
    patience: int = 4           # epochs without a lower validation loss before stopping
    batch_size: int = 512
    schedule: str = "cosine"    # learning rate: "cosine" (decays to 0 at max_epochs) or "constant"

    def __post_init__(self) -> None:
        _nonempty_positive("evaluate.mlp.hidden", self.hidden)
        if not self.preprocess or any(p not in MLP_PREPROCESS for p in self.preprocess):
            raise ValueError(f"evaluate.mlp.preprocess must be a non-empty list of {', '.join(MLP_PREPROCESS)}; "
                             f"got {self.preprocess}")
        if self.min_epochs > self.max_epochs:
            raise ValueError(f"evaluate.mlp.min_epochs ({self.min_epochs}) must be <= max_epochs ({self.max_epochs})")
        _nonempty_positive("evaluate.mlp.lr", self.lr)
        if not self.weight_decay or any(w < 0 for w in self.weight_decay):
            raise ValueError(f"evaluate.mlp.weight_decay must be a non-empty list of values >= 0, "
                             f"got {self.weight_decay}")
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"evaluate.mlp.schedule must be cosine or constant, got {self.schedule!r}")
        for name in ("layers", "max_epochs", "min_epochs", "patience", "batch_size", "whiten_components"):
            if getattr(self, name) < 1:
                raise ValueError(f"evaluate.mlp.{name} must be >= 1, got {getattr(self, name)}")


@dataclass
class XGBoostConfig:
    """The XGBoost probe (``hist`` trees, early stopping on the validation split)."""

    n_estimators: int = 200                 # regression: boosting rounds (upper bound)
    # classification grows one tree per class and round (~0.5 s per round for ecoregions' ~640
    # classes on 8,800 points, whatever the depth or features): fewer, larger steps. 20 rounds at
    # 0.3 reached the random-split accuracy of the MLP probe on ecoregions (benchmarks/bench_evaluate.py)
    n_estimators_classification: int = 20
    max_depth: list[int] = field(default_factory=lambda: [6])             # grid axis
    learning_rate: list[float] = field(default_factory=lambda: [0.1])     # grid axis (regression)
    learning_rate_classification: list[float] = field(default_factory=lambda: [0.3])  # grid axis
    early_stopping_rounds: int = 10
    max_bin: int = 64
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    # trees split on the top principal components of the embedding, fit on the training split
    # (the same number for every encoder; fewer when an encoder has fewer dimensions); null: the
    # embedding itself. The cost of a round grows with features x classes (benchmarks/bench_evaluate.py)
    pca_components: int | None = 16
    # classification with more training classes is skipped (noted in the results); null = never
    max_classes: int | None = None

    def __post_init__(self) -> None:
        for name in ("n_estimators", "n_estimators_classification", "early_stopping_rounds"):
            if getattr(self, name) < 1:
                raise ValueError(f"evaluate.xgboost.{name} must be >= 1, got {getattr(self, name)}")
        if self.max_classes is not None and self.max_classes < 2:
            raise ValueError(f"evaluate.xgboost.max_classes must be >= 2 or null, got {self.max_classes}")
        if self.max_bin < 2:
            raise ValueError(f"evaluate.xgboost.max_bin must be >= 2, got {self.max_bin}")
        if self.pca_components is not None and self.pca_components < 1:
            raise ValueError(f"evaluate.xgboost.pca_components must be >= 1 or null, got {self.pca_components}")
        _nonempty_positive("evaluate.xgboost.max_depth", self.max_depth)
        _nonempty_positive("evaluate.xgboost.learning_rate", self.learning_rate)
        _nonempty_positive("evaluate.xgboost.learning_rate_classification", self.learning_rate_classification)
        for name in ("subsample", "colsample_bytree"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"evaluate.xgboost.{name} must be in (0, 1], got {getattr(self, name)}")


@dataclass
class LinearConfig:
    """The linear probe of RANGE's re-evaluation (RidgeCV / RidgeClassifierCV on MinMax features)."""

    alphas: list[float] = field(default_factory=lambda: [1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0])

    def __post_init__(self) -> None:
        _nonempty_positive("evaluate.linear.alphas", self.alphas)


@dataclass
class EvaluateConfig:
    """Downstream evaluation: seeds, probes, splits and their small hyper-parameter grids."""

    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    probes: list[str] = field(default_factory=lambda: ["mlp", "xgboost", "linear"])
    splits: list[str] = field(default_factory=lambda: ["random", "checkerboard", "continent"])
    # random split: share of points in the test set (the paper: 50/50)
    test_fraction: float = 0.5
    # share of the training points carved off for validation (early stopping, model selection)
    val_fraction: float = 0.1
    # checkerboard split: block edge in degrees (360 / deg even keeps the antimeridian seam clean)
    checkerboard_deg: float = 10.0
    # ... shrunk so that at least this many blocks span the points' larger extent (a regional task
    # such as California housing, ~10 degrees wide, gets ~1.2-degree blocks); 0 disables
    checkerboard_min_blocks: int = 8
    # continent split: one split per held-out continent (the paper: Asia, then Africa)
    continent_holdouts: list[str] = field(default_factory=lambda: ["Asia", "Africa"])
    # classification: classes with fewer training examples are left out of training (their test
    # points stay and count as errors); 1 keeps every class
    min_class_count: int = 1
    # cap on training points per fit (random subsample; null = all)
    max_train_points: int | None = None
    # torch / xgboost / BLAS threads of each worker (1 was 4x faster than 2 on a shared 2-core
    # machine; docs/sources.md, "Measured here")
    threads: int = 1
    # threads that fit (encoder, seed) jobs in parallel (torch and numpy release the GIL; results
    # are identical for any number)
    workers: int = 2
    mlp: MLPConfig = field(default_factory=MLPConfig)
    xgboost: XGBoostConfig = field(default_factory=XGBoostConfig)
    linear: LinearConfig = field(default_factory=LinearConfig)

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ValueError("evaluate.seeds must not be empty")
        _unique("evaluate.seeds", self.seeds)
        for name, values, choices in (("probes", self.probes, PROBES), ("splits", self.splits, SPLITS)):
            if not values:
                raise ValueError(f"evaluate.{name} must not be empty")
            _unique(f"evaluate.{name}", values)
            for v in values:
                if v not in choices:
                    raise ValueError(f"evaluate.{name}: unknown {v!r}; choose from {', '.join(choices)}")
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"evaluate.test_fraction must be in (0, 1), got {self.test_fraction}")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"evaluate.val_fraction must be in [0, 1), got {self.val_fraction}")
        if not 0 < self.checkerboard_deg <= 180:
            raise ValueError(f"evaluate.checkerboard_deg must be in (0, 180], got {self.checkerboard_deg}")
        if self.checkerboard_min_blocks < 0:
            raise ValueError(f"evaluate.checkerboard_min_blocks must be >= 0, got {self.checkerboard_min_blocks}")
        _unique("evaluate.continent_holdouts", self.continent_holdouts)
        for c in self.continent_holdouts:
            if c not in CONTINENTS:
                raise ValueError(f"evaluate.continent_holdouts: unknown continent {c!r}; "
                                 f"choose from {', '.join(CONTINENTS)}")
        if "continent" in self.splits and not self.continent_holdouts:
            raise ValueError("evaluate.continent_holdouts must not be empty when splits has continent")
        if self.min_class_count < 1:
            raise ValueError(f"evaluate.min_class_count must be >= 1, got {self.min_class_count}")
        if self.max_train_points is not None and self.max_train_points < 2:
            raise ValueError(f"evaluate.max_train_points must be >= 2 or null, got {self.max_train_points}")
        if self.threads < 1:
            raise ValueError(f"evaluate.threads must be >= 1, got {self.threads}")
        if self.workers < 1:
            raise ValueError(f"evaluate.workers must be >= 1, got {self.workers}")

    def split_names(self) -> list[str]:
        """Names of every split ``make_splits`` yields, in order (``continent:<name>`` per holdout)."""
        names: list[str] = []
        for s in self.splits:
            if s == "continent":
                names += [f"continent:{c}" for c in self.continent_holdouts]
            else:
                names.append(s)
        return names
