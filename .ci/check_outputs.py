"""CI: every output declared in dvc.lock exists, results/index.html links only existing files, and
the HTML reports load no image or stylesheet from the network (they must read offline)."""

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
remote = [f"{html}: {m}" for html in sorted(Path("results/notebooks").glob("*.html"))
          for m in re.findall(r'<(?:img[^>]*\ssrc|link[^>]*\shref)="(?:https?:)?//[^"]*"', html.read_text())]
for item in remote:
    print(f"error: a report loads from the network: {item}", file=sys.stderr)
for path in missing:
    print(f"error: declared output missing: {path}", file=sys.stderr)
for link in broken:
    print(f"error: results/index.html links a missing file: {link}", file=sys.stderr)
if missing or broken or remote:
    sys.exit(1)
print(f"outputs: {sum(len(s.get('outs', [])) for s in lock['stages'].values())} declared, all present; "
      f"index.html: {len(links)} links, all resolve")
