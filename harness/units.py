"""Units, stated once for the whole project.

Memory is counted in bytes and written in binary units: MiB = 2**20 bytes, GiB = 2**30 bytes. That is what
``torch.cuda`` and the Linux kernel count, and what a GPU's marketed "80 GB" of HBM is (80 GiB; the catalog's
``memory_gib``). Decimal GB (1e9 bytes) is not used for memory; bandwidths are decimal GB/s, as vendors state
them. Every name that holds a memory figure ends in its unit
(``_bytes``, ``_mib``, ``_gib``) and says whether it is a peak (the most in use at once) or a growth (a peak
minus what was in use when the phase began).

Time is in seconds (``_seconds``) or milliseconds (``_ms``), money in US dollars (``_usd``).
"""

MIB = 2**20
GIB = 2**30
