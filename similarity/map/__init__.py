"""The catalog map: a 2-D layout of every product's embedding, computed off the request path.

- ``layout.py``: fitters (UMAP, PCA), the sampled fit, placement by nearest fitted neighbours and the
  neighbourhood-preservation quality figure (pure functions of arrays);
- ``persist.py``: the layout kept with the catalog (files next to SQLite, a MongoDB ``map`` collection, memory);
- ``worker.py``: where a fit runs (a spawned child at nice 19, or a low-priority thread);
- ``incremental.py``: products added since the fit placed by their neighbours, until a refit is due;
- ``points.py``: a page of the map's points, as ``/catalog_map`` returns them;
- ``service.py``: ``CatalogMap``, what the search service and the UI use.
"""

from __future__ import annotations

from .layout import Fitter, PcaFitter, UmapFitter, fit_layout, neighbourhood_preservation, pca_2d
from .persist import FileLayouts, Layout, LayoutStore, MemoryLayouts, MongoLayouts, layouts_for
from .service import CatalogMap

__all__ = [
    "CatalogMap",
    "FileLayouts",
    "Fitter",
    "Layout",
    "LayoutStore",
    "MemoryLayouts",
    "MongoLayouts",
    "PcaFitter",
    "UmapFitter",
    "fit_layout",
    "layouts_for",
    "neighbourhood_preservation",
    "pca_2d",
]
