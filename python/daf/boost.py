"""C++ Boost.Serialization archives of PropertySets, as LSST's C++ wrote them.

``read(path, info=False)`` detects binary, text and XML archives (Boost
library versions 8-19); ``write(obj, path, kind="binary", boost_version=None)``
writes byte-identical archives for Boost 1.74 (18) and 1.81 (19, the default).
"""

from ._daf import boost as _boost

read = _boost.read
write = _boost.write

__all__ = ["read", "write"]
