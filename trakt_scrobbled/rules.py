"""Recognition: what a path names, by explicit rules per class of name (runs in parse_worker).

Two parsers read the file name and this module decides between them, per class:
- parsett (PTT) gives the title: it keeps `Part Two`, `Vol. 3`, `Chapter 4`, subtitles after
  " - ", words in parentheses and numbers inside titles (`86 - Eighty Six`), strips edition
  tags, and reads fansub layouts (CJK brackets, `2nd Season`, `05v2`, three-digit absolute
  numbers); it is also ~10x faster than guessit.
- guessit gives what PTT misses: `1x02-1x03` and `.506.507.` ranges, `Staffel`/`Temporada`
  markers, dates, `Trailer`/`Sample` tags, `{imdb-…}` ids.
Around them, rules of our own for what neither knows: files that are not media (camera and
phone clips, screen and call recordings, messenger exports, disc structure files, personal
videos), folders (only the show's folder and a season folder lend anything; folders above
the library never do), Windows paths, `YYMMDD` dates, and mini-series `Part.1`.

anitopy was measured too (133/138 on the corpus's fansub names read alone, against PTT's 119 and
guessit's 100): with the rules below PTT reads all of them, so a third parser would only cost
memory in the worker.

Each rule is named by the class of names it serves, never by one file.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from trakt_scrobbled.events import MediaType
from trakt_scrobbled.identify import (
    EXTRA,
    NO_EPISODE_NUMBER,
    NO_TITLE,
    NOT_A_VIDEO,
    SAMPLE,
    TRAILER,
    VIDEO_EXTENSIONS,
    Guess,
    ids_in,
    split_url,
)

log = logging.getLogger(__name__)

# Reasons for files that are not media (shown by `identify` and `status`).
CAMERA = "camera or phone clip"
SCREEN = "screen or call recording"
MESSENGER = "messenger video"
DISC = "disc structure file"
PERSONAL = "personal video"

# --------------------------------------------------------------------------- class: not media

_CAMERA_NAMES = re.compile(
    r"""^(?:
        (?:VID|IMG|PXL|MVIMG|MVI|DSC|DSCF|DSCN|DJI|MAH|CIMG|IMGP|SDIM|HPIM|SAM|MOV|GOPR|YDXJ|
           FILE|REC|MOVI|PICT|AMBA|EVT)[_-]?[A-Z]?\d{3,}.*  # phone and camera makers' prefixes
      | G[HXPLS]\d{6}                                 # GoPro HERO chapters
      | C\d{4}                                        # Sony XAVC
      | P\d{7}                                        # Panasonic
      | \d{8}[_-]\d{6}(?:[_-][A-Z0-9]+)*              # Samsung, dashcams: date_time
      | \d{5}                                         # AVCHD / Blu-ray stream numbers
    )$""",
    re.IGNORECASE | re.VERBOSE,
)
_SCREEN_NAMES = re.compile(
    r"""^(?:
        screen[ _-]?(?:recording|recorder|record|capture|cast)s?(?![a-z]).*
      | screencast\b.*
      | screen[-_]\d{8}.*
      | rpreplay_final\d+.*                                   # iOS
      | (?:simplescreenrecorder|kooha|vokoscreen(?:ng)?|peek|recordmydesktop|obs|bandicam|
           sharex|loom|zoom|teams|meet|webex|skype|capture|record(?:ing)?)[ _-].*
      | zoom_\d+ | video\d{9,} | gmt\d{8}-\d{6}.*              # Zoom
      | (?:meeting|call)[ _-]recording.*                       # Teams, Meet
      | replay[ _-].*\d{4}.*                                   # OBS replay buffer
      | (?:webcam|movie[ ]on)[ _-].*                           # Cheese, Photo Booth
    )$""",
    re.IGNORECASE | re.VERBOSE,
)
_MESSENGER_NAMES = re.compile(
    r"""^(?:
        vid-\d{8}-wa\d+                 # WhatsApp
      | video_\d{4}-\d{2}-\d{2}_.*      # Telegram Desktop
      | signal-\d{4}-\d{2}-\d{2}.*      # Signal
      | received_\d{10,}                # Messenger
      | fb_vid_\d+.*                    # Facebook
      | snapchat-\d+.*
      | telegram[ _-].* | whatsapp[ _-].*
    )$""",
    re.IGNORECASE | re.VERBOSE,
)
# A date followed by a time of day: what recorders (OBS, Xbox Game Bar, Snipping Tool…) name
# their files after; a daily show has a date but no time.
_DATE_TIME = re.compile(
    r"(?<!\d)(?:\d{4}[-._ ]?\d{2}[-._ ]?\d{2}|\d{2}[-._]\d{2}[-._]\d{4})"
    r"(?:(?:[ _T]+|[ ._-]+-[ ._-]+)(?:at[ _])?\d{1,2}[-._:h ]\d{2}(?:[-._: ]\d{2})?(?!\d{3})"
    r"|[ _T-]\d{6}(?!\d))",  # or HHMMSS
    re.IGNORECASE,
)
_CAMERA_FOLDERS = frozenset(
    {
        "dcim", "camera", "camera roll", "camera uploads", "screenshots", "whatsapp video",
        "whatsapp animated gifs", "telegram video", "zoom", "avchd", "100gopro", "100media",
        "100andro", "100apple",
    }
)  # fmt: skip
_PERSONAL_FOLDERS = frozenset(
    {
        "videos", "video", "pictures", "photos", "desktop", "documents", "home videos",
        "home movies", "family", "holidays", "holiday", "vacation", "kids", "personal",
        "phone", "iphone", "android", "camera roll", "my videos", "private",
    }
)  # fmt: skip
_PHOTO_FOLDERS = frozenset({"pictures", "photos", "iphone", "android", "phone", "camera roll"})
# A personal video's name: a few plain words and a bare year (`Birthday 2019`), without any
# of the marks a release or a library name carries (dots, brackets, quality or source tags).
_PERSONAL_NAME = re.compile(r"^[^\W\d_][\w' ,&!-]{0,40}? (?:19|20)\d{2}$")


_SCREEN_FOLDERS = frozenset(
    {"screen recordings", "screenrecorder", "screenrecordings", "screencasts", "captures", "obs"}
)
_HOME_MEDIA_FOLDERS = frozenset({"movies", "videos", "desktop", "pictures", "documents"})
"""The folders right in somebody's home where their own videos land (macOS ~/Movies too)."""
_HOME = re.compile(r"^(?:/home|/Users|[A-Za-z]:[\\/]Users)[\\/][^\\/]+[\\/]([^\\/]+)[\\/]", re.I)


