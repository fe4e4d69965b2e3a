"""Operating-system metadata that archivers add beside a user's files, recognised precisely so it can be left out.

macOS tools put metadata into archives that no processor wants and that breaks real jobs: Finder's
"Compress" adds a `__MACOSX/` folder of `._name` AppleDouble twins, macOS `tar` adds `._name` members, and
Finder leaves `.DS_Store` and, in a folder with a custom icon, an empty file named `Icon\\r` on disk.
Each rule below names one of these by a fact no user file shares by accident (a folder name Finder reserves,
a magic number, a name a user cannot type); a file that only resembles one (a user's own `._notes.txt`, a
`.DS_Store` that is not Finder's) is kept. Windows' `Thumbs.db` and `desktop.ini` are kept on purpose:
docs/worker-archives.md says why.
"""

from __future__ import annotations

import enum

# The AppleDouble header: magic 0x00051607, then version 2 (Apple's "AppleSingle/AppleDouble Formats", 1990).
APPLEDOUBLE_MAGIC = b"\x00\x05\x16\x07\x00\x02\x00\x00"
# A .DS_Store starts with a 4-byte alignment word (1) and the buddy allocator's magic "Bud1".
DS_STORE_MAGIC = b"\x00\x00\x00\x01Bud1"
HEAD_BYTES = max(len(APPLEDOUBLE_MAGIC), len(DS_STORE_MAGIC))  # what a content rule reads of a member
MACOSX_FOLDER = "__MACOSX"
ICON_FILE = "Icon\r"


class MetadataRule(enum.Enum):
    """Why a member was left out; the value is what the manifest's `ignored` list records."""

    MACOSX_FOLDER = "macos-__MACOSX"  # anything under a top-level __MACOSX/ (Finder's resource-fork twins)
    APPLEDOUBLE = "macos-appledouble"  # a ._name file holding an AppleDouble header (macOS tar, cp, Finder)
    DS_STORE = "macos-ds-store"  # a .DS_Store holding Finder's folder settings
    ICON = "macos-custom-icon"  # an empty file named Icon\r: the icon itself lives in the resource fork


ICON_NAMES = (ICON_FILE, "._" + ICON_FILE)  # the icon file, and its AppleDouble twin from macOS tar


def is_icon_file(name: str) -> bool:
    """True when a member name's last component is exactly `Icon\\r` or `._Icon\\r` (\\r its only control character)."""
    return name.rpartition("/")[2] in ICON_NAMES


def icon_refusal(name: str, found: str) -> str:
    """The one line refusing a member whose only control characters are the `\\r` of `Icon\\r` names.

    Such a name is Finder's only when it is an EMPTY file `Icon\\r` (or a `._Icon\\r` holding an AppleDouble
    header), so the message says that, and what this member is instead (`found`: "holds 12 bytes", ...).
    """
    return (
        f"member name {name!r} contains control characters (the \\r of Icon\\r): only an EMPTY file named Icon\\r "
        "(or a ._Icon\\r holding an AppleDouble header) is Finder's custom-icon metadata, which is left out; "
        f"this one {found}"
    )


def without_icon_returns(name: str) -> str:
    """The name with the `\\r` of each `Icon\\r` or `._Icon\\r` component taken out: when what remains has no
    control character, the name's only fault is an Icon\\r that is not Finder's, and `icon_refusal` says so."""
    return "/".join(part[:-1] if part in ICON_NAMES else part for part in name.split("/"))


def rule_by_name(parts: tuple[str, ...], *, is_dir: bool, size: int) -> MetadataRule | None:
    """The rule that drops a member from its path (and declared size) alone, or None."""
    if parts and parts[0] == MACOSX_FOLDER:
        return MetadataRule.MACOSX_FOLDER
    if not is_dir and parts and parts[-1] == ICON_FILE and size == 0:
        return MetadataRule.ICON
    return None


def needs_content(parts: tuple[str, ...]) -> bool:
    """True when a file's first HEAD_BYTES bytes decide whether it is metadata (`._name`, `.DS_Store`)."""
    return bool(parts) and (parts[-1].startswith("._") or parts[-1] == ".DS_Store")


def rule_by_content(parts: tuple[str, ...], head: bytes) -> MetadataRule | None:
    """The rule that drops a file whose name `needs_content`, given its first bytes, or None to keep it."""
    name = parts[-1]
    if name.startswith("._") and head.startswith(APPLEDOUBLE_MAGIC):
        return MetadataRule.APPLEDOUBLE
    if name == ".DS_Store" and head.startswith(DS_STORE_MAGIC):
        return MetadataRule.DS_STORE
    return None
