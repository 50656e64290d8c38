"""Unpack the nodes' results into a run folder: `unpack_results.py NODES_DIR < {node: base64 tar.gz}`.

Each node sends its run folder as a base64 gzip tar on the standard output of one raw
command (fetch.yml); this writes it to NODES_DIR/<node>/. Members that would land outside
a node's folder are refused. Prints one line per node and exits 1 when any failed.
"""

import base64
import io
import json
import sys
import tarfile
from pathlib import Path


def unpack(nodes_dir: Path, node: str, payload: str) -> str:
    target = (nodes_dir / node).resolve()
    if target.parent != nodes_dir.resolve():
        raise ValueError(f"node name {node!r} is not a folder name")
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(payload)), mode="r:gz") as archive:
        archive.extractall(target, filter="data")  # refuses absolute paths, .. and links out
        return f"{node}: {len(archive.getmembers())} entries"


def main() -> int:
    nodes_dir = Path(sys.argv[1])
    failed = False
    for node, payload in sorted(json.load(sys.stdin).items()):
        try:
            print(unpack(nodes_dir, node, payload))
        except (ValueError, OSError, tarfile.TarError) as exc:
            print(f"{node}: FAILED: {exc}")
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
