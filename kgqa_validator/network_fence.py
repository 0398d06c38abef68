"""The second barrier: worker processes that cannot open a network connection at all.

The tokenizer decides which ``SERVICE`` targets to mask before pyoxigraph parses a query, and
which queries the embedded store may run.  Should it ever misread a query, pyoxigraph's native
HTTP client (Rust: Python's ``socket`` module is not involved, so no monkeypatching can stop
it) would contact the service.  So the parser workers and the embedded executor's worker
install a seccomp filter before they read their first query: ``socket()`` for any address
family but ``AF_UNIX`` fails with ``EPERM`` (and ``io_uring_setup``, which could open sockets
past the filter, too).  The filter is inherited by every thread and cannot be removed.
Workers talk to their parent over pipes, so they lose nothing.

Linux on x86_64 and aarch64 only.  Where the filter cannot be installed,
:func:`fenced` is false and the parser falls back to a check of the raw text instead
(:func:`unaccounted_service`).
"""

from __future__ import annotations

import ctypes
import platform
import re
import struct
import sys

# (AUDIT_ARCH_*, socket, io_uring_setup, seccomp) per machine.
_ARCHES = {
    "x86_64": (0xC000003E, 41, 425, 317),
    "aarch64": (0xC00000B7, 198, 425, 277),
}
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_SECCOMP_SET_MODE_FILTER = 1
_SECCOMP_FILTER_FLAG_TSYNC = 1
_RET_ALLOW = 0x7FFF0000
_RET_EPERM = 0x00050000 | 1
_AF_UNIX = 1
_LD_ABS_W, _JEQ_K, _RET_K = 0x20, 0x15, 0x06

_fenced = False


def _program(arch: int, nr_socket: int, nr_io_uring: int) -> bytes:
    """A classic BPF program over ``struct seccomp_data`` (nr at 0, arch at 4, args at 16)."""
    insns = [
        (_LD_ABS_W, 0, 0, 4),             # 0: A = arch
        (_JEQ_K, 0, 5, arch),             # 1: other ABI -> allow (7)
        (_LD_ABS_W, 0, 0, 0),             # 2: A = syscall number
        (_JEQ_K, 4, 0, nr_io_uring),      # 3: io_uring_setup -> EPERM (8)
        (_JEQ_K, 0, 2, nr_socket),        # 4: not socket -> allow (7)
        (_LD_ABS_W, 0, 0, 16),            # 5: A = low word of args[0], the address family
        (_JEQ_K, 0, 1, _AF_UNIX),         # 6: AF_UNIX -> allow, else EPERM
        (_RET_K, 0, 0, _RET_ALLOW),       # 7
        (_RET_K, 0, 0, _RET_EPERM),       # 8
    ]
    return b"".join(struct.pack("=HBBI", *insn) for insn in insns)


def install() -> bool:
    """Install the filter in this process (idempotent); whether it is in place."""
    global _fenced
    if _fenced:
        return True
    arch = _ARCHES.get(platform.machine().lower()) if sys.platform == "linux" else None
    if arch is None or sys.byteorder != "little":
        return False
    audit_arch, nr_socket, nr_io_uring, nr_seccomp = arch
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        code = _program(audit_arch, nr_socket, nr_io_uring)
        filters = ctypes.create_string_buffer(code, len(code))

        class _Prog(ctypes.Structure):
            _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

        prog = _Prog(len(code) // 8, ctypes.cast(filters, ctypes.c_void_p))
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return False
        # seccomp(2) with TSYNC puts every thread of the process under the filter; prctl,
        # the fallback for old kernels, only this thread and the threads it starts later.
        libc.syscall.restype = ctypes.c_long
        if libc.syscall(ctypes.c_long(nr_seccomp), ctypes.c_long(_SECCOMP_SET_MODE_FILTER),
                        ctypes.c_long(_SECCOMP_FILTER_FLAG_TSYNC), ctypes.byref(prog)) != 0 \
                and libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(prog),
                               0, 0) != 0:
            return False
    except (OSError, AttributeError, TypeError, ValueError):
        return False
    _fenced = True
    return True


def fenced() -> bool:
    """Whether this process is under the filter."""
    return _fenced


# A keyword stands alone: not inside a name (bd:serviceParam, ?services).
_SERVICE_WORD = re.compile(r"(?<![\w:])service(?!\w)", re.IGNORECASE)


def unaccounted_service(text: str, services_seen: int) -> bool:
    """Without the filter: whether ``text`` spells the word ``service`` (in any case,
    anywhere: in comments, strings and IRIs too) more often than the tokenizer found
    ``SERVICE`` clauses.  Then the tokens may have missed one, and the query must not reach
    pyoxigraph."""
    return len(_SERVICE_WORD.findall(text)) > services_seen
