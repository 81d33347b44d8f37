"""CI: every output declared in dvc.lock exists, and results/index.html links only existing files."""

import re
import sys
from pathlib import Path

import yaml

lock = yaml.safe_load(Path("dvc.lock").read_text())
missing = [out["path"] for stage in lock["stages"].values() for out in stage.get("outs", [])
           if not Path(out["path"]).exists()]
index = Path("results/index.html")
links = re.findall(r'(?:href|src)="([^"]+)"', index.read_text()) if index.is_file() else []
broken = [link for link in links if not (index.parent / link).exists()]
if not index.is_file():
    missing.append(str(index))
for path in missing:
    print(f"error: declared output missing: {path}", file=sys.stderr)
for link in broken:
    print(f"error: results/index.html links a missing file: {link}", file=sys.stderr)
if missing or broken:
    sys.exit(1)
print(f"outputs: {sum(len(s.get('outs', [])) for s in lock['stages'].values())} declared, all present; "
      f"index.html: {len(links)} links, all resolve")