def home_folder(local: str) -> str | None:
    """The folder right under a home (`Movies` of `/Users/alice/Movies/…`), or None."""
    m = _HOME.match(local)
    return m[1].casefold() if m is not None else None


_DISC_ENTRIES = frozenset(
    {("video_ts", "video_ts", "ifo"), ("bdmv", "index", "bdmv"), ("bdmv", "movieobject", "bdmv")}
)
"""What a player opens to play a whole disc: named by the disc's folder (or volume label)."""


def not_media(folders: list[str], stem: str, ext: str, home: str | None = None) -> str | None:
    """Why a file is not a film or an episode at all, or None."""
    lowered = [f.casefold() for f in folders]
    parent = lowered[-1] if lowered else ""
    # Disc structures: only the disc's entry point (VIDEO_TS.IFO, index.bdmv) is the film.
    entry = (parent, stem.casefold(), ext) in _DISC_ENTRIES
    if not entry and any(f in ("video_ts", "bdmv", "hvdvd_ts", "avchd") for f in lowered):
        return DISC
    if re.fullmatch(r"vts_\d{2}_\d", stem, re.IGNORECASE):
        return DISC
    if _MESSENGER_NAMES.match(stem) or any(f.startswith(("whatsapp", "telegram")) for f in lowered):
        return MESSENGER
    if _SCREEN_NAMES.match(stem):
        return SCREEN
    if _CAMERA_NAMES.match(stem):
        return CAMERA
    if _DATE_TIME.search(stem) and not _has_episode_marks(stem):
        return SCREEN
    if any(f in _SCREEN_FOLDERS for f in lowered[-3:]):
        return SCREEN
    if any(f in _CAMERA_FOLDERS for f in lowered[-3:]):
        return CAMERA
    personal = [f for f in lowered[-3:] if f in _PERSONAL_FOLDERS]
    if home in _HOME_MEDIA_FOLDERS and home in lowered[-3:]:
        personal.append(home)
    if personal:
        if any(f in _PHOTO_FOLDERS for f in personal):
            return PERSONAL
        # Cameras and phones write MP4/MOV (and the like), never Matroska or disc images.
        if (
            _PERSONAL_NAME.match(stem)
            and not _RELEASE_MARKS.search(stem)
            and ext not in ("mkv", "iso", "mk3d", "ogm")
        ):
            return PERSONAL
    return None


_RELEASE_MARKS = re.compile(
    r"\b(?:\d{3,4}p|x26[45]|h\.?26[45]|hevc|bluray|blu-ray|web-?dl|webrip|hdtv|dvdrip|bdrip|"
    r"remux|proper|repack|multi|extended|unrated|imax)\b",
    re.IGNORECASE,
)


def _has_episode_marks(stem: str) -> bool:
    return bool(re.search(r"\bS\d{1,4}E\d{1,4}\b|\b\d{1,2}x\d{2,3}\b", stem, re.IGNORECASE))


# ------------------------------------------------------------------------------ class: folders

