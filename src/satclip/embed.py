"""Location embeddings for a table of points (the library side of ``satclip embed``).

``embed_file(encoder, input, output)`` streams a CSV or Parquet file of points through an
encoder in batches and writes a Parquet file that keeps the input columns and adds
``emb_0`` ... ``emb_{d-1}`` (float32). The output is written under a temporary name and renamed
at the end, so a failure never leaves a partial file. The Parquet key-value metadata ``satclip``
holds a JSON record of the encoder, its checkpoint sha256 and the package version.

Encoders are named by ``resolve_encoder`` specs: a checkpoint path (official layout or ours), an
official name (``satclip-resnet18-l10`` ...), ``geoclip``, or a coordinate baseline: ``raw``
(lon, lat degrees), ``direct``, ``cartesian3d``, ``wrap``, ``sh:L`` or ``sh:L:orthonormal``
(spherical-harmonic features without a network).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import torch
from torch import Tensor, nn
from tqdm import tqdm

import satclip
from satclip.data.download import sha256sum
from satclip.encoders.location import DTYPES
from satclip.encoders.positional import SH_CONVENTIONS, SphericalHarmonics, build_positional_encoding
from satclip.encoders.pretrained import (
    GEOCLIP_NAME,
    OFFICIAL_CHECKPOINTS,
    geoclip_weights_path,
    load_location_encoder,
    resolve_checkpoint,
)

__all__ = [
    "EmbedError",
    "ResolvedEncoder",
    "EmbedSummary",
    "LON_NAMES",
    "LAT_NAMES",
    "BASELINES",
    "METADATA_KEY",
    "resolve_encoder",
    "find_coordinate_columns",
    "embed_coordinates",
    "embed_file",
    "read_metadata",
]

LON_NAMES = ("lon", "longitude")
LAT_NAMES = ("lat", "latitude")
BASELINES = ("raw", "direct", "cartesian3d", "wrap", "sh:L", "sh:L:orthonormal")
METADATA_KEY = b"satclip"
EMB_PREFIX = "emb_"
MAX_SHOWN = 5  # offending rows quoted in an error message
CSV_BLOCK_SIZE = 16 << 20  # bytes of CSV parsed at a time (pyarrow infers column types from the first)
_SH_SPEC = re.compile(r"^sh:(\d+)(?::(\w+))?$")


class EmbedError(ValueError):
    """Bad input to ``embed_file``: the message names the problem (and the first bad rows)."""


class _Baseline(nn.Module):
    """A parameter-free coordinate encoding evaluated in a fixed dtype (``None``: raw lon, lat)."""

    def __init__(self, encoding: nn.Module | None, dtype: torch.dtype) -> None:
        super().__init__()
        self.encoding = encoding
        self.dtype = dtype
        self.embedding_dim = 2 if encoding is None else int(encoding.embedding_dim)

    def forward(self, coords: Tensor) -> Tensor:
        coords = coords.to(self.dtype)
        return coords if self.encoding is None else self.encoding(coords)


@dataclass
class ResolvedEncoder:
    """An encoder ready to run and a description of where it came from."""

    module: nn.Module
    embedding_dim: int
    metadata: dict[str, Any]


@dataclass
class EmbedSummary:
    """What ``embed_file`` did."""

    output: Path
    rows_read: int
    rows_written: int
    rows_dropped: int
    embedding_dim: int
    metadata: dict[str, Any] = field(default_factory=dict)


def _baseline(spec: str, dtype: torch.dtype) -> nn.Module | None:
    if spec == "raw":
        return _Baseline(None, dtype)
    if spec in ("direct", "cartesian3d", "wrap"):
        return _Baseline(build_positional_encoding(spec), dtype)
    match = _SH_SPEC.match(spec)
    if match is None:
        if spec.startswith("sh:"):
            raise EmbedError(f"bad encoder {spec!r}: expected sh:L or sh:L:<convention>")
        return None
    L, convention = int(match.group(1)), match.group(2) or "satclip"
    if not 1 <= L <= 200 or convention not in SH_CONVENTIONS:
        raise EmbedError(f"bad encoder {spec!r}: expected sh:L with 1 <= L <= 200, optionally "
                         f"sh:L:<convention> with a convention in {SH_CONVENTIONS}")
    return _Baseline(SphericalHarmonics(L, convention), dtype)


def resolve_encoder(spec: str, *, dtype: str = "float32", device: str = "cpu", progress: bool = True) -> ResolvedEncoder:
    """Build the encoder named by ``spec`` (see the module docstring), in eval mode on ``device``.

    Raises:
        EmbedError: a malformed baseline spec or an unknown dtype.
        FileNotFoundError, CheckpointError, DownloadError: from loading a checkpoint.
    """
    if dtype not in DTYPES:
        raise EmbedError(f"dtype must be one of {list(DTYPES)}, got {dtype!r}")
    meta: dict[str, Any] = {"encoder": spec, "dtype": dtype, "satclip_version": satclip.__version__,
                            "torch_version": torch.__version__}
    is_file = Path(spec).exists()  # a file wins over a name that looks like a spec
    baseline = None if is_file else _baseline(spec.lower(), DTYPES[dtype])
    if baseline is not None:
        module = baseline
        meta.update(kind="baseline", checkpoint=None, checkpoint_sha256=None)
    elif not is_file and spec.lower() == GEOCLIP_NAME:
        module = load_location_encoder(GEOCLIP_NAME, dtype=dtype, device=device)
        path = geoclip_weights_path()
        meta.update(kind="geoclip", checkpoint=str(path), checkpoint_sha256=sha256sum(path))
    else:
        path = resolve_checkpoint(spec, progress=progress)
        module = load_location_encoder(path, dtype=dtype, device=device)
        kind = "official" if not is_file and spec.lower() in OFFICIAL_CHECKPOINTS else "checkpoint"
        meta.update(kind=kind, checkpoint=str(path), checkpoint_sha256=sha256sum(path))
        config = getattr(module, "config", None)
        if config is not None:
            meta["location_config"] = dataclasses.asdict(config)
    dim = int(module.embedding_dim)
    meta["embedding_dim"] = dim
    return ResolvedEncoder(module.to(device).eval(), dim, meta)


def find_coordinate_columns(columns: list[str]) -> tuple[str, str]:
    """The (longitude, latitude) column names among ``columns`` (lon/longitude, lat/latitude, any case).

    Raises:
        EmbedError: a coordinate column is missing or ambiguous.
    """
    found = []
    for names, what in ((LON_NAMES, "longitude"), (LAT_NAMES, "latitude")):
        matches = [c for c in columns if c.strip().lower() in names]
        if not matches:
            raise EmbedError(f"no {what} column: expected one of {', '.join(names)} (any case); "
                             f"the input has columns {columns}")
        if len(matches) > 1:
            raise EmbedError(f"ambiguous {what} columns {matches}: keep exactly one of {', '.join(names)}")
        found.append(matches[0])
    return found[0], found[1]


def _device(device: str) -> torch.device:
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise EmbedError(f"bad device {device!r} ({err})") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise EmbedError(f"device {device!r} requested but CUDA is not available")
    return dev


@torch.inference_mode()
def embed_coordinates(encoder: nn.Module, lonlat: np.ndarray | Tensor, *, batch_size: int = 65536,
                      device: str | torch.device | None = None) -> np.ndarray:
    """Embeddings of (N, 2) (lon, lat) degrees as an (N, d) float32 array, in batches.

    ``device`` defaults to the encoder's. Coordinates are not validated here (``embed_file`` does).
    """
    # np.array copies: a read-only input (a parquet column) must not back a torch tensor
    coords = torch.as_tensor(np.array(lonlat, dtype=np.float64) if not isinstance(lonlat, Tensor) else lonlat)
    if coords.ndim != 2 or coords.shape[1] != 2:
        raise ValueError(f"expected (N, 2) coordinates, got shape {tuple(coords.shape)}")
    if device is None:
        param = next(encoder.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
    parts = [encoder(coords[i : i + batch_size].to(device)).float().cpu().numpy()
             for i in range(0, coords.shape[0], batch_size)]
    dim = int(getattr(encoder, "embedding_dim", parts[0].shape[1] if parts else 0))
    return np.concatenate(parts) if parts else np.zeros((0, dim), dtype=np.float32)


# ---------------------------------------------------------------------------------------------
# Reading tables in batches
# ---------------------------------------------------------------------------------------------


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in (".parquet", ".pq")


def _csv_options(path: Path) -> pa_csv.ParseOptions:
    delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    return pa_csv.ParseOptions(delimiter=delimiter)


def _read_columns(path: Path) -> list[str]:
    try:
        if _is_parquet(path):
            return list(pq.ParquetFile(path).schema_arrow.names)
        with pa_csv.open_csv(path, parse_options=_csv_options(path)) as reader:
            return list(reader.schema.names)
    except (pa.ArrowException, OSError) as err:
        raise EmbedError(f"cannot read {path}: {err}") from err


class _ColumnTypeChanged(Exception):
    """A CSV column's values stop fitting the type pyarrow inferred from the first block."""

    def __init__(self, column: str) -> None:
        super().__init__(column)
        self.column = column


