"""``satclip`` end to end through its command line, including every bad-input case of ``embed``."""

import dataclasses
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from satclip import cli
from satclip.embed import read_metadata
from satclip.encoders.location import LocationEncoder, LocationEncoderConfig
from satclip.encoders.spherical_harmonics import spherical_harmonics

REPO = Path(__file__).resolve().parents[1]

CITIES = "city,lat,lon\nParis,48.8566,2.3522\nTokyo,35.6762,139.6503\nQuito,-0.1807,-78.4678\n"


@pytest.fixture
def cities(tmp_path):
    path = tmp_path / "cities.csv"
    path.write_text(CITIES)
    return path


def run(*args: str) -> int:
    return cli.main(["embed", *map(str, args), "--no-progress"])


def test_embed_sh_on_a_hand_written_csv(cities, tmp_path, capsys):
    out = tmp_path / "out.parquet"
    assert run("--encoder", "sh:10", "--input", cities, "--output", out) == 0
    assert "wrote 3 embeddings of dimension 100" in capsys.readouterr().err
    df = pd.read_parquet(out)
    pts = torch.tensor(pd.read_csv(cities)[["lon", "lat"]].to_numpy())
    np.testing.assert_allclose(df.filter(like="emb_").to_numpy(), spherical_harmonics(pts, 10).numpy(), atol=1e-5)
    assert df["city"].tolist() == ["Paris", "Tokyo", "Quito"]