# Folders that say nothing about a title: library roots, mount points, home folders, download
# areas. A title is never taken from them, nor from any folder above them.
_GENERIC_FOLDERS = frozenset(
    {
        "", "home", "users", "root", "mnt", "media", "srv", "data", "volumes", "run", "net",
        "storage", "emulated", "sdcard", "nas", "share", "shares", "public", "library",
        "libraries", "video", "videos", "movies", "movie", "films", "film", "tv", "tv shows",
        "tvshows", "tv series", "series", "shows", "show", "anime", "animes", "cartoons",
        "kids", "downloads", "download", "torrents", "torrent", "complete", "completed",
        "incoming", "new", "done", "plex", "jellyfin", "emby", "kodi", "mythtv", "recordings",
        "tmp", "temp", "desktop", "documents", "unsorted", "misc", "watch",
        "to watch", "seed", "seeding", "usenet", "sabnzbd", "nzbget", "transmission",
        "qbittorrent", "deluge", "disk1", "disk2", "hdd", "external", "backup", "multimedia",
        "mediathek", "filme", "serien", "películas", "peliculas", "séries", "dvd", "bluray",
        "blu-ray", "cdrom", "cdrom0", "sr0", "disc", "disk", "usb", "optical",
    }
)  # fmt: skip
_SEASON_FOLDER = re.compile(
    r"^(?:season|series|saison|staffel|temporada|seizoen|stagione|sæson|säsong|sesong|sezon|"
    r"kausi|s)[ ._-]*(\d{1,4})$|^(specials?|season[ ._-]*0+)$",
    re.IGNORECASE,
)
# `03 - Title`, `Episode 05`, `E05`, `05`, `Ep. 5 - Title`: a name that is an episode of the
# folder's show, with no show title of its own.
_BARE_EPISODE = re.compile(
    r"^(?:(?:e|ep|episode|episodio|épisode|folge|aflevering|afl|capitulo|capítulo|jakso)"
    r"[ ._-]*)?(\d{1,4})(?:$|[ ._]*-?[ ._]*(?=[^\W\d]).*$)",
    re.IGNORECASE,
)
_BARE_SXE = re.compile(r"^s(\d{1,4})[ ._-]?e(\d{1,4})(?:[ ._-].*)?$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class _Folders:
    show: str | None
    """The nearest folder that can name the show or the film."""
    season: int | None
    """From a season folder right above the file (`Season 2`, `Staffel 2`, `S02`, `Specials`)."""
    extras: str | None
    """Why the file is bonus material, from a folder (Trailers, Featurettes, Sample…)."""
    extras_folder: str | None = None


_EXTRA_FOLDERS: dict[str, str] = {
    "sample": SAMPLE, "samples": SAMPLE, "trailer": TRAILER, "trailers": TRAILER,
    "extra": EXTRA, "extras": EXTRA, "featurette": EXTRA, "featurettes": EXTRA,
    "behind the scenes": EXTRA, "deleted scenes": EXTRA, "interviews": EXTRA, "bonus": EXTRA,
    "bonus features": EXTRA, "special features": EXTRA, "shorts": EXTRA, "scenes": EXTRA,
    "other": EXTRA,
}  # fmt: skip


def _folders(parts: list[str]) -> _Folders:
    """What the two or three folders right above the file say (never those above them)."""
    near = parts[-3:]
    season: int | None = None
    extras: str | None = None
    extras_folder: str | None = None
    show: str | None = None
    for depth, folder in enumerate(reversed(near)):
        key = " ".join(folder.casefold().split())
        if key in _GENERIC_FOLDERS or _looks_like_anchor(folder):
            break
        if key in _EXTRA_FOLDERS and extras is None:
            extras, extras_folder = _EXTRA_FOLDERS[key], folder
            continue
        match = _SEASON_FOLDER.match(folder.strip())
        if match is not None:
            if depth <= 1 and season is None:
                season = int(match[1]) if match[1] else 0
            continue
        show = folder
        break
    return _Folders(show, season, extras, extras_folder)


def _looks_like_anchor(folder: str) -> bool:
    """A drive (`C:`), a user's home (`alice` under /home is dropped before we get here)."""
    return bool(re.fullmatch(r"[A-Za-z]:\\?", folder))


def split_parts(local: str) -> list[str]:
    """The path's parts without its anchor; Windows paths (a Kodi on Windows) as Windows paths,
    and the folders above a library (home, mount point) dropped."""
    if re.match(r"^[A-Za-z]:[\\/]|^\\\\", local) or ("\\" in local and "/" not in local):
        win = PureWindowsPath(local)
        parts = list(win.parts[1:] if win.anchor else win.parts)
    else:
        posix = PurePosixPath(local)
        parts = list(posix.parts[1:] if posix.anchor else posix.parts)
        # /home/alice, /Users/alice, /media/alice/DISK, /run/media/alice/DISK, /mnt/DISK,
        # /Volumes/DISK, /storage/emulated/0: the anchor of somebody's files, never a title.
        lowered = [p.casefold() for p in parts]
        # A mount's or volume's own name is kept: a disc's label may be its title.
        for prefix, drop in (
            (("run", "media"), 3), (("media",), 2), (("home",), 2), (("users",), 2),
            (("mnt",), 1), (("volumes",), 1), (("storage", "emulated"), 3),
        ):  # fmt: skip
            if tuple(lowered[: len(prefix)]) == prefix and len(parts) > drop + 1:
                if prefix == ("media",) and lowered[1] in _GENERIC_FOLDERS:
                    break  # `/media/TV/Show/...` is a library, not a user's mount
                parts = parts[drop:]
                break
    return [p for p in parts if p not in ("", ".", "..")]


# ------------------------------------------------------------------------------------ parsing

_ORDINAL_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6,
}  # fmt: skip
# Mini-series: `Show.Part.1` / `Show Part Two` without a year is an episode of season 1.
_MINISERIES = re.compile(r"^(?P<title>.+?)[ ._-]+Part[ ._-]?(?P<n>\d{1,2}|[a-z]+)$", re.I)
_PART_OF = re.compile(r"[ ._-]Part[ ._-]?(\d{1,2})[ ._-]?of[ ._-]?\d{1,2}(?![0-9])", re.I)
_EPISODE_ONLY = re.compile(
    r"[ ._-](?:afl(?:evering)?|folge|capitulo|capítulo|cap|episode|épisode|episodio|episódio|"
    r"odcinek|afsnit|avsnitt|jakso|ep)\.?[ ._-]*(\d{1,4})\b",
    re.IGNORECASE,
)
# Scene's compact numbering of a multi-episode file: `Show.506.507.HDTV` (S05E06-E07).
_COMPACT_MULTI = re.compile(r"(?<=[ ._])(\d)(\d{2})(?:[ ._-]+\1(\d{2}))+(?=[ ._-]|$)")
_SEASON_WORD = re.compile(
    r"\b(?:season|saison|staffel|temporada|seizoen|stagione|sezon|sæson|saeson|säsong|sasong|"
    r"sesong|kausi|s)[ ._-]*(\d{1,2})\b",
    re.IGNORECASE,
)
_MARKER_IN_TITLE = re.compile(
    r"\b(?:staffel|temporada|seizoen|saison|stagione|sezon|sæson|saeson|säsong|sasong|sesong|"
    r"kausi|afl|"
    r"aflevering|folge|capitulo|capítulo|odcinek|afsnit|avsnitt|jakso)\b",
    re.IGNORECASE,
)
_ANIME_SEASON = re.compile(
    r"^(?P<title>.+?)\s+(?:(?P<ord>\d{1,2})(?:st|nd|rd|th)\s+Season|Season\s+(?P<n>\d{1,2})|"
    r"S(?P<s>\d{1,2}))$",
    re.IGNORECASE,
)
_YMD = re.compile(r"(?<!\d)((?:19|20)\d{2})[-._ ](0[1-9]|1[0-2])[-._ ](0[1-9]|[12]\d|3[01])(?!\d)")
# Day first (Europe, and both parsers' default); month first when the day cannot be a month.
_DMY = re.compile(
    r"(?<!\d)(0[1-9]|[12]\d|3[01])[-._ ](0[1-9]|[12]\d|3[01])[-._ ]((?:19|20)\d{2})(?!\d)"
)
_YYYYMMDD = re.compile(
    r"(?<=[ ._-])((?:19|20)\d{2})(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(?=[ ._-]|$)"
)
_YYMMDD = re.compile(r"(?<=[ ._-])(\d{2})(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(?=[ ._-]|$)")
_GENERIC_TITLES = frozenset(
    {"movie", "video", "film", "episode", "file", "sample", "trailer", "extra", "title", "mkv",
     "mp4", "avi", "vts", "index"}
)  # fmt: skip


