"""Copy one member out of a wheel (a zip) to a destination path, atomically.

Usage: python scripts/unpack_wheel_file.py WHEEL MEMBER DEST
"""

import os
import shutil
import sys
import zipfile
from pathlib import Path


def main(wheel: str, member: str, dest: str) -> None:
    out = Path(dest)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    with zipfile.ZipFile(wheel) as zf, zf.open(member) as src, tmp.open("wb") as dst:
        shutil.copyfileobj(src, dst, length=1 << 20)
    os.replace(tmp, out)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