_CONVERSION_ERROR = re.compile(r"In CSV column #(\d+): CSV conversion error")


def _batches(path: Path, coord_cols: tuple[str, str], batch_size: int,
             text_cols: frozenset[str] = frozenset()) -> Iterator[pa.RecordBatch]:
    """Record batches of at most ``batch_size`` rows.

    CSV: coordinates and ``text_cols`` are read as text (coordinates are parsed later); the other
    columns get the types pyarrow infers from the first block. A later value that does not fit its
    column's type raises ``_ColumnTypeChanged`` naming the column (``embed_file`` then starts
    over with that column as text).
    """
    names: list[str] = []
    try:
        if _is_parquet(path):
            yield from pq.ParquetFile(path).iter_batches(batch_size=batch_size)
            return
        convert = pa_csv.ConvertOptions(column_types={c: pa.string() for c in (*coord_cols, *text_cols)})
        read = pa_csv.ReadOptions(block_size=CSV_BLOCK_SIZE)
        with pa_csv.open_csv(path, read_options=read, parse_options=_csv_options(path),
                             convert_options=convert) as reader:
            names = list(reader.schema.names)
            for batch in reader:
                for start in range(0, batch.num_rows, batch_size):
                    yield batch.slice(start, batch_size)
    except (pa.ArrowException, OSError) as err:
        match = _CONVERSION_ERROR.search(str(err))
        if match and int(match.group(1)) < len(names) and names[int(match.group(1))] not in text_cols:
            raise _ColumnTypeChanged(names[int(match.group(1))]) from err
        raise EmbedError(f"cannot read {path}: {err}") from err