def _ptt(name: str) -> dict[str, Any]:
    from PTT import parse_title

    # CJK fansubs write 【Title】 for [Title]: the same brackets to the parser.
    name = name.replace("【", "[").replace("】", "]")
    try:
        return dict(parse_title(name))
    except Exception as err:  # a third-party parser's bug must not cost the other answers
        log.warning("PTT failed on %r: %s: %s", name, type(err).__name__, err)
        return {}


def _guessit(name: str) -> dict[str, Any]:
    from guessit import guessit
    from guessit.api import GuessitException

    try:
        return dict(guessit(name))
    except (GuessitException, ValueError, TypeError, IndexError, KeyError) as err:
        log.warning("guessit failed on %r: %s: %s", name, type(err).__name__, err)
        return {}


def _ints(value: object) -> list[int]:
    items = value if isinstance(value, list) else [value]
    return [v for v in items if isinstance(v, int) and not isinstance(v, bool) and v >= 0]


def _clean_title(title: object) -> str | None:
    if not isinstance(title, str):
        return None
    # `Title.AKA.Other.Title`: the first of the titles is the one searched.
    title = re.split(r"[ ._]AKA[ ._]", title, maxsplit=1)[0]
    title = " ".join(title.replace("_", " ").split()).strip(" -–·([{")
    if not title or title.casefold() in _GENERIC_TITLES or not any(c.isalnum() for c in title):
        return None
    return title


def _valid_date(y: int, m: int, d: int) -> str | None:
    try:
        return dt.date(y, m, d).isoformat()
    except ValueError:
        return None


def _date_in(stem: str) -> str | None:
    """A daily show's air date: `2024.03.05`, `2024-03-05`, `05.03.2024`, `5 March 2024`, or
    scene's `20240305` and `240305`."""
    full = _full_date_in(stem)
    if full is not None:
        return full
    m = _YYYYMMDD.search(stem)
    if m is not None:
        return _valid_date(int(m[1]), int(m[2]), int(m[3]))
    m = _YYMMDD.search(stem)
    if m is not None:
        yy, mm, dd = (int(x) for x in m.groups())
        this_year = dt.date.today().year % 100
        return _valid_date((2000 if yy <= this_year + 1 else 1900) + yy, mm, dd)
    return None


