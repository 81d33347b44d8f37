"""Probes learn easy functions, are deterministic and survive awkward classes."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import RidgeClassifierCV, RidgeCV

from satclip.evaluation.config import EvaluateConfig, LinearConfig, MLPConfig, XGBoostConfig
from satclip.evaluation.metrics import accuracy, r2
from satclip.evaluation.probes import (
    LabelCodes,
    LinearProbe,
    MLPProbe,
    ProbeError,
    ValidatedLinearProbe,
    XGBoostProbe,
    make_probe,
    ridge_loo,
)

MLP = MLPConfig(hidden=[32], lr=[1e-2], max_epochs=60, patience=10, batch_size=64)
XGB = XGBoostConfig(n_estimators=100, n_estimators_classification=30, max_depth=[3])


def regression_data(n: int = 600, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, (n, 6)).astype(np.float32)
    y = np.sin(2 * x[:, 0]) + x[:, 1] ** 2 + 0.05 * rng.normal(size=n)
    return x, y


def classification_data(n: int = 600, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 4)).astype(np.float32)
    labels = np.array(["north", "south-west", "south-east"], dtype=object)
    y = labels[np.where(x[:, 0] > 0, 0, np.where(x[:, 1] > 0, 1, 2))]
    return x, y


def fit_eval(probe, x, y):
    n = len(x)
    tr, va, te = slice(0, n // 2), slice(n // 2, 3 * n // 5), slice(3 * n // 5, n)
    probe.fit(x[tr], y[tr], x[va], y[va])
    return probe.predict(x[te]), y[te]


@pytest.mark.parametrize("probe", [MLPProbe("regression", MLP), XGBoostProbe("regression", XGB)])
def test_nonlinear_probes_learn_a_nonlinear_regression(probe):
    pred, y = fit_eval(probe, *regression_data())
    assert pred.shape == y.shape and pred.dtype == np.float64
    assert r2(y, pred) > 0.85
    assert probe.selected  # the chosen grid point is reported


def test_linear_probe_learns_a_linear_function():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5)).astype(np.float32)
    y = x @ np.array([1.0, -2.0, 0.5, 0.0, 3.0]) + 10 + 0.1 * rng.normal(size=400)
    pred, yt = fit_eval(LinearProbe("regression", LinearConfig()), x, y)
    assert r2(yt, pred) > 0.99


@pytest.mark.parametrize("probe", [MLPProbe("classification", MLP), XGBoostProbe("classification", XGB),
                                   LinearProbe("classification")])
def test_probes_learn_an_easy_classification(probe):
    pred, y = fit_eval(probe, *classification_data())
    assert pred.dtype == y.dtype and set(pred) <= set(y)
    assert accuracy(y, pred) > 0.9  # chance: ~0.5


@pytest.mark.parametrize("name", ["mlp", "xgboost", "linear"])
def test_probes_are_deterministic_under_a_seed(name):
    cfg = EvaluateConfig(mlp=MLPConfig(hidden=[16, 32], lr=[1e-2], max_epochs=15, batch_size=64), xgboost=XGB)
    x, y = regression_data(300)
    a, _ = fit_eval(make_probe(name, "regression", cfg, seed=3), x, y)
    b, _ = fit_eval(make_probe(name, "regression", cfg, seed=3), x, y)
    np.testing.assert_array_equal(a, b)


def test_mlp_grid_picks_the_lowest_validation_loss():
    cfg = MLPConfig(hidden=[4, 32], lr=[1e-4, 1e-2], max_epochs=20, batch_size=64)
    probe = MLPProbe("regression", cfg)
    fit_eval(probe, *regression_data(400))
    assert probe.selected["lr"] == 1e-2  # 1e-4 barely moves in 20 epochs
    assert probe.selected["best_epoch"] >= 1


@pytest.mark.parametrize("name", ["mlp", "xgboost", "linear"])
def test_rare_and_test_only_classes(name):
    x, y = classification_data(300)
    y = y.copy()
    y[0] = "singleton"      # one training example
    y[299] = "test-only"    # never seen in training: always an error
    y[200] = "val-only"     # in the validation rows only: left out of the validation loss
    cfg = EvaluateConfig(mlp=MLPConfig(hidden=[16], max_epochs=10, batch_size=64), xgboost=XGB)
    probe = make_probe(name, "classification", cfg, seed=0)
    probe.fit(x[:150], y[:150], x[150:250], y[150:250])
    pred = probe.predict(x[250:])
    assert "test-only" not in set(pred) and "val-only" not in set(pred)
    assert pred[-1] != y[-1]


@pytest.mark.parametrize("name", ["mlp", "xgboost", "linear"])
def test_a_single_training_class_gives_a_constant_predictor(name):
    x, _ = classification_data(50)
    y = np.array(["only"] * 50, dtype=object)
    probe = make_probe(name, "classification", EvaluateConfig(), seed=0)
    probe.fit(x[:30], y[:30], x[30:40], np.array(["other"] * 10, dtype=object))
    assert list(probe.predict(x[40:])) == ["only"] * 10


def test_two_classes_and_no_validation_points():
    x, y = classification_data(200)
    y = np.where(y == "north", "north", "south").astype(object)
    for name in ("mlp", "xgboost", "linear"):
        cfg = EvaluateConfig(mlp=MLPConfig(hidden=[16], max_epochs=20, batch_size=32), xgboost=XGB)
        probe = make_probe(name, "classification", cfg, seed=0).fit(x[:150], y[:150])
        assert accuracy(y[150:], probe.predict(x[150:])) > 0.85, name
        # without validation points no loss is a validation loss (the validation verdict skips the fit)
        assert probe.selected.get("val_loss") is None, name


def test_bad_shapes_raise():
    with pytest.raises(ProbeError, match="shape"):
        MLPProbe("regression").fit(np.zeros((5, 2)), np.zeros(4))
    with pytest.raises(ProbeError, match="no training points"):
        MLPProbe("regression").fit(np.zeros((0, 2)), np.zeros(0))
    with pytest.raises(ValueError, match="unknown probe"):
        make_probe("svm", "regression", EvaluateConfig(), 0)


def test_label_codes_mark_unknown_labels():
    codes = LabelCodes(np.array(["b", "a", "b"], dtype=object))
    np.testing.assert_array_equal(codes.encode(np.array(["a", "z", "b", "0"], dtype=object)), [0, -1, 1, -1])
    assert list(codes.decode(np.array([1, 0]))) == ["b", "a"]


@pytest.mark.parametrize("n,d", [(300, 20), (40, 60)])
def test_ridge_loo_matches_sklearn_ridgecv(n, d):
    rng = np.random.default_rng(n)
    alphas = [1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0]
    x = rng.random((n, d))
    y = x @ rng.normal(size=d) + 0.5 * rng.normal(size=n)
    ref = RidgeCV(alphas=alphas).fit(x, y)
    alpha, coef, intercept = ridge_loo(x, y[:, None], alphas)
    assert alpha == ref.alpha_
    np.testing.assert_allclose(coef[:, 0], ref.coef_, atol=1e-8)
    np.testing.assert_allclose(intercept[0], ref.intercept_, atol=1e-8)


@pytest.mark.parametrize("k", [2, 5, 40])  # 40 > d takes the many-class path
def test_linear_classifier_matches_sklearn_ridgeclassifiercv(k):
    rng = np.random.default_rng(k)
    alphas = [1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0]
    x = rng.random((300, 12))
    y = np.clip((x[:, 0] * k).astype(int) + rng.integers(-1, 2, 300), 0, k - 1)
    ref = RidgeClassifierCV(alphas=alphas).fit(x, y)
    probe = LinearProbe("classification", LinearConfig(alphas)).fit(x, y)
    assert probe.selected["alpha"] == ref.alpha_
    # the probe MinMax-scales first (RANGE); ridge on scaled features, compare with sklearn on them too
    xs = (x - x.min(0)) / (x.max(0) - x.min(0))
    ref = RidgeClassifierCV(alphas=alphas).fit(xs, y)
    assert probe.selected["alpha"] == ref.alpha_
    assert np.mean(probe.predict(x) == ref.predict(xs)) > 0.99


def test_mlp_chooses_preprocessing_on_validation_and_reports_it():
    rng = np.random.default_rng(1)
    # the target lives in a direction of tiny variance, mixed into every feature by a rotation:
    # standardizing the features cannot bring it out, whitening can
    z = rng.normal(size=(800, 4))
    rotation, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    x = ((z * np.array([30.0, 20.0, 10.0, 0.01])) @ rotation).astype(np.float32)
    y = np.sin(2 * z[:, 3])
    cfg = MLPConfig(hidden=[32], lr=[1e-2], preprocess=["standardize", "whiten"], whiten_components=4,
                    max_epochs=20, min_epochs=5, batch_size=64)
    probe = MLPProbe("regression", cfg)
    pred, truth = fit_eval(probe, x, y)
    assert probe.selected["preprocess"] == "whiten"
    standardized = MLPProbe("regression", MLPConfig(**{**cfg.__dict__, "preprocess": ["standardize"]}))
    pred_s, _ = fit_eval(standardized, x, y)
    assert standardized.selected["val_loss"] > probe.selected["val_loss"]
    assert r2(truth, pred) > r2(truth, pred_s) + 0.2


def test_min_epochs_holds_off_early_stopping():
    x, y = regression_data(200)
    y = np.random.default_rng(5).normal(size=len(y))  # noise: the validation loss rises at once
    eager = MLPProbe("regression", MLPConfig(hidden=[64], lr=[5e-2], max_epochs=12, min_epochs=1, patience=1))
    patient = MLPProbe("regression", MLPConfig(hidden=[64], lr=[5e-2], max_epochs=12, min_epochs=12, patience=1))
    fit_eval(eager, x, y)
    fit_eval(patient, x, y)
    assert eager.selected["epochs"] < 12
    assert patient.selected["epochs"] == 12


def test_validated_linear_probe_chooses_alpha_on_validation_then_refits_on_all():
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 20))
    y = x[:, 0] - 0.5 * x[:, 1] + 0.8 * rng.normal(size=300)
    tr, va, te = slice(0, 150), slice(150, 220), slice(220, 300)
    alphas = [1e-3, 1e-1, 10.0, 1000.0]
    probe = ValidatedLinearProbe("regression", LinearConfig(alphas=alphas)).fit(x[tr], y[tr], x[va], y[va])
    lo, span = x[tr].min(axis=0), np.ptp(x[tr], axis=0)
    val_mse = {a: np.mean((Ridge(alpha=a).fit((x[tr] - lo) / span, y[tr]).predict((x[va] - lo) / span) - y[va]) ** 2)
               for a in alphas}
    assert probe.selected["alpha"] == min(val_mse, key=val_mse.get)
    refit = LinearProbe("regression", LinearConfig(alphas=[probe.selected["alpha"]])).fit(x[tr], y[tr], x[va], y[va])
    np.testing.assert_allclose(probe.predict(x[te]), refit.predict(x[te]), rtol=1e-10)
    # classification: chosen by validation error, predicts training classes
    xc, yc = classification_data(300)
    clf = make_probe("linear_val", "classification", EvaluateConfig(), seed=0)
    pred, truth = fit_eval(clf, xc, yc)
    assert set(pred) <= set(yc) and accuracy(truth, pred) > 0.7 and "alpha" in clf.selected
