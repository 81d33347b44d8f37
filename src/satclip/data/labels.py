"""Downstream label tables: one builder per task.

Every table has ``lon, lat`` (degrees), ``target`` (the value a probe predicts), ``continent``
(for the continent split) and task-specific metadata columns. Builders take the raw files
through ``satclip.data.sources.fetch`` so they work from the mirror or the network alike.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from satclip.data.sampling import cell_area_km2, check_lonlat, is_land
from satclip.data.sources import fetch, fetch_shapefile
from satclip.io import atomic_path


class LabelError(ValueError):
    """A raw label file is malformed or a table came out unusable."""


@dataclass(frozen=True)
class TaskSpec:
    """What a downstream task predicts."""

    name: str
    kind: Literal["regression", "classification"]
    target: str  # the source column copied into ``target``
    unit: str
    description: str
    uses_land_points: bool  # labelled at the shared land sample (else at its own points)


TASKS: dict[str, TaskSpec] = {t.name: t for t in [
    # Population density and biomes are the headline tasks: listed first everywhere.
    TaskSpec("population", "regression", "log_density", "log(1 + persons/km^2)",
             "GPWv4.11 2000 population count (15 arc-min) / land area of the cell", True),
    TaskSpec("biomes", "classification", "BIOME_NAME", "class",
             "RESOLVE Ecoregions 2017 biome (14 classes, rock and ice dropped)", True),
    TaskSpec("air_temperature", "regression", "meanT", "deg C",
             "mean annual air temperature at 3,076 stations (Hooker et al. 2018)", False),
    TaskSpec("elevation", "regression", "elevation_m", "m",
             "ETOPO5-derived relief at 20 arc-min, bilinear", True),
    TaskSpec("countries", "classification", "name", "class",
             "Natural Earth 1:110m admin-0 country (point in polygon)", True),
    TaskSpec("ecoregions", "classification", "ECO_NAME", "class",
             "RESOLVE Ecoregions 2017 ecoregion (rock and ice dropped)", True),
    TaskSpec("california_housing", "regression", "median_house_value", "USD",
             "median house value of 20,640 California block groups (Pace & Barry 1997), raw", False),
]}

# Ecoregions2017 labels rock and ice "N/A" (BIOME_NUM 98/99 style nodata): the paper drops nodata.
_NODATA_BIOME = {"N/A", "", None}
_NODATA_ECO = {"Rock and Ice", "N/A", "", None}


# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------

def _read_vector(stem: str, raw_dir: Path | None, mirror: str | None):
    import geopandas as gpd

    shp = fetch_shapefile(stem, raw_dir, mirror=mirror)
    try:
        return gpd.read_file(shp)
    except Exception as err:  # pyogrio raises its own DataSourceError family
        raise LabelError(f"{shp}: cannot read shapefile ({err})") from err


def _points_gdf(df: pd.DataFrame):
    import geopandas as gpd

    return gpd.GeoDataFrame(df[["lon", "lat"]].copy(),
                            geometry=gpd.points_from_xy(df["lon"], df["lat"]), crs="EPSG:4326")


def _join_polygons(df: pd.DataFrame, polygons, columns: list[str], nearest: bool) -> pd.DataFrame:
    """Attach polygon attributes to points (first match when polygons overlap).

    With ``nearest``, points outside every polygon take the nearest polygon's attributes (small
    islands missing from a 1:110m map); otherwise their attributes are NaN.
    """
    import geopandas as gpd

    pts = _points_gdf(df)
    joined = gpd.sjoin(pts, polygons[columns + ["geometry"]], how="left", predicate="within")
    joined = joined[~joined.index.duplicated(keep="first")]
    out = df.copy()
    for col in columns:
        out[col] = joined[col].reindex(df.index).to_numpy()
    if nearest:
        missing = out[columns[0]].isna().to_numpy()
        if missing.any():
            with warnings.catch_warnings():  # distances in degrees are fine for a tie-break
                warnings.simplefilter("ignore", UserWarning)
                near = gpd.sjoin_nearest(pts[missing], polygons[columns + ["geometry"]], how="left")
            near = near[~near.index.duplicated(keep="first")]
            for col in columns:
                out.loc[missing, col] = near[col].reindex(out.index[missing]).to_numpy()
    return out


def countries_frame(raw_dir: Path | None = None, mirror: str | None = None):
    """Natural Earth admin-0 polygons (GeoDataFrame, EPSG:4326)."""
    return _read_vector("naturalearth_lowres", raw_dir, mirror)


def add_continent(df: pd.DataFrame, countries) -> pd.DataFrame:
    """Add a ``continent`` column from Natural Earth (nearest country for points off the map)."""
    return _join_polygons(df, countries, ["continent"], nearest=True)


def _finish(df: pd.DataFrame, spec: TaskSpec) -> pd.DataFrame:
    if df.empty:
        raise LabelError(f"task {spec.name}: the label table is empty after filtering")
    df = df.copy()
    df["target"] = df[spec.target]
    first = ["lon", "lat", "target", "continent"]
    return df[first + [c for c in df.columns if c not in first]].reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------

def build_air_temperature(raw_dir: Path | None, mirror: str | None, points: pd.DataFrame,
                          countries) -> pd.DataFrame:
    """The 3,076 stations of Hooker et al. (2018): target ``meanT`` (deg C); keeps ``meanP``."""
    path = fetch("air_temperature", raw_dir, mirror=mirror, progress=False)
    table = pd.read_csv(path)
    need = {"Lon", "Lat", "meanT", "meanP"}
    if not need <= set(table.columns):
        raise LabelError(f"{path}: missing columns {sorted(need - set(table.columns))}")
    df = pd.DataFrame({"lon": table["Lon"].astype(float), "lat": table["Lat"].astype(float),
                       "meanT": table["meanT"].astype(float), "meanP": table["meanP"].astype(float)})
    check_lonlat(df["lon"], df["lat"], str(path))
    df = df.dropna(subset=["meanT"])
    return _finish(add_continent(df, countries), TASKS["air_temperature"])


def sample_etopo(lon: np.ndarray, lat: np.ndarray, path: Path) -> np.ndarray:
    """Bilinear sample of ETOPO relief (m) at (lon, lat); the netCDF lon axis is modulo 360."""
    from scipy.io import netcdf_file

    try:
        with netcdf_file(path, "r", mmap=False) as f:
            names = list(f.variables)
            if "ROSE" not in names:
                raise LabelError(f"{path}: no variable ROSE (has {names})")
            dims = f.variables["ROSE"].dimensions
            z = np.asarray(f.variables["ROSE"][:], dtype=np.float64)  # (n_lat, n_lon)
            ys = np.asarray(f.variables[dims[0]][:], dtype=np.float64)
            xs = np.asarray(f.variables[dims[1]][:], dtype=np.float64)
    except (OSError, TypeError, ValueError) as err:
        if isinstance(err, LabelError):
            raise
        raise LabelError(f"{path}: cannot read netCDF ({err})") from err
    dx, dy = xs[1] - xs[0], ys[1] - ys[0]
    fx = np.mod(np.asarray(lon) - xs[0], 360.0) / dx
    fy = np.clip((np.asarray(lat) - ys[0]) / dy, 0.0, len(ys) - 1.0)
    ncol = int(round(360.0 / dx))  # columns per full turn; the axis repeats the first column
    x0 = np.floor(fx).astype(int)
    y0 = np.minimum(np.floor(fy).astype(int), len(ys) - 2)
    tx, ty = fx - x0, fy - y0
    x1 = (x0 + 1) % ncol
    x0 = x0 % ncol
    return ((1 - ty) * ((1 - tx) * z[y0, x0] + tx * z[y0, x1])
            + ty * ((1 - tx) * z[y0 + 1, x0] + tx * z[y0 + 1, x1]))


def build_elevation(raw_dir: Path | None, mirror: str | None, points: pd.DataFrame,
                    countries) -> pd.DataFrame:
    """Land points labelled with ETOPO relief at 20 arc-min (bilinear), metres."""
    path = fetch("etopo20", raw_dir, mirror=mirror, progress=False)
    df = points.copy()
    df["elevation_m"] = sample_etopo(df["lon"].to_numpy(), df["lat"].to_numpy(), path)
    return _finish(df, TASKS["elevation"])


def land_fraction(lon0: np.ndarray, lat0: np.ndarray, size_deg: float, k: int = 8) -> np.ndarray:
    """Share of land (1 km mask) in cells with south-west corner (lon0, lat0): k x k subsamples."""
    offsets = (np.arange(k) + 0.5) / k * size_deg  # (k,)
    sub_lon = lon0[:, None, None] + offsets[None, None, :]  # (n, 1, k)
    sub_lat = lat0[:, None, None] + offsets[None, :, None]  # (n, k, 1)
    sub_lon, sub_lat = np.broadcast_arrays(sub_lon, sub_lat)  # (n, k, k)
    land = is_land(sub_lon.reshape(-1), sub_lat.reshape(-1)).reshape(len(lon0), k * k)
    return land.mean(axis=1)


def build_population(raw_dir: Path | None, mirror: str | None, points: pd.DataFrame,
                     countries) -> pd.DataFrame:
    """Land points labelled with log(1 + persons / km^2 of land) from GPWv4.11 (2000, 15').

    Density = cell count / (spherical cell area x land fraction of the cell from the 1 km mask).
    Points on GPW nodata (Antarctica, cells GPW counts as water) are dropped.
    """
    import rasterio

    path = fetch("gpw_15_min", raw_dir, mirror=mirror, progress=False)
    try:
        with rasterio.open(path) as src:
            counts = src.read(1).astype(np.float64)  # (rows, cols)
            transform, nodata = src.transform, src.nodata
    except rasterio.errors.RasterioIOError as err:
        raise LabelError(f"{path}: cannot read GeoTIFF ({err})") from err
    res, left, top = transform.a, transform.c, transform.f
    lon, lat = points["lon"].to_numpy(), points["lat"].to_numpy()
    col = np.clip(np.floor((lon - left) / res).astype(int), 0, counts.shape[1] - 1)
    row = np.clip(np.floor((top - lat) / -transform.e).astype(int), 0, counts.shape[0] - 1)
    count = counts[row, col]
    valid = np.isfinite(count) & (count >= 0)
    if nodata is not None:
        valid &= count > nodata / 10  # nodata is -3.4e38
    cell_lon0 = left + col * res
    cell_lat_n = top - row * res
    cell_lat_s = cell_lat_n - res
    frac = land_fraction(cell_lon0, cell_lat_s, res)
    frac = np.maximum(frac, 1.0 / 64)  # the point itself is land: at least one subsample's worth
    area = cell_area_km2(cell_lat_s, cell_lat_n, res) * frac
    df = points[valid].copy()
    df["population_count"] = count[valid]
    df["land_area_km2"] = area[valid]
    df["density"] = count[valid] / area[valid]
    df["log_density"] = np.log1p(df["density"])
    return _finish(df, TASKS["population"])


def build_countries(raw_dir: Path | None, mirror: str | None, points: pd.DataFrame,
                    countries) -> pd.DataFrame:
    """Land points labelled by the Natural Earth country they fall in (others dropped)."""
    df = _join_polygons(points, countries, ["name", "iso_a3", "continent"], nearest=False)
    df = df.dropna(subset=["name"])
    return _finish(df, TASKS["countries"])


def _ecoregion_table(raw_dir, mirror, points, countries, min_class_count: int) -> pd.DataFrame:
    eco = _read_vector("Ecoregions2017", raw_dir, mirror)
    need = {"ECO_NAME", "BIOME_NAME", "BIOME_NUM", "ECO_ID", "REALM"}
    if not need <= set(eco.columns):
        raise LabelError(f"Ecoregions2017: missing columns {sorted(need - set(eco.columns))}")
    df = _join_polygons(points, eco, ["ECO_NAME", "BIOME_NAME", "BIOME_NUM", "ECO_ID", "REALM"],
                        nearest=False)
    df = df.dropna(subset=["ECO_NAME"])
    df = df[~df["BIOME_NAME"].isin(_NODATA_BIOME) & ~df["ECO_NAME"].isin(_NODATA_ECO)]
    return add_continent(df, countries)


def build_biomes(raw_dir, mirror, points, countries) -> pd.DataFrame:
    """Land points labelled with their RESOLVE 2017 biome (rock and ice dropped)."""
    return _finish(_ecoregion_table(raw_dir, mirror, points, countries, 1), TASKS["biomes"])


def build_ecoregions(raw_dir, mirror, points, countries, min_class_count: int = 1) -> pd.DataFrame:
    """Land points labelled with their RESOLVE 2017 ecoregion; rare classes dropped."""
    df = _ecoregion_table(raw_dir, mirror, points, countries, min_class_count)
    counts = df["ECO_NAME"].value_counts()
    df = df[df["ECO_NAME"].map(counts) >= min_class_count]
    return _finish(df, TASKS["ecoregions"])


_CAL_COLUMNS = ["lon", "lat", "housing_median_age", "total_rooms", "total_bedrooms", "population",
                "households", "median_income", "median_house_value"]


def build_california_housing(raw_dir, mirror, points, countries) -> pd.DataFrame:
    """All 20,640 block groups; target ``median_house_value`` in USD (raw, not logged)."""
    path = fetch("cal_housing", raw_dir, mirror=mirror, progress=False)
    df = pd.read_csv(path, header=None)
    if df.shape[1] != len(_CAL_COLUMNS):
        raise LabelError(f"{path}: expected {len(_CAL_COLUMNS)} columns, found {df.shape[1]}")
    df.columns = _CAL_COLUMNS
    check_lonlat(df["lon"], df["lat"], str(path))
    df["continent"] = "North America"
    return _finish(df, TASKS["california_housing"])


BUILDERS: dict[str, Callable[..., pd.DataFrame]] = {
    "population": build_population,
    "biomes": build_biomes,
    "air_temperature": build_air_temperature,
    "elevation": build_elevation,
    "countries": build_countries,
    "ecoregions": build_ecoregions,
    "california_housing": build_california_housing,
}


def build_task(task: str, points: pd.DataFrame, *, raw_dir: Path | None = None,
               mirror: str | None = None, countries=None, min_class_count: int = 1) -> pd.DataFrame:
    """Build the label table of ``task`` (see ``TASKS``) at the shared land ``points``."""
    if task not in BUILDERS:
        raise LabelError(f"unknown task {task!r}; known: {', '.join(BUILDERS)}")
    if countries is None:
        countries = countries_frame(raw_dir, mirror)
    if TASKS[task].uses_land_points and "continent" not in points.columns:
        points = add_continent(points, countries)
    if task == "ecoregions":
        return build_ecoregions(raw_dir, mirror, points, countries, min_class_count)
    return BUILDERS[task](raw_dir, mirror, points, countries)


def write_table(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a Parquet table atomically (temporary name, then rename)."""
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)
    return Path(path)
