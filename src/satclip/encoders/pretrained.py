"""Pretrained location encoders: the released SatCLIP checkpoints, ours, and GeoCLIP's.

``load_location_encoder(path_or_name)`` returns a ready (eval-mode) encoder taking (N, 2)
(lon, lat) degrees:

- a path to a Lightning checkpoint in the official layout (``model.location.nnet.*``, also
  ``model.nnet.*``; ``hyper_parameters`` with the original's names ``le_type``, ``pe_type``,
  ``legendre_polys``, ``capacity``, ...) or written by this project's pretraining
  (``hyper_parameters['location']`` = the ``LocationEncoderConfig`` as a dict, weights under
  ``model.location.``). Only the location weights are read; no image backbone is built;
- an official name (``satclip-resnet18-l10`` ... ``satclip-vit16-l40``): the checkpoint is
  downloaded once from Hugging Face (``microsoft/SatCLIP-*``) into huggingface_hub's cache
  through ``satclip.data.hub.hub_file`` (revision and sha256 pinned by the download lock on first
  use); ``$HF_ENDPOINT`` replaces ``https://huggingface.co``, ``HF_HUB_OFFLINE=1`` uses the cache only;
- ``geoclip``: the GeoCLIP location encoder (Vivanco et al., NeurIPS 2023) with the weights
  shipped in the ``geoclip`` wheel, read without importing that package (it pulls
  ``transformers``). GeoCLIP takes (lat, lon); the swap happens inside ``GeoCLIPLocationEncoder``.

Every file is verified before its weights are used (``verify_checkpoint_file``: an intact zip
archive, every member's CRC; torch.load checks none), the weights must fit the architecture
(no missing, unexpected or misshapen tensor) and be finite; anything else is a ``CheckpointError``
naming the file.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import os
import pickle
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from satclip.encoders.location import DTYPES, LocationEncoder, LocationEncoderConfig

__all__ = [
    "CheckpointError",
    "OfficialCheckpoint",
    "OFFICIAL_CHECKPOINTS",
    "RELEASED_ARCHITECTURE",
    "GEOCLIP_NAME",
    "official_checkpoint_url",
    "fetch_official_checkpoint",
    "resolve_checkpoint",
    "verify_checkpoint_file",
    "read_location_checkpoint",
    "load_location_encoder",
    "GeoCLIPLocationEncoder",
    "geoclip_weights_path",
    "load_geoclip",
]

HF_ENDPOINT_ENV = "HF_ENDPOINT"
HF_DEFAULT_ENDPOINT = "https://huggingface.co"
GEOCLIP_NAME = "geoclip"


class CheckpointError(ValueError):
    """A checkpoint cannot be read or does not match the architecture it describes."""


@dataclass(frozen=True)
class OfficialCheckpoint:
    """One released SatCLIP model (MIT): where it lives and what it is."""

    name: str
    repo_id: str
    filename: str
    image_encoder: str
    legendre_polys: int
    revision: str = "main"  # a branch is resolved once and pinned by the download lock
    sha256: str | None = None  # None: none published; recorded in the download lock on first use


def _official(image_encoder: str, repo_part: str, L: int, revision: str = "main") -> OfficialCheckpoint:
    name = f"satclip-{image_encoder}-l{L}"
    return OfficialCheckpoint(name=name, repo_id=f"microsoft/SatCLIP-{repo_part}-L{L}", filename=f"{name}.ckpt",
                              image_encoder=image_encoder, legendre_polys=L, revision=revision)


#: The six released models. Only the ViT16-L40 revision is known offline (the commit torchgeo
#: 0.10.1's ``SatCLIP_Weights.SATCLIP_VIT16_L40`` uses); the others name ``main``, which the first
#: download resolves to a commit and records, with the file's sha256, in the download lock
#: (``satclip.data.lock``). No sha256 is published for any of them: the first download is checked
#: against the sha256 the hub advertises for the LFS file, and later ones against the lock.
OFFICIAL_CHECKPOINTS: dict[str, OfficialCheckpoint] = {
    c.name: c
    for c in (
        _official("resnet18", "ResNet18", 10),
        _official("resnet18", "ResNet18", 40),
        _official("resnet50", "ResNet50", 10),
        _official("resnet50", "ResNet50", 40),
        _official("vit16", "ViT16", 10),  # "ViT16" is ViT-Small/16
        _official("vit16", "ViT16", 40, revision="0ef2acc0b91d3c8cfdf4a0cc03207095989287ab"),
    )
}

#: Location encoder of all six released models (docs/sources.md): SH (satclip convention),
#: SIREN 2 x 512 with dropout 0.5, 256-d output.
RELEASED_ARCHITECTURE: dict[str, Any] = dict(encoding="sh", sh_convention="satclip", network="siren",
                                             hidden_dim=512, num_hidden_layers=2, dropout=0.5, embed_dim=256)

# Original SatCLIP names -> ours. Encodings the original computes differently from ours
# (degrees instead of radians, duplicated features) are deliberately absent.
_OFFICIAL_ENCODINGS = {"sphericalharmonics": "sh", "wrap": "wrap", "cartesian3d": "cartesian3d"}
_OFFICIAL_NETWORKS = ("siren", "mlp", "fcnet", "linear")


# ---------------------------------------------------------------------------------------------
# Locating checkpoints
# ---------------------------------------------------------------------------------------------


def official_checkpoint_url(name: str) -> str:
    """Hugging Face download URL of an official checkpoint (honours ``$HF_ENDPOINT``)."""
    ckpt = _official_by_name(name)
    endpoint = (os.environ.get(HF_ENDPOINT_ENV) or HF_DEFAULT_ENDPOINT).rstrip("/")
    return f"{endpoint}/{ckpt.repo_id}/resolve/{ckpt.revision}/{ckpt.filename}"


def _official_by_name(name: str) -> OfficialCheckpoint:
    try:
        return OFFICIAL_CHECKPOINTS[name.lower()]
    except KeyError:
        raise CheckpointError(f"unknown official checkpoint {name!r}; expected one of {sorted(OFFICIAL_CHECKPOINTS)}") from None


def fetch_official_checkpoint(name: str, *, progress: bool = True) -> Path:
    """Download (once) an official checkpoint into the hub cache and return its path.

    Raises:
        satclip.data.download.DownloadError: the file cannot be fetched or does not verify.
        satclip.data.lock.LockError: the hub contradicts the download lock.
    """
    from satclip.data.hub import hub_file  # imported here: the encoders need no network code

    ckpt = _official_by_name(name)
    return hub_file(ckpt.repo_id, ckpt.filename, repo_type="model", revision=ckpt.revision,
                    sha256=ckpt.sha256, progress=progress)


def resolve_checkpoint(path_or_name: str | os.PathLike[str], *, progress: bool = True) -> Path:
    """A local checkpoint path for a path or an official name (downloading if needed)."""
    text = os.fspath(path_or_name)
    if text.lower() in OFFICIAL_CHECKPOINTS and not Path(text).exists():
        return fetch_official_checkpoint(text, progress=progress)
    path = Path(text).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {text!r} not found (neither a file nor one of "
                                f"{sorted(OFFICIAL_CHECKPOINTS)} or {GEOCLIP_NAME!r})")
    return path


# ---------------------------------------------------------------------------------------------
# Reading checkpoints
# ---------------------------------------------------------------------------------------------


def verify_checkpoint_file(path: str | os.PathLike[str]) -> None:
    """Check that a checkpoint is an intact zip archive (what ``torch.save`` writes), CRCs included.

    ``torch.load`` checks no CRC: a file of the right size with damaged bytes inside a tensor
    loads and its weights become garbage (NaN embeddings). This reads every member once.

    Raises:
        CheckpointError: not a zip archive (truncated, a legacy ``torch.save`` file or another
            format), unreadable, or a member failing its CRC check; the message names the file.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()  # name of the first member whose CRC does not match, or None
    except zipfile.BadZipFile as err:
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint (not a zip archive: truncated, a legacy torch.save "
            f"file or another format; re-save a legacy file with a current torch.save) ({err})") from err
    except (OSError, EOFError, zlib.error, NotImplementedError) as err:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({type(err).__name__}: {err})") from err
    if bad is not None:
        raise CheckpointError(f"{path}: corrupt checkpoint: archive member {bad!r} fails its CRC check (the file "
                              f"was damaged after it was written; copy or download it again)")


