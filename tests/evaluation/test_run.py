"""evaluate_task: tidy rows, unavailable encoders, mismatched embeddings, failed fits, predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from satclip.evaluation import probes as probes_mod
from satclip.evaluation.config import EvaluateConfig, MLPConfig, XGBoostConfig
from satclip.evaluation.run import (
    RESULT_COLUMNS,
    EvaluationError,
    check_embeddings,
    evaluate_task,
    predictions_for_map,
    run_task,
)

CFG = EvaluateConfig(seeds=[0, 1], probes=["mlp", "linear"], splits=["random", "checkerboard", "continent"],
                     continent_holdouts=["Asia"], checkerboard_deg=30.0,
                     mlp=MLPConfig(hidden=[32], lr=[1e-2], max_epochs=25, batch_size=64),
                     xgboost=XGBoostConfig(n_estimators=40, n_estimators_classification=10, max_depth=[3]))


def table(n: int = 500, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    lon, lat = rng.uniform(-180, 180, n), rng.uniform(-60, 70, n)
    cont = np.where(lon > 60, "Asia", np.where(lon > -30, "Africa", "North America"))
    return pd.DataFrame({"lon": lon, "lat": lat, "continent": cont,
                         "target": np.cos(np.radians(lat)) * 30 + 5 * np.sin(np.radians(lon))})


def features(t: pd.DataFrame) -> dict[str, np.ndarray]:
    rad = np.radians(t[["lon", "lat"]].to_numpy())
    good = np.concatenate([np.cos(rad), np.sin(rad)], axis=1).astype(np.float32)  # (n, 4) wrap
    noise = np.random.default_rng(1).normal(size=(len(t), 8)).astype(np.float32)
    return {"good": good, "noise": noise}


def test_tidy_rows_for_a_regression_task():
    t = table()
    df = evaluate_task("air_temperature", t, features(t), CFG)
    assert list(df.columns) == RESULT_COLUMNS
    assert len(df) == 2 * 2 * 3 * 3  # encoders x probes x splits x (r2, mse, mae)
    assert set(df["split"]) == {"random", "checkerboard", "continent:Asia"}
    assert (df["n_seeds"] == 2).all() and (df["note"] == "").all()
    r2 = df[df["metric"] == "r2"].set_index(["encoder", "probe", "split"])["mean"]
    assert r2["good", "mlp", "random"] > 0.8
    assert r2["good", "linear", "random"] > 0.8
    assert r2["noise", "mlp", "random"] < 0.3
    rand = df[(df["split"] == "random") & (df["metric"] == "r2")]
    assert (rand["n_test"] == 250).all() and (rand["n_train"] == 250).all()
    cont = df[df["split"] == "continent:Asia"]
    assert (cont["n_test"] == (t["continent"] == "Asia").sum()).all()
    assert df["std"].notna().all()


def test_classification_task_and_unseen_classes():
    t = table(400)
    t["target"] = np.where(t["lat"] > 20, "north", np.where(t["lon"] > 0, "south-east", "south-west"))
    t.loc[0, "target"] = "singleton"
    cfg = EvaluateConfig(seeds=[0], probes=["mlp", "xgboost", "linear"], splits=["random"], mlp=CFG.mlp,
                         xgboost=CFG.xgboost)
    df = evaluate_task("biomes", t, features(t), cfg)
    assert set(df["metric"]) == {"accuracy", "macro_f1", "accuracy_seen"}
    acc = df[df["metric"] == "accuracy"].set_index(["encoder", "probe"])["mean"]
    assert acc["good", "mlp"] > 0.85 and acc["good", "xgboost"] > 0.85
    singleton_in_test = (df["n_test_seen"] < df["n_test"]).all()
    if singleton_in_test:  # the one "singleton" point is a test point no probe can get right
        assert df["note"].str.contains("399|199 of 200", regex=True).all()
    else:
        assert (df["note"] == "").all() and (df["n_test_seen"] == df["n_test"]).all()


def test_held_out_continent_without_a_seen_class_is_na_and_seen_accuracy_counts_the_rest():
    t = table(600)
    t["target"] = t["continent"]  # no class of the held-out continent occurs elsewhere
    t.loc[t.index[:40], "target"] = "Africa"  # ... except 40 points labelled as a class seen in training
    asia = t["continent"] == "Asia"
    cfg = EvaluateConfig(seeds=[0, 1], probes=["linear"], splits=["continent"], continent_holdouts=["Asia", "Africa"])
    df = evaluate_task("biomes", t, features(t), cfg)
    asia_rows = df[(df["split"] == "continent:Asia") & (df["encoder"] == "good")].set_index("metric")
    seen = int((asia & (t["target"] == "Africa")).sum())
    assert 0 < seen < asia.sum()
    assert asia_rows.loc["accuracy_seen", "n_test_seen"] == seen and asia_rows.loc["accuracy", "n_test"] == asia.sum()
    assert np.isfinite(asia_rows.loc["accuracy_seen", "mean"]) and "have a class that occurs in training" in \
        asia_rows.loc["accuracy", "note"]
    t2 = t.copy()
    t2["target"] = t2["continent"]
    df2 = evaluate_task("biomes", t2, features(t2), cfg)
    cell = df2[df2["split"] == "continent:Asia"]
    assert cell["mean"].isna().all() and (cell["note"] == "no test class on Asia occurs in training").all()


def test_runs_pair_with_seeds_and_every_fit_is_scored():
    t = table(300)
    f = features(t)
    runs = [f["good"], f["noise"], f["good"] * 2.0]  # three "pretraining runs" of one encoder
    cfg = EvaluateConfig(seeds=[0, 1, 2], probes=["linear"], splits=["random"])
    ev = run_task("air_temperature", t, {"enc": runs, "good": f["good"]}, cfg)
    rows = ev.results.set_index(["encoder", "metric"])
    assert rows.loc[("enc", "r2"), "n_pretrain_runs"] == 3 and rows.loc[("good", "r2"), "n_pretrain_runs"] == 1
    scores = ev.scores[ev.scores["metric"] == "r2"].set_index(["encoder", "seed"])
    assert list(scores.loc["enc", "run"]) == [0, 1, 2]
    # seed 1 fit the noise run: far worse than the same seed on the good features
    assert scores.loc[("enc", 1), "value"] < scores.loc[("good", 1), "value"] - 0.5
    assert scores.loc[("enc", 0), "value"] == pytest.approx(scores.loc[("good", 0), "value"], abs=1e-6)
    assert rows.loc[("enc", "r2"), "mean"] == pytest.approx(scores.loc["enc", "value"].mean())


def test_the_probes_validation_loss_is_kept_per_fit():
    t = table(300)
    cfg = EvaluateConfig(seeds=[0, 1], probes=["mlp", "linear", "linear_val"], splits=["checkerboard"], mlp=CFG.mlp)
    ev = run_task("air_temperature", t, features(t), cfg)
    val = ev.scores[ev.scores["metric"] == "val_loss"]
    # mlp and linear_val select on validation; RANGE's linear probe (leave-one-out) has no val loss
    assert set(val["probe"]) == {"mlp", "linear_val"}
    assert len(val) == 2 * 2 * 2 and np.isfinite(val["value"]).all() and (val["value"] >= 0).all()
    # the good features predict the validation blocks better than noise does
    mlp = val[val["probe"] == "mlp"].groupby("encoder")["value"].mean()
    assert mlp["good"] < mlp["noise"]
    assert "val_loss" not in set(ev.results["metric"])   # the tables show test metrics only


def test_unavailable_encoders_are_marked_not_fatal():
    t = table(200)
    emb = features(t) | {"geoclip": None}
    df = evaluate_task("air_temperature", t, emb, CFG, unavailable={"satclip-vit16-l40": "offline: no network"})
    assert set(df["encoder"]) == {"good", "noise", "geoclip", "satclip-vit16-l40"}
    miss = df[df["encoder"] == "satclip-vit16-l40"]
    assert len(miss) == 2 * 3 * 3 and miss["mean"].isna().all() and (miss["n_seeds"] == 0).all()
    assert (miss["note"] == "unavailable: offline: no network").all()
    assert df[df["encoder"] == "geoclip"]["note"].str.startswith("unavailable").all()
    assert df[df["encoder"] == "good"]["mean"].notna().all()


def test_row_mismatch_is_reported_for_that_encoder_only():
    t = table(200)
    emb = features(t)
    emb["short"] = emb["good"][:150]
    df = evaluate_task("air_temperature", t, emb, CFG)
    bad = df[df["encoder"] == "short"]
    assert bad["mean"].isna().all()
    assert bad["note"].str.contains("task air_temperature, encoder short: embeddings have shape "
                                    r"\(150, 4\) but the label table has 200 rows").all()
    assert df[df["encoder"] == "good"]["mean"].notna().all()
    with pytest.raises(EvaluationError, match="task air_temperature, encoder short: .*150 rows.*200"):
        check_embeddings("air_temperature", t, "short", emb["short"])
    with pytest.raises(EvaluationError, match="non-finite"):
        check_embeddings("air_temperature", t, "nan", np.full((200, 2), np.nan))


def test_empty_table_gives_rows_that_say_so():
    t = table(0)
    df = evaluate_task("population", t, {"good": np.zeros((0, 4), np.float32)}, CFG)
    assert len(df) == 2 * 3 * 3 and df["mean"].isna().all()
    assert df["note"].str.contains("task population: the label table is empty").all()
    with pytest.raises(EvaluationError, match="lacks columns"):
        evaluate_task("population", t.drop(columns="target"), {}, CFG)


def test_missing_holdout_and_failed_fits_are_noted(monkeypatch):
    t = table(200).assign(continent="North America")  # nothing on Asia: like California housing
    real = probes_mod.LinearProbe._fit

    def flaky(self, *args):
        if self.seed == 1:
            raise RuntimeError("boom")
        return real(self, *args)

    monkeypatch.setattr(probes_mod.LinearProbe, "_fit", flaky)
    df = evaluate_task("air_temperature", t, features(t), CFG)
    asia = df[df["split"] == "continent:Asia"]
    assert asia["mean"].isna().all() and (asia["note"] == "no test points on Asia").all()
    lin = df[(df["probe"] == "linear") & (df["split"] == "random")]
    assert (lin["n_seeds"] == 1).all() and lin["mean"].notna().all() and lin["std"].isna().all()
    assert lin["note"].str.contains("seed 1 failed: RuntimeError: boom").all()
    assert (df[(df["probe"] == "mlp") & (df["split"] == "random")]["n_seeds"] == 2).all()


def test_rows_without_targets_are_dropped_consistently():
    t = table(200)
    t.loc[[3, 7], "target"] = np.nan
    ev = run_task("air_temperature", t, features(t), CFG)
    df = ev.results
    assert df[df["encoder"] == "good"]["mean"].notna().all()
    assert (df[(df["split"] == "random")]["n_test"] == 99).all()
    p = ev.predictions[(ev.predictions["encoder"] == "good") & (ev.predictions["probe"] == "mlp")]
    assert not {3, 7} & set(p["row"])  # rows refer to the input table
    np.testing.assert_allclose(p["target"], t["target"].to_numpy()[p["row"]])
    np.testing.assert_allclose(p["lon"], t["lon"].to_numpy()[p["row"]])


def test_worker_threads_give_identical_results():
    t = table(150)
    cfg = EvaluateConfig(seeds=[0, 1], probes=["mlp", "linear"], splits=["random"], workers=2,
                         mlp=MLPConfig(hidden=[16], max_epochs=5, batch_size=64))
    serial = EvaluateConfig(**{**cfg.__dict__, "workers": 1})
    emb = features(t)
    a = run_task("air_temperature", t, emb, cfg)
    b = run_task("air_temperature", t, emb, serial)
    pd.testing.assert_frame_equal(a.results, b.results)
    pd.testing.assert_frame_equal(a.predictions, b.predictions)


def test_predictions_for_residual_maps():
    t = table(300)
    emb = features(t)
    ev = run_task("air_temperature", t, emb, CFG)
    p = ev.predictions
    sub = p[(p["encoder"] == "good") & (p["probe"] == "mlp") & (p["split"] == "checkerboard")]
    assert (sub["seed"] == 0).all() and sub["row"].is_unique
    np.testing.assert_allclose(sub["target"], t["target"].to_numpy()[sub["row"]])
    assert set(ev.timings["probe"]) == {"mlp", "linear"} and (ev.timings["seconds"] > 0).all()
    m = predictions_for_map("air_temperature", t, emb["good"], CFG, encoder="good", probe="mlp",
                            split="checkerboard")
    np.testing.assert_array_equal(m["row"], sub["row"])
    np.testing.assert_allclose(m["prediction"], sub["prediction"], rtol=1e-6)
    np.testing.assert_allclose(m["residual"], m["prediction"] - m["target"])
    with pytest.raises(EvaluationError, match="not configured"):
        predictions_for_map("air_temperature", t, emb["good"], CFG, split="spatial")


def test_results_are_deterministic():
    t = table(200)
    a = evaluate_task("air_temperature", t, features(t), CFG)
    b = evaluate_task("air_temperature", t, features(t), CFG)
    pd.testing.assert_frame_equal(a, b)


def test_xgboost_with_too_many_classes_is_skipped_with_a_note():
    t = table(300)
    t["target"] = (np.floor((t["lon"] + 180) / 30)).astype(int).astype(str)  # 12 classes
    cfg = EvaluateConfig(seeds=[0], probes=["xgboost", "linear"], splits=["random"],
                         xgboost=XGBoostConfig(n_estimators_classification=5, max_depth=[2], max_classes=5))
    df = evaluate_task("countries", t, features(t), cfg)
    xgb = df[df["probe"] == "xgboost"]
    assert xgb["mean"].isna().all()
    assert xgb["note"].str.startswith("skipped: 12 classes > evaluate.xgboost.max_classes (5)").all()
    assert df[df["probe"] == "linear"]["mean"].notna().all()


def test_config_loads_through_the_params_loader_and_validates():
    from satclip.config import ConfigError, from_dict

    cfg = from_dict(EvaluateConfig, {"seeds": [1], "splits": ["continent"], "mlp": {"hidden": [8, 16]},
                                     "max_train_points": 1000}, "evaluate")
    assert cfg.seeds == [1] and cfg.mlp.hidden == [8, 16] and cfg.mlp.layers == 2
    assert cfg.split_names() == ["continent:Asia", "continent:Africa"]
    with pytest.raises(ConfigError, match="unknown key 'epochs' in section 'evaluate.mlp'"):
        from_dict(EvaluateConfig, {"mlp": {"epochs": 3}}, "evaluate")
    for bad, field in [({"probes": ["svm"]}, "evaluate.probes"), ({"test_fraction": 1.0}, "evaluate.test_fraction"),
                       ({"continent_holdouts": ["Atlantis"]}, "evaluate.continent_holdouts"),
                       ({"mlp": {"lr": []}}, "evaluate.mlp.lr"), ({"seeds": [0, 0]}, "evaluate.seeds"),
                       ({"xgboost": {"subsample": 0.0}}, "evaluate.xgboost.subsample")]:
        with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
            from_dict(EvaluateConfig, bad, "evaluate")