_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
}
_DAY_MONTH_YEAR = re.compile(
    r"(?<![\w])(\d{1,2})(?:st|nd|rd|th)?[ ._-]+([a-z]{3})[a-z]*\.?[ ._-]+((?:19|20)\d{2})\b",
    re.IGNORECASE,
)
_MONTH_DAY_YEAR = re.compile(
    r"(?<![\w])([a-z]{3})[a-z]*\.?[ ._-]+(\d{1,2})(?:st|nd|rd|th)?,?[ ._-]+((?:19|20)\d{2})\b",
    re.IGNORECASE,
)


def _full_date_in(stem: str) -> str | None:
    """A date with a four-digit year (`2013-10-30`, `30.10.2013`, `30 October 2013`)."""
    for regex, order in ((_YMD, "ymd"), (_DMY, "dmy")):
        m = regex.search(stem)
        if m is not None:
            a, b, c = (int(x) for x in m.groups())
            if order == "ymd":
                return _valid_date(a, b, c)
            return _valid_date(c, b, a) or _valid_date(c, a, b)
    m = _DAY_MONTH_YEAR.search(stem)
    if m is not None and m[2].casefold() in _MONTHS:
        return _valid_date(int(m[3]), _MONTHS[m[2].casefold()], int(m[1]))
    m = _MONTH_DAY_YEAR.search(stem)
    if m is not None and m[1].casefold() in _MONTHS:
        return _valid_date(int(m[3]), _MONTHS[m[1].casefold()], int(m[2]))
    return None


def _title_before(stem: str, token: str) -> str | None:
    idx = stem.find(token)
    if idx <= 0:
        return None
    return _clean_title(re.sub(r"[._]", " ", stem[:idx]))


_MAX_NAME = 255
"""File systems name a file in at most 255 bytes; guessit's time grows faster than a name's
length (a 1,000-digit name costs it ~20 s), so longer names are cut to this, extension kept."""
_MAX_FOLDERS = 6
_MAX_PATH = 4096


def _capped(part: str) -> str:
    if len(part) <= _MAX_NAME:
        return part
    stem, dot, ext = part.rpartition(".")
    if dot and 0 < len(ext) <= 5:
        return stem[: _MAX_NAME - len(ext) - 1] + "." + ext
    return part[:_MAX_NAME]


def parse(path: str, *, check_extension: bool) -> Guess:
    """Read a film or an episode out of a path (no I/O, no network)."""
    shown, local = split_url(path)
    if local is None:
        return Guess(shown, reason=NOT_A_VIDEO)
    parts = split_parts(local[-_MAX_PATH:])
    if not parts:
        return Guess(shown, reason=NO_TITLE)
    name = _capped(parts[-1])
    folders = [_capped(p) for p in parts[-_MAX_FOLDERS - 1 : -1]]
    stem, dot, ext = name.rpartition(".")
    if not dot or not re.fullmatch(r"[A-Za-z0-9]{1,5}", ext):
        stem, ext = name, ""
    ext = ext.casefold()
    if (
        check_extension
        and ext
        and ext not in VIDEO_EXTENSIONS
        and re.fullmatch(r"[a-z][a-z0-9]{1,4}", ext)
    ):
        return Guess(shown, reason=NOT_A_VIDEO)
    # A disc's entry point is named by the disc's folder: `Movie (1999)/VIDEO_TS/VIDEO_TS.IFO`.
    if folders and (folders[-1].casefold(), stem.casefold(), ext) in _DISC_ENTRIES:
        label = folders[-2] if len(folders) >= 2 else ""
        if label and " ".join(label.casefold().split()) not in _GENERIC_FOLDERS:
            return _parse_name(shown, label, folders[:-2], local)
        return Guess(shown, reason=NO_TITLE)
    home = home_folder(local)
    reason = not_media(folders, stem, ext, home) if ext or check_extension else None
    if reason is not None:
        return Guess(shown, reason=reason)
    return _parse_name(shown, name, folders, local)


_EXTRA_SUFFIX = re.compile(
    r"-(?:(?P<trailer>trailer)|(?P<sample>sample)|"
    r"behindthescenes|deleted|featurette|interview|scene|short|other|extra)$",
    re.IGNORECASE,
)
_GUESSIT_OTHER = {"Trailer": TRAILER, "Sample": SAMPLE, "Extras": EXTRA}


