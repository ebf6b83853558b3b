"""Reading EPUB and DOCX files safely: ZIP archives and XML that may be hostile.

Guards, each a `BadBook` (a payload error) with a message a user can act on:

- the format is told from the bytes — ZIP magic, then EPUB's `mimetype` member or DOCX's
  `[Content_Types].xml` — never from a file name (`sniff_book`);
- a truncated or damaged archive, a password-protected member, an unknown compression method;
- zip bombs: at most `members` entries; the members read may expand to `total_bytes` in all
  (a multiple of CINEQO_MAX_NOVEL_BYTES) and none by more than `ratio` times its compressed
  size — checked against the sizes the archive declares and again while reading, since
  declared sizes can lie;
- XML: parsed by lxml with entity resolution, DTD loading and network access off, and libxml2's
  default limits (no `huge_tree`: at most 256 levels deep); a document that declares entities
  (`<!ENTITY`, the billion-laughs and XXE shapes) is refused outright.
"""

from __future__ import annotations

import io
import posixpath
import threading
import zipfile
import zlib
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any, Literal, Protocol

import attrs

if TYPE_CHECKING:
    from lxml import etree

__all__ = ["ArchiveLimits", "BadBook", "BookArchive", "parse_xml", "sniff_book"]

BookFormat = Literal["epub", "docx"]
EPUB_MIMETYPE = b"application/epub+zip"
DOCX_MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_ENTITY = b"<!ENTITY"  # XML keywords are case-sensitive
_CHUNK = 1 << 16


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class BadBook(ValueError):
    """An EPUB or DOCX file that cannot (or must not) be read."""


class HostileXml(BadBook):
    """XML that declares entities or nests too deep: refused, never read leniently."""


@attrs.frozen(kw_only=True)
class ArchiveLimits:
    """How much an archive may make us read."""

    total_bytes: int  # uncompressed bytes of all members read
    ratio: int = 100  # uncompressed : compressed, per member
    members: int = 20_000
    small: int = 1 << 20  # members up to this size may compress better than `ratio`

    @classmethod
    def for_novels(cls, max_novel_bytes: int) -> ArchiveLimits:
        """Markup around the text: up to 4x the largest novel accepted, uncompressed."""
        return cls(total_bytes=4 * max_novel_bytes)


def sniff_book(data: bytes) -> BookFormat | None:
    """ "epub" or "docx" for a ZIP that is one, None for anything that is not a ZIP archive.

    A ZIP that is neither, or one too damaged to tell, is a `BadBook`.
    """
    if not data.startswith(_ZIP_MAGIC):
        return None
    archive = BookArchive.open(data, "ZIP", ArchiveLimits(total_bytes=1 << 20))
    if archive.has("mimetype") and archive.read("mimetype").strip() == EPUB_MIMETYPE:
        return "epub"
    if archive.has("META-INF/container.xml"):
        return "epub"  # a mimetype member written wrongly; the container is what matters
    if archive.has("[Content_Types].xml") and DOCX_MAIN.encode() in archive.read(
        "[Content_Types].xml"
    ):
        return "docx"
    raise BadBook(
        "this is a ZIP archive, but neither an EPUB (no application/epub+zip mimetype or "
        "META-INF/container.xml) nor a Word document (.docx); upload the novel itself"
    )


@attrs.define
class BookArchive:
    """A ZIP archive read within `limits`; member names are exact, `/`-separated."""

    zip: zipfile.ZipFile
    kind: str  # "EPUB", "DOCX": how messages name the file
    limits: ArchiveLimits
    members: dict[str, zipfile.ZipInfo]
    read_bytes: int = 0

    @classmethod
    def open(cls, data: bytes, kind: str, limits: ArchiveLimits) -> BookArchive:
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
            infos = archive.infolist()
        except (
            zipfile.BadZipFile,
            zipfile.LargeZipFile,
            NotImplementedError,  # a directory entry that needs a newer zip version
            EOFError,
            OSError,
            ValueError,
        ):
            raise BadBook(
                f"this {kind} file is damaged or cut short: its ZIP directory cannot be read"
            ) from None
        if len(infos) > limits.members:
            raise BadBook(f"this {kind} file has {len(infos)} members, over {limits.members}")
        return cls(archive, kind, limits, {info.filename: info for info in infos})

    def has(self, name: str) -> bool:
        return name in self.members

    def names(self) -> Iterator[str]:
        return iter(self.members)

    def read(self, name: str) -> bytes:
        """A member's bytes, within the limits.

        zipfile never returns more than a member's declared size (and then checks its CRC),
        and asked for that many bytes it never inflates much more at once: so once the
        declared size is checked, one bounded read is enough.
        """
        info = self._info(name)
        self._check_declared(info, self.limits.total_bytes - self.read_bytes)
        try:
            with self.zip.open(info) as raw:
                data = raw.read(info.file_size + 1)
        except RuntimeError:  # zipfile's word for a password-protected member
            raise BadBook(f"{self.kind} member {name} is password-protected") from None
        # ValueError: a member's header offset pointing before the archive (a negative seek).
        except (
            NotImplementedError,
            zipfile.BadZipFile,
            zlib.error,
            EOFError,
            OSError,
            ValueError,
        ) as exc:
            reason = str(exc) or type(exc).__name__
            raise BadBook(f"{self.kind} member {name} is damaged or cut short ({reason})") from None
        self.read_bytes += len(data)
        return data

    def _info(self, name: str) -> zipfile.ZipInfo:
        info = self.members.get(name)
        if info is None:
            raise BadBook(f"this {self.kind} file has no {name}")
        return info

    def stream(self, name: str) -> _Bounded:
        """A member as a file object that refuses to expand past the limits."""
        info = self._info(name)
        budget = self.limits.total_bytes - self.read_bytes
        self._check_declared(info, budget)
        try:
            raw = self.zip.open(info)
        except RuntimeError:  # zipfile's word for a password-protected member
            raise BadBook(f"{self.kind} member {name} is password-protected") from None
        except (NotImplementedError, zipfile.BadZipFile, OSError, ValueError) as exc:
            raise BadBook(f"{self.kind} member {name} cannot be unpacked: {exc}") from None
        return _Bounded(self, raw, info, budget)

    def _check_declared(self, info: zipfile.ZipInfo, budget: int) -> None:
        if info.file_size > budget:
            raise BadBook(self._too_big(info.filename))
        if info.file_size > self.limits.small and info.file_size > self.limits.ratio * max(
            info.compress_size, 1
        ):
            raise BadBook(self._ratio(info.filename))

    def _too_big(self, name: str) -> str:
        total = self.limits.total_bytes
        limit = f"{total / 1024 / 1024:.1f} MB" if total >= 1 << 20 else f"{total} bytes"
        return (
            f"this {self.kind} file expands to more than {limit} (at {name}); is it a zip bomb? "
            "(the limit is 4x CINEQO_MAX_NOVEL_BYTES)"
        )

    def _ratio(self, name: str) -> str:
        return (
            f"{self.kind} member {name} expands more than {self.limits.ratio} times its "
            "compressed size; is it a zip bomb?"
        )


