"""Point sampling on the sphere and coordinate checks.

Coordinates are (lon, lat) in degrees everywhere in this project.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

EARTH_RADIUS_KM = 6371.0088  # IUGG mean Earth radius


class CoordinateError(ValueError):
    """Coordinates are missing, NaN or out of range."""


def check_lonlat(lon: np.ndarray, lat: np.ndarray, what: str = "points") -> None:
    """Raise ``CoordinateError`` naming the first offending rows of NaN or out-of-range values."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    bad = ~np.isfinite(lon) | ~np.isfinite(lat) | (np.abs(lon) > 180) | (np.abs(lat) > 90)
    if bad.any():
        rows = np.flatnonzero(bad)
        shown = ", ".join(f"row {i}: lon={float(lon[i])}, lat={float(lat[i])}" for i in rows[:5])
        raise CoordinateError(f"{what}: {len(rows)} rows with NaN or out-of-range coordinates "
                              f"(need lon in [-180, 180], lat in [-90, 90]); first: {shown}")


def sample_sphere(n: int, rng: np.random.Generator, min_lat: float = -90.0,
                  max_lat: float = 90.0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points uniform on the sphere between two latitudes: (lon, lat), each shape (n,).

    Uniform in area means uniform in sin(lat), not in lat.
    """
    lon = rng.uniform(-180.0, 180.0, n)
    z = rng.uniform(np.sin(np.radians(min_lat)), np.sin(np.radians(max_lat)), n)
    lat = np.degrees(np.arcsin(z))
    return lon, lat


def is_land(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """True where the 1 km global land mask (package ``global-land-mask``) says land."""
    from global_land_mask import globe

    lat = np.clip(np.asarray(lat, dtype=float), -90.0, 90.0)
    lon = np.asarray(lon, dtype=float)
    lon = np.where(lon >= 180.0, lon - 360.0, lon)  # the mask's lon axis is [-180, 180)
    return globe.is_land(lat, lon)


def sample_land(n: int, seed: int | Sequence[int], min_lat: float = -90.0, max_lat: float = 90.0) -> pd.DataFrame:
    """``n`` land points uniform in area between two latitudes, rejecting water (1 km mask).

    Returns a DataFrame with columns ``lon, lat`` (float64 degrees), deterministic in ``seed``.
    """
    rng = np.random.default_rng(seed)
    lons, lats, have = [], [], 0
    while have < n:
        # land is ~29 % of the sphere: draw 4x what is still missing
        lon, lat = sample_sphere(max(4 * (n - have), 1024), rng, min_lat, max_lat)
        keep = is_land(lon, lat)
        lons.append(lon[keep])
        lats.append(lat[keep])
        have += int(keep.sum())
    return pd.DataFrame({"lon": np.concatenate(lons)[:n], "lat": np.concatenate(lats)[:n]})


def cell_area_km2(lat_south: np.ndarray, lat_north: np.ndarray, dlon_deg: float) -> np.ndarray:
    """Area of lon/lat cells on the sphere: R^2 * dlon * (sin(lat_n) - sin(lat_s)), in km^2."""
    return (EARTH_RADIUS_KM ** 2 * np.radians(dlon_deg)
            * (np.sin(np.radians(lat_north)) - np.sin(np.radians(lat_south))))


def great_circle_km(lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray,
                    lat2: np.ndarray) -> np.ndarray:
    """Haversine great-circle distance in km (broadcasting)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dlmb = np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def fibonacci_sphere(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` near-uniform points on the sphere (Fibonacci lattice): (lon, lat) degrees, shape (n,)."""
    i = np.arange(n) + 0.5
    lat = np.degrees(np.arcsin(1 - 2 * i / n))
    golden = np.pi * (3 - np.sqrt(5))  # the golden angle
    lon = np.degrees(np.remainder(golden * i, 2 * np.pi)) - 180.0
    return lon, lat


def fibonacci_land(n_sphere: int, min_lat: float = -90.0, max_lat: float = 90.0) -> tuple[np.ndarray, np.ndarray]:
    """The land points (1 km mask) of an ``n_sphere``-point Fibonacci lattice within a latitude band."""
    lon, lat = fibonacci_sphere(n_sphere)
    keep = is_land(lon, lat) & (lat >= min_lat) & (lat <= max_lat)
    return lon[keep], lat[keep]


def land_grid(step_deg: float = 1.0, min_lat: float = -60.0, max_lat: float = 84.0) -> tuple[np.ndarray, np.ndarray]:
    """Cell centres of a regular ``step_deg`` lon/lat grid that are on land: (lon, lat), shape (M,)."""
    lons = np.arange(-180.0, 180.0, step_deg) + step_deg / 2
    lats = np.arange(min_lat, max_lat, step_deg) + step_deg / 2
    glon, glat = np.meshgrid(lons, lats)
    glon, glat = glon.ravel(), glat.ravel()
    keep = is_land(glon, glat)
    return glon[keep], glat[keep]
