"""Page-cache state for memory figures, shared by the benchmarks.

A binary just built or copied is wholly in the page cache, and the kernel then maps up
to 64 KiB of cached pages around each page a process touches (fault-around), all
counted in the process's RSS. For sluice's 75 MiB binary that adds about 3 MiB that an
installed binary, cached only as far as it has been read, does not have. The
benchmarks drop every binary they compare from the cache before measuring, so that
all start from that state.
"""
import os


def evict(path):
    """Drops `path` from the page cache (written back first, so that it can be)."""
    fd = os.open(os.path.realpath(path), os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
