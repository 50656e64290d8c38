"""Bytecode cache for the Python that Ansible's modules bring, in the test VMs only.

Every module Ansible runs arrives as a fresh zip (AnsiballZ) and is imported from it, and
zipimport never caches bytecode: each task compiles ansible.module_utils again (and zipimport
compiles every module twice, once only to name its file). On the VMs' emulated CPUs that was
most of a module's run: a `stat` took 5.0 s in the VM, 1.9 s with this cache.
This importer serves the zip's modules from a cache of code objects keyed by the
interpreter's bytecode version, the module's name and its source, so a changed source is
compiled again and nothing else changes. `scripts/vm-image` installs it with a .pth file;
real hosts do not need it.
"""

from __future__ import annotations

import marshal
import os
import sys
import zipimport  # already loaded at start-up, as are marshal, os and sys: a .pth costs nothing

CACHE_DIR = "/var/cache/ansiballz-bytecode"


class CachingZipImporter(zipimport.zipimporter):
    def get_filename(self, fullname):
        # zipimport finds a module's file name by compiling it, and every import asks for it.
        try:
            name = fullname.rpartition(".")[2]
            return self.archive + os.sep + self.prefix + name + ("/__init__.py" if self.is_package(fullname) else ".py")
        except ImportError:
            return super().get_filename(fullname)

    def get_code(self, fullname):
        import hashlib
        import importlib.util

        try:
            source = self.get_data(self.get_filename(fullname))
        except (OSError, ImportError):
            return super().get_code(fullname)
        key = hashlib.sha256(importlib.util.MAGIC_NUMBER + fullname.encode() + b"\0" + source).hexdigest()
        path = os.path.join(CACHE_DIR, key)
        try:
            with open(path, "rb") as cached:
                return marshal.loads(cached.read())
        except (OSError, ValueError, EOFError, TypeError):
            pass
        code = super().get_code(fullname)
        try:
            os.makedirs(CACHE_DIR, mode=0o700, exist_ok=True)
            partial = f"{path}.{os.getpid()}"
            with open(partial, "wb") as out:
                out.write(marshal.dumps(code))
            os.replace(partial, path)  # never a half-written entry, whoever writes it too
        except OSError:
            pass  # not writable (another user): compiled, as without the cache
        return code


def payload_importer(path: str) -> CachingZipImporter:
    """sys.path hook: Ansible's payload zips (ansible_<module>_payload.zip) and the packages in them."""
    if not any(part.startswith("ansible_") and part.endswith("_payload.zip") for part in path.split(os.sep)):
        raise ImportError("not in an AnsiballZ payload")
    return CachingZipImporter(path)


def install() -> None:
    if payload_importer not in sys.path_hooks:
        sys.path_hooks.insert(0, payload_importer)
