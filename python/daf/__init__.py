"""daf: a data-access framework for survey pipelines.

The butler (``daf.Butler``), NumPy-backed images and catalogs, PropertySet and
Policy, persistence and Boost archives, and Python stages for the pipeline
harness (``daf.harness``), on a Rust core. Errors are ``daf.DafError`` and its
subclasses.

>>> import daf
>>> ps = daf.PropertySet({"exptime": 15.0, "filter": "g"})
>>> ps["exptime"]
15.0
"""

from ._daf import (  # noqa: F401
    __version__,
    DafError,
    NoResults,
    DatasetVanished,
    AmbiguousDataId,
    DatasetExists,
    ReadOnlyError,
    DatasetBusy,
    BadDataId,
    RepositoryError,
    RegistryError,
    MapperError,
    StorageError,
    FormatterError,
    PolicyError,
    PropertyError,
    HarnessError,
    PropertySet,
    DateTime,
    Policy,
    Image,
    Mask,
    MaskedImage,
    Exposure,
    Detector,
    DecoratedImage,
    SourceCatalog,
    Butler,
    ButlerDataRef,
    DeferredDatasetHandle,
    Persistence,
    LogicalLocation,
)
from . import boost  # noqa: F401,E402
from . import harness  # noqa: F401,E402