def _parse_coordinate(column: pa.Array) -> tuple[np.ndarray, pd.Series]:
    """float64 values (NaN where missing or not a number) and the raw values for messages."""
    raw = column.to_pandas()
    try:  # fast path: every value parses
        values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return np.asarray(values, dtype=np.float64), raw


def _problems(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Boolean mask of invalid rows and (row offset, reason) for the first ``MAX_SHOWN``."""
    with np.errstate(invalid="ignore"):
        lon_nan, lat_nan = ~np.isfinite(lon), ~np.isfinite(lat)
        lon_out = ~lon_nan & (np.abs(lon) > 180.0)
        lat_out = ~lat_nan & (np.abs(lat) > 90.0)
    bad = lon_nan | lat_nan | lon_out | lat_out
    reasons = []
    for i in np.flatnonzero(bad)[:MAX_SHOWN]:
        why = []
        if lon_nan[i]:
            why.append("longitude missing, infinite or not a number")
        if lat_nan[i]:
            why.append("latitude missing, infinite or not a number")
        if lon_out[i]:
            why.append("longitude outside [-180, 180]")
        if lat_out[i]:
            why.append("latitude outside [-90, 90]")
        reasons.append((int(i), "; ".join(why)))
    return bad, reasons


def _describe(rows: list[tuple[int, str]], offset: int, raw_lon: pd.Series, raw_lat: pd.Series,
              cols: tuple[str, str]) -> str:
    lines = [f"  row {offset + i}: {cols[0]}={raw_lon.iloc[i]!r}, {cols[1]}={raw_lat.iloc[i]!r}: {why}"
             for i, why in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# embed_file
# ---------------------------------------------------------------------------------------------


def _embedding_batch(batch: pa.RecordBatch, emb: np.ndarray) -> pa.RecordBatch:
    columns = list(batch.columns) + [pa.array(col) for col in np.ascontiguousarray(emb.T)]
    names = list(batch.schema.names) + [f"{EMB_PREFIX}{i}" for i in range(emb.shape[1])]
    return pa.RecordBatch.from_arrays(columns, names=names)


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``satclip`` metadata record of an ``embed_file`` output.

    The record holds the encoder, its checkpoint sha256, the package version, the coordinate
    columns and the rows written and dropped. The same record without the row counts is also in
    the Arrow schema's metadata.
    """
    raw = (pq.read_metadata(path).metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise EmbedError(f"{path}: no satclip metadata (not written by satclip embed)")
    return json.loads(raw)


def embed_file(encoder: str | ResolvedEncoder, input_path: str | os.PathLike[str], output_path: str | os.PathLike[str],
               *, batch_size: int = 65536, device: str = "cpu", dtype: str = "float32", drop_invalid: bool = False,
               progress: bool | None = None) -> EmbedSummary:
    """Embed every point of a CSV/Parquet file and write a Parquet file (see the module docstring).

    The input columns are copied to the output. Parquet columns keep their types. CSV columns
    other than the coordinates keep the type pyarrow infers from the first block (16 MiB) when
    every later value fits it; a column whose later values do not fit (an integer ``id`` that
    turns to text after row 900k) is passed through as text, all of it: the file is then read
    again from the start. Every embedding must be finite, else nothing is written.

    Args:
        encoder: a ``resolve_encoder`` spec or an already resolved encoder.
        input_path: CSV (``.csv``, ``.csv.gz``, ``.tsv``) or Parquet (``.parquet``) with longitude
            and latitude columns (``lon``/``longitude``, ``lat``/``latitude``, any case).
        output_path: Parquet file to write (replaced atomically).
        batch_size: points per encoder call (memory use is about batch_size * (d + 2) * 8 bytes).
        device: ``cpu`` or ``cuda``.
        dtype: encoder dtype, ``float32`` or ``float64`` (embeddings are stored as float32).
        drop_invalid: drop rows with missing, non-numeric or out-of-range coordinates (and count
            them) instead of failing.
        progress: show a progress bar (None: only on a terminal).

    Raises:
        EmbedError: bad input (message names the problem and the first offending rows), or the
            encoder produced a NaN or infinite embedding (message names the encoder and the row).
        FileNotFoundError, CheckpointError, DownloadError: the encoder cannot be loaded.
    """
    src, dest = Path(input_path), Path(output_path)
    if batch_size < 1:
        raise EmbedError(f"batch size must be >= 1, got {batch_size}")
    if not src.is_file():
        raise EmbedError(f"input file {src} not found")
    if dest.exists() and dest.resolve() == src.resolve():
        raise EmbedError(f"output {dest} would overwrite the input")
    dev = _device(device)
    columns = _read_columns(src)
    cols = find_coordinate_columns(columns)
    clashing = [c for c in columns if re.fullmatch(rf"{EMB_PREFIX}\d+", c)]
    if clashing:
        raise EmbedError(f"the input already has embedding-like columns {clashing[:3]}: rename them")
    resolved = encoder if isinstance(encoder, ResolvedEncoder) else resolve_encoder(
        encoder, dtype=dtype, device=device, progress=progress is not False)
    total = pq.ParquetFile(src).metadata.num_rows if _is_parquet(src) else None

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    meta = dict(resolved.metadata, coordinate_columns=list(cols), input=src.name)
    text_cols: frozenset[str] = frozenset()
    try:
        while True:
            try:
                with tqdm(total=total, unit="pt", unit_scale=True, desc="embed",
                          disable=None if progress is None else not progress) as bar:
                    counts = _write_embeddings(resolved, src, tmp, cols, meta, bar, batch_size=batch_size,
                                               device=dev, drop_invalid=drop_invalid, text_cols=text_cols)
                break
            except _ColumnTypeChanged as changed:  # read everything again, that column as text
                text_cols |= {changed.column}
        os.replace(tmp, dest)
    except pa.ArrowException as err:
        raise EmbedError(f"cannot process {src}: {err}") from err
    finally:
        tmp.unlink(missing_ok=True)
    return EmbedSummary(dest, *counts, resolved.embedding_dim, meta)


def _write_embeddings(resolved: ResolvedEncoder, src: Path, tmp: Path, cols: tuple[str, str], meta: dict[str, Any],
                      bar: tqdm, *, batch_size: int, device: torch.device, drop_invalid: bool,
                      text_cols: frozenset[str]) -> tuple[int, int, int]:
    """One pass of ``embed_file`` over ``src`` into the Parquet file ``tmp``: (read, written, dropped) rows."""
    writer: pq.ParquetWriter | None = None
    rows_read = rows_written = rows_dropped = 0
    try:
        for batch in _batches(src, cols, batch_size, text_cols):
            lon, raw_lon = _parse_coordinate(batch.column(cols[0]))
            lat, raw_lat = _parse_coordinate(batch.column(cols[1]))
            bad, reasons = _problems(lon, lat)
            n_bad = int(bad.sum())
            if n_bad and not drop_invalid:
                raise EmbedError(
                    f"{src}: {n_bad} invalid coordinate{'s' if n_bad > 1 else ''} among rows {rows_read}-"
                    f"{rows_read + batch.num_rows - 1} (rows count from 0, header excluded); first offending rows:\n"
                    f"{_describe(reasons, rows_read, raw_lon, raw_lat, cols)}\n"
                    f"Fix them, or pass --drop-invalid to skip invalid rows.")
            for i, name in enumerate(batch.schema.names):  # coordinates as parsed numbers
                if name in cols and not pa.types.is_floating(batch.column(i).type):
                    batch = batch.set_column(i, name, pa.array(lon if name == cols[0] else lat))
            rows = rows_read + np.flatnonzero(~bad)  # (n_kept,) input row numbers of the kept rows
            if n_bad:
                keep = ~bad
                batch, lon, lat = batch.filter(pa.array(keep)), lon[keep], lat[keep]
            rows_read += len(bad)
            rows_dropped += n_bad
            if batch.num_rows:
                emb = embed_coordinates(resolved.module, np.stack([lon, lat], axis=1), batch_size=batch_size,
                                        device=device)  # (n_kept, d)
                _check_finite(emb, rows, lon, lat, resolved, cols)
                out = _embedding_batch(batch, emb)
                if writer is None:  # provenance in the schema; row counts added at the end
                    schema = out.schema
                    writer = pq.ParquetWriter(  # dictionary pages only pay off for the input columns
                        tmp, schema.with_metadata({METADATA_KEY: json.dumps(meta)}),
                        use_dictionary=list(batch.schema.names))
                writer.write_batch(out if out.schema.equals(schema) else out.cast(schema))
                rows_written += out.num_rows
            bar.update(len(bad))
        if rows_read == 0:
            raise EmbedError(f"{src}: no rows")
        if writer is None:
            raise EmbedError(f"{src}: all {rows_read} rows have invalid coordinates")
        meta.update(rows=rows_written, dropped_rows=rows_dropped)
        writer.add_key_value_metadata({METADATA_KEY: json.dumps(meta)})
        writer.close()
        writer = None
    finally:
        if writer is not None:
            writer.close()
    return rows_read, rows_written, rows_dropped


def _check_finite(emb: np.ndarray, rows: np.ndarray, lon: np.ndarray, lat: np.ndarray, resolved: ResolvedEncoder,
                  cols: tuple[str, str]) -> None:
    """Raise an EmbedError naming the encoder and the first input row whose embedding is not finite."""
    finite = np.isfinite(emb).all(axis=1)  # (n,)
    if finite.all():
        return
    bad = np.flatnonzero(~finite)
    i = int(bad[0])
    raise EmbedError(
        f"encoder {resolved.metadata.get('encoder', '?')!r} produced non-finite embeddings (NaN or infinite) for "
        f"{len(bad)} of {len(finite)} points in this batch; first at row {int(rows[i])} ({cols[0]}={float(lon[i])!r}, "
        f"{cols[1]}={float(lat[i])!r}); nothing was written")