def _check_finite(weights: dict[str, Any], path: Path) -> None:
    """Raise a CheckpointError naming the floating-point tensors that hold NaN or infinity."""
    bad = [k for k, v in weights.items() if isinstance(v, Tensor) and v.is_floating_point()
           and not bool(torch.isfinite(v).all())]
    if bad:
        shown = ", ".join(bad[:3]) + (f", ... ({len(bad)} tensors)" if len(bad) > 3 else "")
        raise CheckpointError(f"{path}: non-finite weights (NaN or infinite values) in {shown}")


def _torch_load(path: Path, weights_only: bool) -> Any:
    verify_checkpoint_file(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as err:
        hint = (" If the file is trusted and holds pickled Python objects, load it with weights_only=False."
                if weights_only and "weights_only" in str(err) else "")
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({type(err).__name__}: "
                              f"{str(err).splitlines()[0] if str(err) else ''}).{hint}") from err


def _location_weights(obj: Any, path: Path) -> dict[str, Tensor]:
    """The location encoder's state dict (keys ``nnet.*``) out of any supported layout."""
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a checkpoint dict, got {type(obj).__name__}")
    state = obj.get("state_dict", obj)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: 'state_dict' is not a dict")
    # "model.location.*" (official and ours), else the official duplicate "model.nnet.*", else a
    # bare LocationEncoder state dict
    for prefix, parts in (("model.location.", ("",)), ("model.", ("nnet.",)), ("", ("nnet.", "posenc."))):
        picked = {k[len(prefix):]: v for k, v in state.items() if isinstance(k, str) and isinstance(v, Tensor)
                  and any(k.startswith(prefix + part) for part in parts)}
        if picked:
            return picked
    raise CheckpointError(f"{path}: no location-encoder weights (expected keys 'model.location.nnet.*', "
                          f"'model.nnet.*' or 'nnet.*')")


def _config_from_official(hp: dict[str, Any], path: Path) -> LocationEncoderConfig:
    """Map the original's ``hyper_parameters`` (SatCLIPLightningModule arguments) to our config."""
    le_type = hp.get("le_type", "sphericalharmonics")
    if le_type not in _OFFICIAL_ENCODINGS:
        raise CheckpointError(
            f"{path}: location encoding {le_type!r} of the original code is not supported; this package "
            f"computes it differently (radians, no duplicated features), so its weights would not apply. "
            f"Supported: {sorted(_OFFICIAL_ENCODINGS)}")
    harmonics = hp.get("harmonics_calculation", "analytic")
    if le_type == "sphericalharmonics" and harmonics != "analytic":
        raise CheckpointError(
            f"{path}: harmonics_calculation={harmonics!r} is not supported; only 'analytic' (the released "
            f"models) matches the 'satclip' convention ('closed-form' has the Condon-Shortley phase and no "
            f"pi factor on m = 0)")
    network = hp.get("pe_type", "siren")
    if network not in _OFFICIAL_NETWORKS:
        raise CheckpointError(f"{path}: network pe_type={network!r} is not supported ({list(_OFFICIAL_NETWORKS)})")
    # The original's SIREN and FCNet always use dropout 0.5, its MLP none; FCNet has 4 blocks.
    dropout = {"siren": 0.5, "fcnet": 0.5}.get(network, 0.0)
    layers = 4 if network == "fcnet" else int(hp.get("num_hidden_layers", 2))
    try:
        return LocationEncoderConfig(
            encoding=_OFFICIAL_ENCODINGS[le_type], legendre_polys=int(hp.get("legendre_polys", 10)),
            sh_convention="satclip", network=network, hidden_dim=int(hp.get("capacity", 256)),
            num_hidden_layers=layers, dropout=dropout, embed_dim=int(hp.get("embed_dim", 256)),
            dtype="float64")
    except ValueError as err:
        raise CheckpointError(f"{path}: invalid hyper_parameters ({err})") from err


def _config_from_weights(weights: dict[str, Tensor], path: Path) -> LocationEncoderConfig:
    """Without hyper_parameters: the released architecture, sized by the SIREN weight shapes."""
    first, last = weights.get("nnet.layers.0.weight"), weights.get("nnet.last_layer.weight")
    if first is None or last is None:
        raise CheckpointError(f"{path}: no hyper_parameters and the weights are not a SIREN "
                              f"(no 'nnet.layers.0.weight'/'nnet.last_layer.weight'): cannot infer the architecture")
    L = math.isqrt(first.shape[1])
    if L * L != first.shape[1]:
        raise CheckpointError(f"{path}: first layer takes {first.shape[1]} features, not L^2 spherical harmonics")
    layers = len({k.split(".")[2] for k in weights if k.startswith("nnet.layers.")})
    return LocationEncoderConfig(**{**RELEASED_ARCHITECTURE, "legendre_polys": L, "hidden_dim": first.shape[0],
                                    "num_hidden_layers": layers, "embed_dim": last.shape[0], "dtype": "float64"})


def read_location_checkpoint(path: str | os.PathLike[str], *, weights_only: bool = True
                             ) -> tuple[LocationEncoderConfig, dict[str, Tensor], str]:
    """Read a checkpoint's location-encoder config and weights without building anything.

    Returns:
        (config, state dict with keys of ``LocationEncoder.state_dict()``, layout) where layout
        is ``"satclip-project"`` (ours), ``"official"`` or ``"weights-only"`` (shapes inferred).

    Raises:
        CheckpointError: a corrupt or unreadable file (see ``verify_checkpoint_file``), no
            location weights, non-finite weights or invalid hyper_parameters.
    """
    path = Path(path)
    obj = _torch_load(path, weights_only)
    weights = _location_weights(obj, path)
    _check_finite(weights, path)
    hp = obj.get("hyper_parameters") if isinstance(obj, dict) else None
    if isinstance(hp, dict) and isinstance(hp.get("location"), dict):
        try:
            return LocationEncoderConfig.from_dict(hp["location"]), weights, "satclip-project"
        except (TypeError, ValueError) as err:
            raise CheckpointError(f"{path}: invalid hyper_parameters['location'] ({err})") from err
    if isinstance(hp, dict) and ({"le_type", "legendre_polys", "pe_type"} & set(hp)):
        return _config_from_official(hp, path), weights, "official"
    return _config_from_weights(weights, path), weights, "weights-only"


def _check_shapes(encoder: nn.Module, weights: dict[str, Tensor], config: LocationEncoderConfig, path: Path) -> None:
    """Raise a CheckpointError naming the first differences between weights and architecture."""
    expected = {k: tuple(v.shape) for k, v in encoder.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in weights.items()}
    problems = [f"missing {k} {s}" for k, s in expected.items() if k not in found]
    problems += [f"unexpected {k} {s}" for k, s in found.items() if k not in expected]
    problems += [f"{k}: checkpoint {found[k]} vs architecture {s}" for k, s in expected.items()
                 if k in found and found[k] != s]
    if problems:
        shown = "; ".join(problems[:4]) + (f"; ... ({len(problems)} differences)" if len(problems) > 4 else "")
        raise CheckpointError(
            f"{path}: architecture mismatch between the weights and the described encoder "
            f"(encoding={config.encoding}, legendre_polys={config.legendre_polys}, network={config.network}, "
            f"hidden_dim={config.hidden_dim}, num_hidden_layers={config.num_hidden_layers}, "
            f"embed_dim={config.embed_dim}): {shown}")


def _as_dtype(dtype: str | torch.dtype | None, default: str) -> torch.dtype:
    if dtype is None:
        dtype = default
    if isinstance(dtype, torch.dtype):
        if dtype not in DTYPES.values():
            raise ValueError(f"dtype must be float32 or float64, got {dtype}")
        return dtype
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {list(DTYPES)}, got {dtype!r}")
    return DTYPES[dtype]


def load_location_encoder(path_or_name: str | os.PathLike[str], *, dtype: str | torch.dtype | None = None,
                          device: str | torch.device = "cpu", progress: bool = True,
                          weights_only: bool = True) -> nn.Module:
    """Load a pretrained location encoder, in eval mode.

    Args:
        path_or_name: a checkpoint path (official layout or ours), an official name such as
            ``satclip-resnet18-l10`` (downloaded and cached), or ``geoclip``.
        dtype: ``float32``/``float64``. Default: the config's dtype for our checkpoints, float32
            for official ones (the original ran in float64: pass ``"float64"`` to match it).
        device: where to put the encoder.
        progress: show a download progress bar.
        weights_only: refuse pickled Python objects (safe); False only for trusted files.

    Returns:
        An ``nn.Module`` mapping (N, 2) (lon, lat) degrees to (N, ``embedding_dim``).

    Raises:
        FileNotFoundError: no such file and not a known name.
        CheckpointError: unreadable file or an architecture mismatch.
        satclip.data.download.DownloadError: an official checkpoint could not be downloaded.
    """
    if os.fspath(path_or_name).lower() == GEOCLIP_NAME and not Path(path_or_name).exists():
        return load_geoclip(dtype=dtype or "float32", device=device)
    path = resolve_checkpoint(path_or_name, progress=progress)
    config, weights, layout = read_location_checkpoint(path, weights_only=weights_only)
    target = _as_dtype(dtype, config.dtype if layout == "satclip-project" else "float32")
    config = dataclasses.replace(config, dtype=str(target).removeprefix("torch."))
    encoder = LocationEncoder.from_config(config)
    _check_shapes(encoder, weights, config, path)
    try:
        encoder.load_state_dict({k: v.to(target) for k, v in weights.items()}, strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"{path}: weights do not fit the architecture ({err})") from err
    return encoder.to(device).eval()


# ---------------------------------------------------------------------------------------------
# GeoCLIP
# ---------------------------------------------------------------------------------------------

# Equal Earth projection (Savric, Patterson and Jenny 2018, Int. J. Geogr. Inf. Sci. 33):
# polynomial coefficients A1..A4 and M = sqrt(3) / 2.
_EE_A1, _EE_A2, _EE_A3, _EE_A4 = 1.340264, -0.081106, 0.000893, 0.003796
_EE_M = math.sqrt(3.0) / 2.0
# GeoCLIP scales the projection by SF / 180 (its location_encoder.py), which maps lon = +-180 to
# x = +-1; its random Fourier features use sigma = 2^0, 2^4, 2^8 with 256 frequencies each.
_GEOCLIP_SF = 66.50336
_GEOCLIP_SIGMAS = (2.0**0, 2.0**4, 2.0**8)
GEOCLIP_WEIGHTS = ("model", "weights", "location_encoder_weights.pth")


def equal_earth(lon: Tensor, lat: Tensor) -> Tensor:
    """Equal Earth projection of (lon, lat) degrees, scaled as GeoCLIP does: (N,) x2 -> (N, 2)."""
    theta = torch.asin(_EE_M * torch.sin(torch.deg2rad(lat)))
    t2 = theta * theta
    t6 = t2 * t2 * t2
    x = 2.0 * math.sqrt(3.0) * torch.deg2rad(lon) * torch.cos(theta) / (
        3.0 * (9.0 * _EE_A4 * t6 * t2 + 7.0 * _EE_A3 * t6 + 3.0 * _EE_A2 * t2 + _EE_A1))
    y = theta * (_EE_A4 * t6 * t2 + _EE_A3 * t6 + _EE_A2 * t2 + _EE_A1)
    return torch.stack([x, y], dim=1) * (_GEOCLIP_SF / 180.0)


class _GeoCLIPBranch(nn.Module):
    """Random Fourier features [cos 2 pi v B^T, sin 2 pi v B^T] -> 3 ReLU layers -> linear head."""

    def __init__(self, num_frequencies: int = 256, hidden: int = 1024, out_dim: int = 512) -> None:
        super().__init__()
        self.register_buffer("rff", torch.zeros(num_frequencies, 2))  # B, (F, 2)
        self.mlp = nn.Sequential(nn.Linear(2 * num_frequencies, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                 nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, out_dim)

    def forward(self, v: Tensor) -> Tensor:
        proj = 2.0 * math.pi * (v @ self.rff.T)  # (N, F)
        return self.head(self.mlp(torch.cat([torch.cos(proj), torch.sin(proj)], dim=1)))


class GeoCLIPLocationEncoder(nn.Module):
    """GeoCLIP's location encoder: (N, 2) (lon, lat) degrees -> (N, 512).

    Equal Earth projection, then three random-Fourier-feature branches (sigma 1, 16, 256), summed.
    GeoCLIP itself takes (lat, lon); this module takes (lon, lat) like the rest of the package.
    """

    embedding_dim = 512

    def __init__(self) -> None:
        super().__init__()
        self.branches = nn.ModuleList(_GeoCLIPBranch() for _ in _GEOCLIP_SIGMAS)

    @property
    def dtype(self) -> torch.dtype:
        """The weights' dtype (inputs are cast to it)."""
        return self.branches[0].head.weight.dtype

    def forward(self, coords: Tensor) -> Tensor:
        """(N, 2) (lon, lat) degrees -> (N, 512) embeddings."""
        coords = coords.to(self.dtype)
        v = equal_earth(coords[:, 0], coords[:, 1])  # (N, 2) projected (x, y)
        out = self.branches[0](v)
        for branch in self.branches[1:]:
            out = out + branch(v)
        return out


def geoclip_weights_path() -> Path:
    """Path of ``location_encoder_weights.pth`` inside the installed ``geoclip`` package (not imported).

    Raises:
        FileNotFoundError: geoclip is not installed or lacks the weights file.
    """
    spec = importlib.util.find_spec(GEOCLIP_NAME)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for root in locations:
        path = Path(root).joinpath(*GEOCLIP_WEIGHTS)
        if path.is_file():
            return path
    raise FileNotFoundError("GeoCLIP weights not found: install the geoclip==1.3.0 wheel "
                            "(pip install --no-deps geoclip==1.3.0; only its weight file is used)")


# GeoCLIP's keys -> ours: LocEnc{i}.capsule.0.b, capsule.{1,3,5}.*, head.0.*
_GEOCLIP_KEY = re.compile(r"^LocEnc(\d+)\.(capsule\.0\.b|capsule\.(\d)\.(weight|bias)|head\.0\.(weight|bias))$")


def _geoclip_key(key: str, path: Path) -> str:
    match = _GEOCLIP_KEY.match(key)
    if match is None:
        raise CheckpointError(f"{path}: unexpected key {key!r} in the GeoCLIP weights")
    branch, part, layer, p1, p2 = match.groups()
    if part == "capsule.0.b":
        return f"branches.{branch}.rff"
    if layer is not None:
        return f"branches.{branch}.mlp.{int(layer) - 1}.{p1}"
    return f"branches.{branch}.head.{p2}"


def load_geoclip(*, dtype: str | torch.dtype | None = "float32", device: str | torch.device = "cpu",
                 weights: str | os.PathLike[str] | None = None) -> GeoCLIPLocationEncoder:
    """GeoCLIP's pretrained location encoder (eval mode), weights from the geoclip wheel or ``weights``.

    Raises:
        FileNotFoundError: geoclip is not installed and ``weights`` is not given.
        CheckpointError: a corrupt or unreadable weights file, unexpected or misshapen tensors,
            or non-finite weights.
    """
    path = Path(weights) if weights is not None else geoclip_weights_path()
    state = _torch_load(path, weights_only=True)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a state dict")
    _check_finite(state, path)
    model = GeoCLIPLocationEncoder()
    mapped = {_geoclip_key(k, path): v for k, v in state.items()}
    try:
        model.load_state_dict(mapped, strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"{path}: GeoCLIP weights do not fit the architecture ({err})") from err
    return model.to(device=device, dtype=_as_dtype(dtype, "float32")).eval()
