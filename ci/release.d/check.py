"""The checks of ``ci/release`` on built artifacts, and the listing it prints.

Usage: ``check.py OUT_DIR --python NAME... --npm NAME...`` where OUT_DIR holds
the wheels, sdists and npm tarballs that ``ci/release`` built, and each NAME is
a folder under ``packages/``. Every problem is printed on its own line (to
stderr); the exit status is 1 when there is any. On stdout: one line per
artifact with its size, then ``N artifacts checked``.
"""

from __future__ import annotations

import argparse
import email.parser
import json
import pathlib
import re
import subprocess
import sys
import tarfile
import tomllib
import zipfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGES = ROOT / "packages"
LICENCE = "Apache-2.0"
REQUIRES_PYTHON = ">=3.11"


def normalise(name: str) -> str:
    """The PEP 503 normal form of a distribution name (also used in file names, with ``_``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def base_version(version: str) -> str:
    """``3.2.0.dev0`` -> ``3.2.0``: the version a changelog heading names."""
    match = re.match(r"\d+(\.\d+)*", version)
    return match.group(0) if match else version


def changelog_problems(changelog: pathlib.Path, version: str, final: bool = False) -> list[str]:
    """What is wrong with ``changelog`` for ``version``: it must exist and have
    a ``## <version>`` heading; with ``final`` (a release about to be
    published), the version must not be a development one and its heading
    must not say unreleased."""
    if not changelog.is_file():
        return [f"{changelog.relative_to(ROOT)} is missing"]
    wanted = base_version(version)
    headings = [line for line in changelog.read_text().splitlines()
                if re.match(rf"#+\s+v?{re.escape(wanted)}\b", line)]
    if not headings:
        return [f"{changelog.relative_to(ROOT)} has no heading for {wanted} (e.g. '## {wanted} (unreleased)')"]
    if final and wanted != version:
        return [f"{changelog.relative_to(ROOT)}: {version} is a development version, not one to publish"]
    if final and all("unreleased" in h.lower() for h in headings):
        return [f"{changelog.relative_to(ROOT)}: the heading of {version} still says unreleased"]
    return []


def source_version(folder: pathlib.Path) -> tuple[str, str]:
    """The (name, version) the checkout declares for a Python package."""
    project = tomllib.loads((folder / "pyproject.toml").read_text())
    name = project["project"]["name"]
    about = folder / project["tool"]["hatch"]["version"]["path"]
    version = re.search(r'__version__\s*=\s*"([^"]+)"', about.read_text()).group(1)
    return name, version


def wheel_metadata(path: pathlib.Path) -> tuple[email.message.Message, list[str]]:
    """The METADATA of a wheel and its member names."""
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
        return email.parser.Parser().parsestr(archive.read(meta).decode()), names


def sdist_metadata(path: pathlib.Path) -> tuple[email.message.Message, list[str]]:
    """The PKG-INFO of an sdist and its member names."""
    with tarfile.open(path) as archive:
        names = archive.getnames()
        info = next(n for n in names if n.count("/") == 1 and n.endswith("/PKG-INFO"))
        return email.parser.Parser().parsestr(archive.extractfile(info).read().decode()), names


def metadata_problems(label: str, meta, names: list[str], name: str, version: str) -> list[str]:
    """Check the core metadata of one artifact against what the checkout declares."""
    problems = []
    if normalise(meta.get("Name", "")) != normalise(name):
        problems.append(f"{label}: Name is {meta.get('Name')!r}, expected {name!r}")
    if meta.get("Version") != version:
        problems.append(f"{label}: Version is {meta.get('Version')!r}, expected {version!r}")
    licence = meta.get("License-Expression") or meta.get("License")
    if licence != LICENCE:
        problems.append(f"{label}: licence is {licence!r}, expected {LICENCE!r}")
    if meta.get("Requires-Python") != REQUIRES_PYTHON:
        problems.append(f"{label}: Requires-Python is {meta.get('Requires-Python')!r}, expected {REQUIRES_PYTHON!r}")
    if meta.get("Description-Content-Type") != "text/markdown" or len(meta.get_payload() or "") < 200:
        problems.append(f"{label}: no Markdown readme as its long description")
    licence_files = meta.get_all("License-File") or []
    if not licence_files:
        problems.append(f"{label}: no License-File in its metadata")
    for licence_file in licence_files:
        if not any(n.endswith(f"/{licence_file}") or n.endswith(f"/licenses/{licence_file}") for n in names):
            problems.append(f"{label}: the licence file {licence_file} is not inside")
    return problems


def check_python(out: pathlib.Path, folder_name: str, final: bool = False) -> tuple[list[pathlib.Path], list[str]]:
    """Check the wheel and sdist of ``packages/<folder_name>``."""
    folder = PACKAGES / folder_name
    name, version = source_version(folder)
    stem = f"{normalise(name).replace('-', '_')}-{version}"
    wheels = sorted(out.glob(f"{stem}-*.whl"))
    sdists = sorted(out.glob(f"{stem}.tar.gz"))
    problems = []
    if len(wheels) != 1:
        problems.append(f"{name}: expected one wheel {stem}-*.whl in {out}, found {len(wheels)}")
    if len(sdists) != 1:
        problems.append(f"{name}: expected one sdist {stem}.tar.gz in {out}, found {len(sdists)}")
    for path in wheels:
        problems += metadata_problems(path.name, *wheel_metadata(path), name, version)
    for path in sdists:
        problems += metadata_problems(path.name, *sdist_metadata(path), name, version)
    problems += changelog_problems(folder / "CHANGELOG.md", version, final)
    return wheels + sdists, problems


def check_npm(out: pathlib.Path, folder_name: str, final: bool = False) -> tuple[list[pathlib.Path], list[str]]:
    """Check the npm tarball of ``packages/<folder_name>`` and its ``npm pack --dry-run``."""
    folder = PACKAGES / folder_name
    package = json.loads((folder / "package.json").read_text())
    name, version = package["name"], package["version"]
    problems = []
    if package.get("license") != LICENCE:
        problems.append(f"{name}: package.json licence is {package.get('license')!r}, expected {LICENCE!r}")
    for field in ("description", "main", "types", "exports", "engines"):
        if not package.get(field):
            problems.append(f"{name}: package.json has no {field!r}")
    dry_run = out / f"{folder_name}.npm-dry-run.json"
    listed = json.loads(dry_run.read_text())[0] if dry_run.is_file() else {}
    dry_files = {entry["path"] for entry in listed.get("files", [])}
    if not dry_files:
        problems.append(f"{name}: npm pack --dry-run listed no file")
    tarball = out / f"{name.lstrip('@').replace('/', '-')}-{version}.tgz"
    artifacts = []
    if not tarball.is_file():
        problems.append(f"{name}: {tarball.name} was not built")
    else:
        artifacts.append(tarball)
        with tarfile.open(tarball) as archive:
            files = {n.removeprefix("package/") for n in archive.getnames()}
        for wanted in ("package.json", "README.md", "LICENSE", "CHANGELOG.md", package["main"].removeprefix("./"),
                       package["types"].removeprefix("./")):
            if wanted not in files:
                problems.append(f"{tarball.name}: {wanted} is not inside")
        if dry_files and dry_files != files:
            problems.append(f"{tarball.name}: differs from npm pack --dry-run ({sorted(dry_files ^ files)[:5]})")
    problems += changelog_problems(folder / "CHANGELOG.md", version, final)
    return artifacts, problems


def twine_problems(paths: list[pathlib.Path]) -> list[str]:
    """``twine check --strict`` on the Python artifacts."""
    if not paths:
        return []
    result = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *map(str, paths)],
                            capture_output=True, text=True)
    if result.returncode == 0:
        return []
    return ["twine check --strict failed:\n" + (result.stdout + result.stderr).strip()]


def human(size: int) -> str:
    """A size in kB or MB."""
    return f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.1f} kB"


def main(argv=None) -> int:
    """Check the artifacts in OUT_DIR; print them with their sizes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=pathlib.Path)
    parser.add_argument("--python", nargs="*", default=[])
    parser.add_argument("--npm", nargs="*", default=[])
    parser.add_argument("--final", action="store_true",
                        help="a release to publish: no development version, no changelog heading saying unreleased")
    args = parser.parse_args(argv)
    artifacts, problems = [], []
    for folder in args.python:
        found, wrong = check_python(args.out, folder, args.final)
        artifacts += found
        problems += wrong
    problems += twine_problems(artifacts)
    for folder in args.npm:
        found, wrong = check_npm(args.out, folder, args.final)
        artifacts += found
        problems += wrong
    width = max((len(p.name) for p in artifacts), default=0)
    for path in artifacts:
        print(f"{path.name:<{width}}  {human(path.stat().st_size):>9}")
    for problem in problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    print(f"{len(artifacts)} artifacts checked in {args.out}, "
          f"{len(problems)} problem{'s' if len(problems) != 1 else ''}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