def _parse_name(
    shown: str, name: str, folders: list[str], local: str, *, inner: bool = False
) -> Guess:
    stem = name.rsplit(".", 1)[0] if re.search(r"\.[A-Za-z0-9]{1,5}$", name) else name
    found = _guessit(name)
    ptt = _ptt(name)
    near = _folders(folders)

    title = _clean_title(ptt.get("title")) or _clean_title(found.get("title"))
    title = _with_country(title, ptt.get("country"), stem)
    year = _year(ptt.get("year")) or _year(found.get("year"))
    if year is not None and year > dt.date.today().year + 2 and title is not None:
        # `Blade.Runner.2049.mkv`: a number of the title, not a year yet to come.
        title, year = f"{title} {year}", None
    seasons = _ints(ptt.get("seasons"))
    episodes = _ints(ptt.get("episodes"))
    fansub = re.match(r"^\s*[\[【]", name) is not None
    g_type = found.get("type")
    g_seasons = _ints(found.get("season"))
    g_episodes = _ints(found.get("episode"))
    date: str | None = None

    # Class: extras, samples, trailers (guessit's tags, Plex's `-trailer` suffixes, folders).
    extra = _extra_reason(stem, found, title, near)

    # Class: season folders with bare episode names (`03 - Title`, `Episode 05`, `S02E05`).
    bare = None if _has_episode_marks(stem) else _BARE_EPISODE.match(stem)
    bare_sxe = _BARE_SXE.match(stem)
    from_folder = False
    if (bare or bare_sxe) and near.show is not None and (near.season is not None or bare_sxe):
        show = _folder_title(near.show)
        if show is not None:
            title, year = show
            from_folder = True
            if bare_sxe:
                seasons, episodes = [int(bare_sxe[1])], [int(bare_sxe[2])]
            else:
                assert bare is not None
                seasons, episodes = [], [int(bare[1])]
    elif bare is not None and near.season is not None:
        # `Season 1/Episode 05.mkv` with no show folder left: numbers, but no title.
        title, year, seasons, episodes = None, None, [near.season], [int(bare[1])]
        from_folder = True

    # Class: daily shows (dates of our own reading: PTT and guessit miss `YYMMDD`). A full
    # date wins over a stray number (`Show - 2013-10-30 - Title (1)`), not over `S01E02`.
    if not from_folder and (not episodes or not _has_episode_marks(stem)):
        date = _date_in(stem) if not episodes else _full_date_in(stem)
        if date is not None:
            episodes = []
        if date is not None:
            token = _date_token(stem)
            title = (_title_before(stem, token) if token else None) or title
            year = None
            seasons = []

    if not from_folder and date is None:
        # Class: multi-episode ranges and markers PTT misses (`1x02-1x03`, `.506.507.`,
        # `Staffel 2 Folge 3`, `S05 afl. 3`): guessit's numbers, when they extend PTT's.
        compact = _COMPACT_MULTI.search(stem) if not episodes else None
        if compact is not None:
            first = int(compact[2])
            last = int(compact.group(0)[-2:])
            if first < last <= first + 10:
                seasons, episodes = [int(compact[1])], list(range(first, last + 1))
                title = _title_before(stem, compact.group(0)) or title
        # guessit's numbers are taken unless they are a number of the title (`Blade Runner
        # 2049 (2017)` is no S2017E2049).
        words = (title or "").split()
        # A 4-digit number in the title is no `SSEE` (`Blade Runner 2049`); 3 digits after
        # a title are scene's short numbering (`the.simpsons.309.hdtv`).
        in_title = any(str(n) in words for n in [*g_episodes, *g_seasons]) or any(
            f"{sn}{en:02}" in words for sn in g_seasons for en in g_episodes if sn >= 10
        )
        last_word = words[-1].lstrip("0") if words else ""
        # `[Group] Title 05 [720p]`, `Title_05_[720p]`: the number after a fansub's title (a
        # plain `Apollo 13.mkv` keeps its number).
        underscored = "_" in stem and " " not in stem
        if (fansub or underscored) and not g_seasons and g_episodes:
            in_title = in_title and last_word != str(g_episodes[0])
        # `the.simpsons.309.hdtv`: scene's short numbering is followed by the release's tags;
        # `Mob Psycho 100.mkv` ends with a number of its title.
        for sn in g_seasons[:1]:
            for en in g_episodes[:1]:
                token = f"{sn}{en:02}"
                if token in words and (
                    en == 0 or not re.search(rf"[ ._]{token}[ ._-]+[^\W_]", stem)
                ):
                    in_title = True
        extends = len(g_episodes) > len(episodes) > 0 and g_episodes[: len(episodes)] == episodes
        if g_type == "episode" and g_episodes and (extends or not (in_title or episodes)):
            episodes, seasons = g_episodes, g_seasons or seasons
        if not episodes or not seasons:
            # Class: words for season and episode in other languages (`Staffel 2 Folge 3`,
            # `S05 afl. 3`, `Temporada 2 Capitulo 5`): the title is what comes before them.
            m = _EPISODE_ONLY.search(stem)
            s = _SEASON_WORD.search(stem)
            if m is not None and (seasons or s is not None or near.season is not None):
                episodes = [int(m[1])]
                if s is not None and s.start() < m.start():
                    seasons = [int(s[1])]
                    title = _title_before(stem, s.group(0)) or title
                else:
                    title = _title_before(stem, m.group(0)) or title
        # Class: mini-series `Part.1.of.6` (always an episode), `Part.1`, `Part Two` (when
        # nothing else makes it a film).
        part_of = _PART_OF.search(stem)
        if part_of is not None:
            seasons, episodes = [1], [int(part_of[1])]
            title = _title_before(stem, part_of.group(0)) or title
        if not episodes and year is None and title is not None:
            m = _MINISERIES.match(title)
            if m is not None:
                n = m["n"]
                number = int(n) if n.isdigit() else _ORDINAL_WORDS.get(n.casefold())
                if number is not None:
                    title, seasons, episodes = m["title"], [1], [number]

    # Class: Spanish releases number episodes `Cap.205` (season 2, episode 5).
    cap = re.search(r"\bCap[ ._]?(\d{1,2})(\d{2})\b", stem, re.IGNORECASE)
    if cap is not None and (not episodes or episodes == [int(cap[1] + cap[2])]):
        seasons, episodes = [int(cap[1])], [int(cap[2])]
    if fansub and not episodes and date is None and title is not None:
        # `[Group] Title 12 END [1080p]`: the last episode's number, then END.
        m = re.match(r"^(.+?)\s+(\d{1,4})(?:v\d)?\s+(?:END|FINAL)$", title, re.IGNORECASE)
        if m is not None:
            title, episodes = m[1], [int(m[2])]
    if fansub and not episodes and date is None:
        # `[Group] Title [BD][1080p][05]`: the number alone in brackets, after the tags.
        alone = [int(n) for n in re.findall(r"[\[【](\d{1,4})(?:v\d)?[\]】]", name)]
        alone = [n for n in alone if not 1900 <= n <= 2100 and n not in (480, 576, 720, 1080)]
        if len(alone) == 1:
            episodes = alone
    if title is not None and fansub:
        title = re.sub(r"\s*\((?:TV|OVA|ONA)\)\s*", " ", title).strip() or title
        if episodes:  # `Title 12 END`: the last episode, not a title ending in "End"
            end = rf"\s+0*{episodes[0]}(?:v\d)?\s+(?:END|FINAL|Fin)$"
            title = re.sub(end, "", title, flags=re.IGNORECASE) or title
    if title is not None and episodes and not seasons:
        # `[Group] Title 05 [720p]`, `Title_05_[720p]`, `Title #05`: the episode's number
        # written right after the title is not part of it.
        words = title.split()
        if len(words) > 1 and re.fullmatch(rf"#?0*{episodes[0]}(?:v\d)?", words[-1]):
            title = " ".join(words[:-1])
        # `(Group) Title - 05`: a release group in parentheses instead of brackets.
        group = re.match(r"^\(([^()]{1,40})\)\s*", name)
        if group is not None and title.startswith(group[1] + " "):
            title = title[len(group[1]) :].strip() or title
    if title is not None and episodes and seasons:
        # `the.simpsons.309.hdtv`: the compact number is not part of the show's title.
        words = title.split()
        if len(words) > 1 and words[-1] == f"{seasons[0]}{episodes[0]:02}":
            title = " ".join(words[:-1])
    if title is not None and (episodes or seasons):
        m = _MARKER_IN_TITLE.search(title)
        if m is not None and m.start() > 0:
            title = _clean_title(title[: m.start()]) or title

    # Class: anime seasons written into the title (`2nd Season`, `Season 2`, `S2`).
    if title is not None and episodes:
        m = _ANIME_SEASON.match(title)
        if m is not None:
            seasons = seasons or [int(m["ord"] or m["n"] or m["s"])]
            title = m["title"]

    # The show's folder lends its title (and year) only when the name has none.
    if title is None and near.show is not None and (episodes or date):
        show = _folder_title(near.show)
        if show is not None:
            title, year = show[0], year or show[1]
    if title is None and not episodes and date is None and near.show is not None:
        show = _folder_title(near.show)
        if show is not None and not _SEASON_FOLDER.match(near.show):
            title, year = show[0], year or show[1]
    # A film's or a show's year from its folder (`Movies/Title (2010)/Title.mkv`).
    if year is None and title is not None and near.show is not None and date is None:
        show = _folder_title(near.show)
        if show is not None and show[1] is not None and _same_title(show[0], title):
            year = show[1]
    # A season folder numbers `05 - Title`, not an absolute `105` (anime kept by season).
    if (
        episodes
        and not seasons
        and near.season is not None
        and date is None
        and (episodes[0] < 100 or from_folder)
    ):
        seasons = [near.season]
    if seasons and year is not None and seasons[0] == year:
        year = None  # `Show.S2024E05`: the season is a year, not the show's first year
    if title is not None and title.casefold() in _GENERIC_TITLES:
        title = None

    ids = ids_in(found, local)
    if extra is not None:
        if near.extras is not None and near.show is not None:
            title, year = _folder_title(near.show) or (title, year)
        return Guess(shown, title=title, year=year, reason=extra, ids=ids)
    if not episodes and date is None and year is None and not seasons and not inner:
        # Class: obfuscated or shortened names in a release's folder (`Movie.2019.1080p.
        # BluRay-GRP/mt-1080p.mkv`): the folder is the release's name.
        release = _release_folder(folders)
        if release is not None:
            index = len(folders) - 1 - folders[::-1].index(release)
            inside = _parse_name(shown, release, folders[:index], local, inner=True)
            if inside.type is MediaType.EPISODE or inside.year is not None:
                return inside
    if not episodes and date is None:
        if seasons and title is not None:
            return Guess(shown, title=title, year=year, season=seasons[0],
                         reason=NO_EPISODE_NUMBER, ids=ids)  # fmt: skip
        if title is None:
            return Guess(shown, reason=NO_TITLE, ids=ids)
        return Guess(shown, MediaType.MOVIE, title, year, ids=ids)
    if title is None:
        return Guess(
            shown,
            season=seasons[0] if seasons else None,
            episode=episodes[0] if episodes and seasons else None,
            episodes=tuple(episodes) if seasons else (),
            absolute=episodes[0] if episodes and not seasons else None,
            date=date,
            reason=NO_TITLE,
            ids=ids,
        )
    if date is not None:
        return Guess(shown, MediaType.EPISODE, title, year, date=date, ids=ids)
    eps = tuple(sorted(set(episodes)))
    if not seasons:
        return Guess(shown, MediaType.EPISODE, title, year, absolute=eps[0], ids=ids)
    return Guess(
        shown,
        MediaType.EPISODE,
        title,
        year,
        season=seasons[0],
        episode=eps[0],
        episodes=eps,
        ids=ids,
    )