def test_console_script_runs(cities, tmp_path):
    out = tmp_path / "out.parquet"
    proc = subprocess.run([sys.executable, "-m", "satclip.cli", "embed", "--encoder", "wrap", "--input", str(cities),
                           "--output", str(out), "--threads", "1"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert pd.read_parquet(out).filter(like="emb_").shape == (3, 4)


def test_embed_checkpoint_float64(cities, tmp_path):
    cfg = LocationEncoderConfig(legendre_polys=4, hidden_dim=8, embed_dim=5)
    torch.manual_seed(0)
    enc = LocationEncoder.from_config(cfg).eval()
    ckpt = tmp_path / "enc.ckpt"
    torch.save({"state_dict": {f"model.location.{k}": v for k, v in enc.state_dict().items()},
                "hyper_parameters": {"location": dataclasses.asdict(cfg)}}, ckpt)
    out = tmp_path / "out.parquet"
    assert run("--encoder", ckpt, "--input", cities, "--output", out, "--dtype", "float64", "--batch-size", "2") == 0
    assert read_metadata(out)["dtype"] == "float64"
    assert pd.read_parquet(out).filter(like="emb_").shape == (3, 5)


@pytest.mark.skipif(importlib.util.find_spec("geoclip") is None, reason="geoclip wheel not installed")
def test_embed_geoclip(cities, tmp_path):
    out = tmp_path / "out.parquet"
    assert run("--encoder", "geoclip", "--input", cities, "--output", out) == 0
    assert pd.read_parquet(out).filter(like="emb_").shape == (3, 512)
    assert read_metadata(out)["kind"] == "geoclip"


@pytest.mark.parametrize(("content", "message"), [
    ("city,lat\nParis,48.8\n", "no longitude column"),
    ("city,lat,lon\nParis,48.8,2.3\nNowhere,,1.0\n", "row 1: lon='1.0', lat='': latitude missing"),
    ("city,lat,lon\nParis,48.8,2.3\nMars,123,1.0\n", "row 1: lon='1.0', lat='123': latitude outside [-90, 90]"),
    ("city,lat,lon\nParis,48.8,2.3\nX,1,east\n", "row 1: lon='east', lat='1': longitude missing"),
    ("city,lat,lon\n", "no rows"),
])
def test_embed_bad_input(tmp_path, capsys, content, message):
    src = tmp_path / "pts.csv"
    src.write_text(content)
    out = tmp_path / "out.parquet"
    assert run("--encoder", "raw", "--input", src, "--output", out) == 1
    err = capsys.readouterr().err
    assert err.startswith("satclip embed: error:") and message in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pts.csv"]


def test_embed_drop_invalid(tmp_path, capsys):
    src = tmp_path / "pts.csv"
    src.write_text("city,lat,lon\nParis,48.8,2.3\nNowhere,,1.0\nMars,123,1.0\n")
    out = tmp_path / "out.parquet"
    assert run("--encoder", "raw", "--input", src, "--output", out, "--drop-invalid") == 0
    assert "dropped 2 invalid rows" in capsys.readouterr().err
    assert pd.read_parquet(out)["city"].tolist() == ["Paris"]


def test_embed_bad_encoders(cities, tmp_path, capsys):
    out = tmp_path / "out.parquet"
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"\x00" * 100)
    assert run("--encoder", garbage, "--input", cities, "--output", out) == 1
    assert "not a readable PyTorch checkpoint" in capsys.readouterr().err
    cfg = LocationEncoderConfig(legendre_polys=4, hidden_dim=8, embed_dim=5)
    wrong = LocationEncoder.from_config(dataclasses.replace(cfg, legendre_polys=6))
    mismatch = tmp_path / "mismatch.ckpt"
    torch.save({"state_dict": {f"model.location.{k}": v for k, v in wrong.state_dict().items()},
                "hyper_parameters": {"location": dataclasses.asdict(cfg)}}, mismatch)
    assert run("--encoder", mismatch, "--input", cities, "--output", out) == 1
    assert "architecture mismatch" in capsys.readouterr().err
    assert run("--encoder", "satclip-resnet99-l10", "--input", cities, "--output", out) == 1
    assert "not found" in capsys.readouterr().err
    assert run("--encoder", "sh:0", "--input", cities, "--output", out) == 1
    assert not out.exists()


def test_usage_errors_exit_2(cities, tmp_path):
    with pytest.raises(SystemExit) as exc:
        cli.main(["embed", "--input", str(cities), "--output", str(tmp_path / "o.parquet")])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        cli.main(["embed", "--encoder", "raw", "--input", str(cities), "--output", "o.parquet", "--batch-size", "0"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        cli.main([])
    assert exc.value.code == 2


def test_subcommands_can_be_registered(monkeypatch, capsys):
    def register(subparsers):
        parser = subparsers.add_parser("hello")
        parser.add_argument("--name", default="world")
        parser.set_defaults(func=lambda args: print(f"hello {args.name}") or 0)

    monkeypatch.setitem(cli.SUBCOMMANDS, "hello", register)
    assert cli.main(["hello", "--name", "satclip"]) == 0
    assert capsys.readouterr().out == "hello satclip\n"


@pytest.mark.parametrize("command", ["embed", "check", "stage", "overlay", "sweep", "compare", "report"])
def test_every_subcommand_has_a_working_help(command, capsys):
    try:
        code = cli.main([command, "--help"])
    except SystemExit as exit_:
        code = exit_.code
    assert code == 0
    assert "usage:" in capsys.readouterr().out


def test_python_m_config_help_works():
    from satclip.config import main

    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0


def test_check_refuses_a_misspelled_section_and_writes_no_stamp(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text((REPO / "params.yaml").read_text() + "evalute:\n  seeds: [0]\n")
    stamp = tmp_path / "params.valid"
    assert cli.main(["check", str(params), "--stamp", str(stamp)]) == 1
    assert "unknown key 'evalute' at the top level; did you mean 'evaluate'?" in capsys.readouterr().err
    assert not stamp.exists()
    params.write_text((REPO / "params.yaml").read_text().replace("seeds: [0, 1, 2]", "seeds: abc"))
    assert cli.main(["check", str(params), "--stamp", str(stamp)]) == 1
    assert "evaluate.seeds" in capsys.readouterr().err and not stamp.exists()
    params.write_text((REPO / "params.yaml").read_text())
    assert cli.main(["check", str(params), "--stamp", str(stamp)]) == 0 and stamp.is_file()
    first = stamp.read_bytes()
    assert cli.main(["check", str(params), "--stamp", str(stamp)]) == 0 and stamp.read_bytes() == first
