"""``tongban init DIR``: a starter configuration to begin from, written into a new directory.

The starter is the shipped catalogue: partners.yaml, the mappings with their code tables and
golden examples, the partners' WSDLs and JSON Schemas. Its names, codes, formats and sample
applications are realistic; its endpoints and callbacks are not: every one is a host under
``.invalid`` (RFC 2606), which never resolves, so nothing is delivered anywhere until an operator
writes the partner's real address (or passes ``tongban serve --endpoint``). Its key hashes are
placeholders to be replaced by the hashes of keys agreed with each partner.

An installed wheel carries the starter as package data (``federation/starter``, copied in at build
time by ``setup.py``); a source checkout, including an editable install, uses the repository's own
files, which are the same ones.
"""

from __future__ import annotations

import shutil
import sys
from importlib import resources
from pathlib import Path

import click

import federation
from federation.cli.help import Command
from federation.cli.lang import _

# What the starter holds, relative to the configuration directory (setup.py copies the same).
STARTER = ("partners.yaml", "mappings", "partners")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")


def starter_root() -> Path:
    """Where the starter configuration is: in the installed package, or the source checkout."""
    packaged = Path(str(resources.files(federation) / "starter"))
    if (packaged / "partners.yaml").is_file():
        return packaged
    checkout = Path(federation.__file__).resolve().parent.parent
    if (checkout / "partners.yaml").is_file():
        return checkout
    raise click.ClickException(
        _(
            "this installation carries no starter configuration (federation/starter is "
            "missing): reinstall tongban from its wheel"
        )
    )


def write_starter(target: Path) -> list[Path]:
    """Copy the starter into ``target`` (new or empty); the top-level paths written."""
    source = starter_root()
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name in STARTER:
        src, dst = source / name, target / name
        if src.is_dir():
            shutil.copytree(src, dst, ignore=IGNORED)
        else:
            shutil.copy2(src, dst)
        written.append(dst)
    return written


def unreachable_endpoints(partners_yaml: Path) -> int:
    """How many endpoint and callback lines still name a ``.invalid`` host."""
    text = partners_yaml.read_text(encoding="utf-8")
    return sum(
        1
        for line in text.splitlines()
        if line.lstrip().startswith(("endpoint:", "callback:")) and ".invalid" in line
    )


@click.command("init", cls=Command)
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
def init(directory: Path) -> None:
    """Write a starter configuration (partners.yaml, mappings, tables, WSDLs, schemas) into
    DIRECTORY, which must be new or empty."""
    if directory.exists() and any(directory.iterdir()):
        refusal = _("tongban init: %(dir)s is not empty; give a new or empty directory")
        click.echo(refusal % {"dir": directory}, err=True)
        sys.exit(2)
    try:
        write_starter(directory)
    except OSError as exc:
        refusal = _("tongban init: cannot write %(dir)s: %(error)s")
        click.echo(refusal % {"dir": directory, "error": exc}, err=True)
        sys.exit(2)
    count = unreachable_endpoints(directory / "partners.yaml")
    click.echo(_("wrote a starter configuration to %(dir)s") % {"dir": directory})
    click.echo(
        _(
            "  %(n)d endpoints and callbacks point at .invalid hosts: nothing is delivered until "
            "you write each partner's address in partners.yaml (or pass tongban serve --endpoint)"
        )
        % {"n": count}
    )
    click.echo(
        _("  replace the key hashes (keys_sha256) with those of the keys agreed with each side")
    )
    click.echo(_("  then: tongban check --config %(dir)s") % {"dir": directory})