class _Bounded(io.RawIOBase):
    """A member being read: counts against the archive's budget and the member's ratio."""

    def __init__(
        self, archive: BookArchive, raw: IO[bytes], info: zipfile.ZipInfo, budget: int
    ) -> None:
        super().__init__()
        self._archive, self._raw, self._info, self._budget = archive, raw, info, budget
        self._seen = 0

    @property
    def seen(self) -> int:
        """Uncompressed bytes read so far."""
        return self._seen

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytes:
        limits, name = self._archive.limits, self._info.filename
        want = self._budget - self._seen + 1 if size is None or size < 0 else size
        try:
            data = self._raw.read(min(want, self._budget - self._seen + 1))
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
            reason = str(exc) or type(exc).__name__
            raise BadBook(
                f"{self._archive.kind} member {name} is damaged or cut short ({reason})"
            ) from None
        self._seen += len(data)
        self._archive.read_bytes += len(data)
        if self._seen > self._budget:
            raise BadBook(self._archive._too_big(name))
        compressed = max(self._info.compress_size, 1)
        if self._seen > limits.small and self._seen > limits.ratio * compressed:
            raise BadBook(self._archive._ratio(name))
        return data

    def close(self) -> None:
        self._raw.close()
        super().close()


def member_path(base: str, href: str) -> str:
    """A member name for `href` relative to the member `base` ("" for the archive's root)."""
    from urllib.parse import unquote

    joined = posixpath.join(posixpath.dirname(base), unquote(href))
    return posixpath.normpath(joined).lstrip("/")


def parse_xml(data: bytes, what: str) -> etree._Element:
    """`data` as an XML tree, with entities, DTDs and the network off; `BadBook` if not XML."""
    from lxml import etree

    if _ENTITY in data:
        raise HostileXml(f"{what} declares XML entities (<!ENTITY …>), which are refused")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise _syntax_error(what, exc) from None
    if b"\x00" not in data[:4] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return root  # not UTF-16 or UTF-32: the byte search above saw every `<!ENTITY`
    dtd: Any = root.getroottree().docinfo.internalDTD  # the stubs lack DTD.iterentities
    if dtd is not None and any(True for _ in dtd.iterentities()):
        raise HostileXml(f"{what} declares XML entities (<!ENTITY …>), which are refused")
    return root


def _syntax_error(what: str, exc: Exception) -> BadBook:
    message = str(exc)
    if "Excessive depth" in message:
        return HostileXml(f"{what} is not well-formed XML: it is nested more than 256 levels deep")
    if "amplification" in message or "entity reference loop" in message:
        return HostileXml(f"{what} declares XML entities (<!ENTITY …>), which are refused")
    return BadBook(f"{what} is not well-formed XML: {message}")


_PARSERS = threading.local()  # a parser is reused, but never by two threads at once


def _parser() -> etree.XMLParser:
    parser: etree.XMLParser | None = getattr(_PARSERS, "parser", None)
    if parser is None:
        parser = _PARSERS.parser = _new_parser()
    return parser


def _new_parser() -> etree.XMLParser:
    from lxml import etree

    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def safe_iterparse(source: Readable, what: str, tag: str) -> Iterator[tuple[str, etree._Element]]:
    """`etree.iterparse` over `source` with the same protections as `parse_xml`.

    A DOCTYPE is refused outright: the parts of an Office document never carry one.
    """
    from lxml import etree

    guarded = _NoDoctype(source, what)
    try:
        yield from etree.iterparse(
            guarded,
            events=("end",),
            tag=tag,
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
        )
    except etree.XMLSyntaxError as exc:
        raise _syntax_error(what, exc) from None


class _NoDoctype(io.RawIOBase):
    """Passes bytes through, refusing a `<!DOCTYPE` or `<!ENTITY` anywhere in them."""

    def __init__(self, source: Readable, what: str) -> None:
        super().__init__()
        self._source, self._what, self._tail = source, what, b""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(_CHUNK if size is None or size < 0 else size)
        window = self._tail + data
        if b"<!DOCTYPE" in window or _ENTITY in window:
            raise HostileXml(f"{self._what} declares a DOCTYPE or XML entities, which are refused")
        self._tail = window[-16:]
        return data