def _with_country(title: str | None, country: object, stem: str) -> str | None:
    """`The.Office.US.S01E01`: the country written right after the title stays in it, as
    release managers keep it (it tells namesakes apart; the search knows what to do with it)."""
    if title is None or not isinstance(country, str) or not title.split():
        return title
    last = re.escape(title.split()[-1])
    code = re.escape(country)
    if re.search(rf"{last}[ ._]+\(?{code}\)?(?:[ ._\-\[]|$)", stem, re.IGNORECASE):
        return f"{title} {country.upper()}"
    return title


def _release_folder(folders: list[str]) -> str | None:
    """The folder right above the file when it is named like a release (quality tags, `S01E02`)."""
    if not folders:
        return None
    parent = folders[-1]
    if _RELEASE_MARKS.search(parent) or _has_episode_marks(parent):
        return parent
    return None


def _date_token(stem: str) -> str | None:
    for regex in (_YMD, _DMY, _DAY_MONTH_YEAR, _MONTH_DAY_YEAR, _YYYYMMDD, _YYMMDD):
        m = regex.search(stem)
        if m is not None:
            return m.group(0)
    return None


def _year(value: object) -> int | None:
    years = _ints(value)
    return years[0] if years and 1870 <= years[0] <= 2200 else None


def _folder_title(folder: str) -> tuple[str, int | None] | None:
    ptt = _ptt(folder)
    title = _clean_title(ptt.get("title"))
    year = _year(ptt.get("year"))
    if title is None or (title.isdigit() and year is None):  # `parts/1/file.mkv`: an index
        return None
    return title, year


