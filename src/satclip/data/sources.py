"""Registry of every remote file the pipeline reads: URL, sha256, size, licence, attribution.

Upstream URLs are pinned to commits; hashes and sizes were computed from byte-exact copies of
the upstream files. ``fetch(name)`` returns a local,
verified path, taking the file from the mirror when one is configured.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from satclip.data.cache import raw_dir as default_raw_dir
from satclip.data.download import download

_SATCLIP = "https://raw.githubusercontent.com/microsoft/satclip/1ead1067e9a00d44b132403b6bb2ce061e48d48e"
_FERRET = "https://raw.githubusercontent.com/NOAA-PMEL/FerretDatasets/32a063b95c4d688f373449992e56d46e460ffdd3/data"
_GPW = "https://raw.githubusercontent.com/stactools-packages/gpw/e55f8b97308d34cb886bf34173b1e59273ab499f/tests/data-files"
_NE = ("https://raw.githubusercontent.com/geopandas/geopandas/v0.14.4/geopandas/datasets/"
       "naturalearth_lowres/naturalearth_lowres")
_ECO = "https://raw.githubusercontent.com/marquetlab/GCM_compareR/4ff6878c3065a7c3ddfeda9135e093cdd40700a5/data/Ecoregions2017"
_CAL = "https://raw.githubusercontent.com/lapets/course-data-science/8b7f62812de4e3bd86bbc7879f65691e1775d1c9/cal_housing.data"

_HOOKER = "Hooker, Duveiller & Cescatti (2018), Scientific Data 5:180246; via microsoft/satclip (MIT)"
_NOAA = "NOAA ETOPO5-derived relief, public domain; via NOAA-PMEL/FerretDatasets (Unlicense)"
_CIESIN = "CIESIN (2018) Gridded Population of the World v4.11, CC-BY 4.0"
_NATURAL_EARTH = "Natural Earth 1:110m admin-0, public domain"
_RESOLVE = "Dinerstein et al. (2017), BioScience 67(6), RESOLVE Ecoregions 2017, CC-BY 4.0"
_PACE = "Pace & Barry (1997), StatLib California housing"
_S2 = "microsoft/satclip (MIT); contains modified Copernicus Sentinel data 2021-2023"


@dataclass(frozen=True)
class Source:
    """One remote file: where it lives upstream, where it sits in the mirror, how to verify it."""

    name: str
    url: str
    sha256: str
    size: int
    licence: str
    attribution: str
    mirror_path: str  # path relative to the mirror root (the layout of shared/geodata)


def _src(name: str, url: str, sha256: str, size: int, licence: str, attribution: str,
         mirror_path: str) -> Source:
    return Source(name, url, sha256, size, licence, attribution, mirror_path)


SOURCES: dict[str, Source] = {s.name: s for s in [
    _src("air_temperature", f"{_SATCLIP}/figures/ssl4eo/stationDataAll.csv",
         "92d8456d82aafd3929ccba589e0ffe4ca15eeb321c07c430855d6756aaf07d33", 383938,
         "see publication", _HOOKER, "air_temperature/stationDataAll.csv"),
    _src("etopo20", f"{_FERRET}/etopo20.cdf",
         "ba27cb2fa5f2f2b2c76e5a576f0a291fd11ebb3da99ed9b466150c0a064a1db4", 2348512,
         "public domain", _NOAA, "elevation/etopo20.cdf"),
    _src("etopo60", f"{_FERRET}/etopo60.cdf",
         "36b4cb72a01cf4c6dc155e52dca6c4ff148aea5958d056d3136fe2789646c4ad", 264088,
         "public domain", _NOAA, "elevation/etopo60.cdf"),
    _src("gpw_15_min", f"{_GPW}/gpw_v4_population_count_rev11_2000_15_min.tif",
         "6ff5be9f3334bfb5fb8187d00afcc15f02abdf77614b4d5a1eac2c4f87e221cb", 1239793,
         "CC-BY 4.0", _CIESIN, "population/gpw_v4_population_count_rev11_2000_15_min.tif"),
    _src("gpw_30_min", f"{_GPW}/gpw_v4_population_count_rev11_2000_30_min.tif",
         "f3dae8d040e012a5857a750fa23c2f0622df7860115a6027c2bc1dc8e663f040", 343467,
         "CC-BY 4.0", _CIESIN, "population/gpw_v4_population_count_rev11_2000_30_min.tif"),
    _src("gpw_1_deg", f"{_GPW}/gpw_v4_population_count_rev11_2000_1_deg.tif",
         "3ae570f22a7d62c023a9dbea741f808e2fa1cdd48d844328b3f7740d5d345883", 96190,
         "CC-BY 4.0", _CIESIN, "population/gpw_v4_population_count_rev11_2000_1_deg.tif"),
    *[_src(f"naturalearth_lowres.{ext}", f"{_NE}.{ext}", sha, size, "public domain",
           _NATURAL_EARTH, f"countries/naturalearth_lowres.{ext}")
      for ext, sha, size in [
          ("shp", "1f689e60b357e1e98702d5d9f774e95e77fc6b324487cadf57eb9317d533ce12", 180744),
          ("shx", "7933917ebd636eb80822c1bddfa31dd7597ca9e6f89b21e23283c594ed6482c5", 1516),
          ("dbf", "5cfbcaa21ce5fad798abf2ec65ab0db59538f9bb8a37273ef62b6aa8121487fd", 50285),
          ("prj", "a02a27b1d1982c8516d83398e85a3c8b1aef1713c13ef4d84d7bde17430c07c4", 145),
          ("cpg", "09fc313075748ce8ead962229ed89c919d5a9ff71974ee725a0b48bb87d975a2", 10)]],
    *[_src(f"Ecoregions2017.{ext}", f"{_ECO}.{ext}", sha, size, "CC-BY 4.0", _RESOLVE,
           f"ecoregions/Ecoregions2017.{ext}")
      for ext, sha, size in [
          ("shp", "151a832c404bc7368ddba4b285cfa7b4107af7ab3ea1fdd3bf349bcb60248cc6", 2891568),
          ("shx", "5ea82958f8a2ff47633c2106a569ac205b9644538ff79eff4dc8b76f0a01d444", 6876),
          ("dbf", "9b56bb920e08a106a34f6871accb84620468aaa017ff7f63e7ecee322639cf49", 556865),
          ("prj", "98aaf3d1c0ecadf1a424a4536de261c3daf4e373697cb86c40c43b989daf52eb", 143)]],
    _src("cal_housing", _CAL,
         "d3d8a1a722ae78f91134862727d27a70b1415e7d512a89140406248687f4b902", 2092122,
         "StatLib (free for research use)", _PACE, "california_housing/cal_housing.data"),
    _src("s2_sample_index", f"{_SATCLIP}/figures/ssl4eo/example/index.csv",
         "eaf28088d7d895ad9196ed6c0ba1c193d2286320a89bb5398529292bcb82cfe8", 3045,
         "MIT", _S2, "s2-100k-sample/index.csv"),
    *[_src(f"s2_sample/{fn}", f"{_SATCLIP}/figures/ssl4eo/example/images/{fn}", sha, size, "MIT", _S2,
           f"s2-100k-sample/images/{fn}")
      for fn, sha, size in [
          ("patch_252161.tif", "0431977c56d72b2636b7fd7f53e3caeda1f796fab414eeb444c3b472925f575a", 906378),
          ("patch_25630.tif", "e9250cc1329b413ad779fd1f0f424c237bac9bfca62a4b590367e780ca25242c", 735003),
          ("patch_275979.tif", "6f3ad604d1c712e6b3b29d0252353169a4a3f79cfed7dd0ba7f014d475baad1e", 962971),
          ("patch_286743.tif", "e290c20219311e95f6b2e1dd5661494d7c61212736561781b78c865cecc1d37b", 1125601),
          ("patch_322265.tif", "cc0a0d5c8d91b6c0c78aaeca0b7a88dcf76144016454c41a92f67b96d75f7646", 921024),
          ("patch_502692.tif", "c521bb25de8daa1391b31d62d2011159065d499f3a6d9d3f4e850bbd45509211", 891798),
          ("patch_511198.tif", "0a81ed18ac902030490376c2238377c30c8077c0bc4c6841a3afc13723af921d", 1064263),
          ("patch_526850.tif", "e3315a00036c3639a38dd0a9956309b0a3b8f70fb902ecf5ae3bdfd39df3d3e1", 956557),
          ("patch_566084.tif", "63b0f6bbde07bdc975e9134357bb2e25889308c7037d3d4f50b129399d8852aa", 944468),
          ("patch_57755.tif", "cda663caaa1014e073f3fb3a2c71a2bda83d9c16f6c812ebc14d5cd7a30316ff", 942227),
          ("patch_58000.tif", "bbe35a74a61c62ea3507eda459bdc0d0c7c2d93b9ec9bcfc0545418966692612", 993757),
          ("patch_61808.tif", "2031988ec0c7134fca66ce42f8393a1690bf40e83e3495873e43c7bee72488c9", 956670),
          ("patch_70541.tif", "ba887d6638d1e9c776997bdd13913ea6559ce40664051946a4193f181b152402", 827986),
          ("patch_70975.tif", "26dacee7bb75edc97206b07e8cc8bdadf4c3e54f5aed6ca0c9bf3ae82ebb3176", 1016169),
          ("patch_74721.tif", "fdf116a89948d19f5c40ab57e2b9c89121f2c5971eeca2ac71294ee78630d9e0", 631818),
          ("patch_75123.tif", "37aae00030ddee7f5d7ce6f83a995257dc0a8a65bec928231a9eb95ea65e996e", 950666),
          ("patch_752389.tif", "51d935e56b5f4c14ff9a3f21d7955603eb85009382ebc645a9128d4925b87916", 691754),
          ("patch_759128.tif", "333b769dd85e19d192d6d0568e96b9fa008452a1a80ca8b9a6b0012d45c47b32", 923998),
          ("patch_766272.tif", "f78e9d2de59c05b75681a1c00ec0922e563d8cc406d10b34bb4a05b5750e3a5d", 907856),
          ("patch_770287.tif", "56bb1d284f04d3a9cae708ba95f66b6e51410612f540e0be9de99c48ec4a10a3", 1055851)]],
]}

S2_SAMPLE_FILES = sorted(n.split("/", 1)[1] for n in SOURCES if n.startswith("s2_sample/"))


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """Where fetched raw files live: the argument, else ``<cache>/raw`` (``satclip.data.cache``)."""
    return Path(path) if path is not None else default_raw_dir()


def fetch(name: str, raw_dir: str | os.PathLike | None = None, *,
          mirror: str | os.PathLike | None = None, progress: bool = True) -> Path:
    """Return a verified local copy of the registered file ``name``.

    The file lands at ``<raw_dir>/<mirror_path>``; it is taken from the mirror when one is set
    (``mirror`` or ``$SATCLIP_DATA_MIRROR``), else downloaded from its pinned upstream URL.
    """
    try:
        source = SOURCES[name]
    except KeyError:
        raise KeyError(f"unknown data source {name!r}; known: {', '.join(sorted(SOURCES))}") from None
    dest = cache_dir(raw_dir) / source.mirror_path
    return download(source.url, dest, source.sha256, mirror=mirror,
                    mirror_relpath=source.mirror_path, progress=progress)


def fetch_shapefile(stem: str, raw_dir: str | os.PathLike | None = None, *,
                    mirror: str | os.PathLike | None = None) -> Path:
    """Fetch every registered component of a shapefile (``stem.shp``, ``.shx``, ...); return the .shp."""
    parts = [n for n in SOURCES if n.startswith(stem + ".")]
    if not parts:
        raise KeyError(f"no shapefile {stem!r} in the registry")
    paths = {n: fetch(n, raw_dir, mirror=mirror, progress=False) for n in parts}
    return paths[f"{stem}.shp"]