def _same_title(a: str, b: str) -> bool:
    def key(text: str) -> str:
        return "".join(c for c in text.casefold() if c.isalnum())

    return key(a) == key(b)


def _extra_reason(
    stem: str, found: dict[str, Any], title: str | None, near: _Folders
) -> str | None:
    title_key = _key(title)
    others = found.get("other")
    for other in others if isinstance(others, list) else [others]:
        reason = _GUESSIT_OTHER.get(other) if isinstance(other, str) else None
        # The show "Extras" lives in a folder called Extras: that word is its title.
        if reason is not None and title_key != _key(other):
            return reason
    match = _EXTRA_SUFFIX.search(stem)
    if match is not None:
        return TRAILER if match["trailer"] else SAMPLE if match["sample"] else EXTRA
    if stem.casefold() in ("sample", "trailer"):
        return stem.casefold()
    if re.match(r"sample[-_. ]", stem, re.IGNORECASE):  # scene samples: `sample-grp-title`
        return SAMPLE
    # Bonus words after a film's year: `Title.2010.Teaser`, `Title (2010) Behind the Scenes`
    # (`The.Interview.2014` keeps its title; an episode's title may be "The Interview").
    named = re.search(r"(?<!\d)(?:19|20)\d{2}(?!\d)", stem)
    if named is not None and not _has_episode_marks(stem):
        bonus = _BONUS_WORDS.search(stem, named.end())
        if bonus is not None:
            return TRAILER if bonus["trailer"] else EXTRA
    # Anime bonus material: creditless openings and endings, promotional videos, menus.
    if re.search(r"[ ._-](?:NCOP|NCED|PV|CM|Menu|Creditless)(?:[ ._\d-]|$)", stem):
        return EXTRA
    if near.extras is not None and title_key != _key(near.extras_folder):
        return near.extras
    return None


_BONUS_WORDS = re.compile(
    r"(?<=[ ._-])(?:(?P<trailer>teaser|trailer)|featurette|behind[ ._-]the[ ._-]scenes|"
    r"making[ ._-]of|deleted[ ._-]scenes?|bloopers|gag[ ._-]reel|promo|interview)(?=[ ._-]|$)",
    re.IGNORECASE,
)


def _key(text: object) -> str:
    if not isinstance(text, str):
        return ""
    return "".join(c for c in text.casefold() if c.isalnum())
