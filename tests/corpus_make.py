"""Writes tests/recognition_corpus.tsv: names in the shapes public naming conventions produce.

Every shape below is written from a convention's documentation, not copied from anyone's test
fixtures: scene release rules (dots, `S01E02`, `1x02`, dates), the Sonarr/Radarr "standard"
and "Plex/Jellyfin" naming schemes, Kodi's and Plex's folder layouts (`Season 01`, `Movie
(Year)`, editions), fansub habits (`[Group] Title - 05 [1080p][CRC]`, CJK brackets), and the
default names of phone cameras, action cameras, drones, screen recorders and messengers. The
ground truth is what the shape means, so it is set by the template, not by any parser.

Run `python -m tests.corpus_make` to rewrite the file after editing the templates.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

OUT = Path(__file__).with_name("recognition_corpus.tsv")
FIELDS = ["cls", "path", "type", "title", "year", "season", "episodes", "absolute", "date"]

Row = dict[str, str]


def row(cls: str, path: str, kind: str, title: str = "", year: int | None = None,
        season: int | None = None, episodes: tuple[int, ...] = (), absolute: int | None = None,
        date: str = "") -> Row:  # fmt: skip
    return {
        "cls": cls,
        "path": path,
        "type": kind,
        "title": title,
        "year": "" if year is None else str(year),
        "season": "" if season is None else str(season),
        "episodes": ",".join(str(e) for e in episodes),
        "absolute": "" if absolute is None else str(absolute),
        "date": date,
    }


def dots(title: str) -> str:
    out = title.replace(" - ", " ").replace(":", "").replace("'", "").replace(",", "")
    return ".".join(out.split())


MOVIES: list[tuple[str, int]] = [
    ("The Matrix", 1999), ("Heat", 1995), ("Blade Runner 2049", 2017), ("Se7en", 1995),
    ("Kill Bill Vol. 2", 2004), ("Guardians of the Galaxy Vol. 3", 2023),
    ("John Wick Chapter 4", 2023), ("Dune Part Two", 2024),
    ("Harry Potter and the Deathly Hallows Part 1", 2010),
    ("Mission Impossible Dead Reckoning Part One", 2023), ("Back to the Future Part II", 1989),
    ("The Hunger Games Mockingjay Part 2", 2015), ("1917", 2019), ("2012", 2009),
    ("10 Cloverfield Lane", 2016), ("21 Jump Street", 2012), ("300", 2006),
    ("Apollo 13", 1995), ("Oppenheimer", 2023), ("Nope", 2022), ("Godzilla Minus One", 2023),
    ("Ocean's Eleven", 2001), ("Terminator 2 Judgment Day", 1991), ("Amélie", 2001),
    ("Les Misérables", 2012), ("WALL-E", 2008), ("Once Upon a Time in Hollywood", 2019),
    ("The Good the Bad and the Ugly", 1966), ("Crouching Tiger Hidden Dragon", 2000),
    ("Fantastic Beasts The Secrets of Dumbledore", 2022), ("Inception", 2010),
    ("Arrival", 2016), ("The Grand Budapest Hotel", 2014), ("Parasite", 2019),
    ("Spirited Away", 2001), ("Mad Max Fury Road", 2015), ("The Dark Knight", 2008),
    ("Everything Everywhere All at Once", 2022), ("No Country for Old Men", 2007),
    ("Pan's Labyrinth", 2006),
]  # fmt: skip

SUBTITLED: list[tuple[str, int]] = [
    ("Spider-Man - Into the Spider-Verse", 2018), ("Star Wars - The Last Jedi", 2017),
    ("Mission Impossible - Fallout", 2018), ("Pirates of the Caribbean - Dead Man's Chest", 2006),
    ("Indiana Jones - Raiders of the Lost Ark", 1981), ("Borat - Subsequent Moviefilm", 2020),
]  # fmt: skip

PARENS: list[tuple[str, int]] = [
    ("Birdman or (The Unexpected Virtue of Ignorance)", 2014),
    ("Dr. Strangelove or (How I Learned to Stop Worrying and Love the Bomb)", 1964),
]

EDITIONS = [
    ("Directors.Cut", "{edition-Director's Cut}", "Director's Cut"),
    ("EXTENDED", "{edition-Extended Edition}", "Extended Edition"),
    ("The.Final.Cut", "{edition-The Final Cut}", "The Final Cut"),
    ("REMASTERED", "{edition-Remastered}", "Remastered"),
    ("UNRATED", "{edition-Unrated}", "Unrated"),
    ("Theatrical.Cut", "{edition-Theatrical Cut}", "Theatrical Cut"),
]
EDITION_MOVIES = [("Blade Runner", 1982), ("Alien", 1979), ("Apocalypse Now", 1979),
                  ("Kingdom of Heaven", 2005), ("The Lord of the Rings The Two Towers", 2002),
                  ("Aliens", 1986)]  # fmt: skip

SCENE_TAILS = [
    "1080p.BluRay.x264-GRP",
    "720p.WEB-DL.DD5.1.H.264-GRP",
    "2160p.UHD.BluRay.x265.10bit.HDR-GRP",
    "1080p.AMZN.WEB-DL.DDP5.1.H.264-GRP",
    "BDRip.XviD-GRP",
    "DVDRip.x264-GRP",
]


def movies() -> list[Row]:
    rows: list[Row] = []
    for i, (title, year) in enumerate(MOVIES):
        tail = SCENE_TAILS[i % len(SCENE_TAILS)]
        rows.append(row("movie", f"{dots(title)}.{year}.{tail}.mkv", "movie", title, year))
        rows.append(
            row("movie", f"/srv/media/Movies/{title} ({year})/{title} ({year}) Bluray-1080p.mkv",
                "movie", title, year)
        )  # fmt: skip
        if i % 2 == 0:
            rows.append(row("movie", f"{title} ({year}) [1080p] [BluRay] [5.1].mp4", "movie",
                            title, year))  # fmt: skip
        if i % 3 == 0:
            rows.append(row("movie", f"/home/alice/Downloads/{title} {year} 720p WEB-DL H264 "
                            "AAC.mp4", "movie", title, year))  # fmt: skip
        if i % 4 == 1:
            rows.append(row("movie", f"/mnt/nas/films/{dots(title)}.{year}/{dots(title).lower()}"
                            f".{year}.1080p.mkv", "movie", title, year))  # fmt: skip
    for title, year in SUBTITLED:
        rows.append(row("movie", f"/data/Movies/{title} ({year})/{title} ({year}).mkv", "movie",
                        title, year))  # fmt: skip
        rows.append(row("movie", f"{dots(title)}.{year}.1080p.WEBRip.x264-GRP.mkv", "movie",
                        title, year))  # fmt: skip
    for title, year in PARENS:
        rows.append(row("movie", f"/media/Movies/{title} ({year})/{title} ({year}).mkv",
                        "movie", title, year))  # fmt: skip
    for i, (title, year) in enumerate(EDITION_MOVIES):
        scene, plex, _label = EDITIONS[i % len(EDITIONS)]
        rows.append(row("edition", f"{dots(title)}.{year}.{scene}.1080p.BluRay.x264-GRP.mkv",
                        "movie", title, year))  # fmt: skip
        rows.append(row("edition", f"/movies/{title} ({year})/{title} ({year}) {plex}.mkv",
                        "movie", title, year))  # fmt: skip
        _s2, _p2, label = EDITIONS[(i + 1) % len(EDITIONS)]
        rows.append(row("edition", f"{title} ({year}) - {label}.mkv", "movie", title, year))
    # `Title.AKA.Other.Title`: the first title is searched
    for title, other, year in [("Leon", "The Professional", 1994), ("Rocknrolla", "Rock N Rolla",
                               2008), ("Ghost in the Shell", "Kokaku Kidotai", 1995)]:  # fmt: skip
        rows.append(row("movie", f"{dots(title)}.AKA.{dots(other)}.{year}.1080p.BluRay.x264-GRP"
                        ".mkv", "movie", title, year))  # fmt: skip
    # a film whose title ends with a number, named without its year
    for title in ["Apollo 13", "District 9", "Ocean's 11", "Mob Psycho 100", "Rocky 4"]:
        rows.append(row("movie", f"{title}.mkv", "movie", title))
        rows.append(row("movie", f"{dots(title)}.1080p.BluRay.x264-GRP.mkv", "movie", title))
    # a number in the title that looks like a year to come
    for title in ["Blade Runner 2049", "Bad Boys 2099", "Robot 2077"]:
        rows.append(row("movie", f"{dots(title)}.mkv", "movie", title))
    # obfuscated or shortened file names inside a release's folder: the folder names it
    for i, (title, year) in enumerate(MOVIES[20:26]):
        short = "".join(w[0] for w in title.split()).lower()
        rows.append(row("release_folder", f"/downloads/complete/{dots(title)}.{year}."
                        f"{SCENE_TAILS[i % len(SCENE_TAILS)]}/{short}-1080p.mkv", "movie", title,
                        year))  # fmt: skip
    for i, (show, _year) in enumerate(SHOWS[:6]):
        s, e = 1 + i % 3, 2 + i
        rows.append(row("release_folder", f"/downloads/{dots(show)}.S{s:02}E{e:02}.1080p.WEB."
                        f"h264-GRP/{'abcdef0123456789'[i:i + 10]}.mkv", "episode", show, None, s,
                        (e,)))  # fmt: skip
    # a whole disc played from its entry point: named by its folder or its volume label
    for title, year in MOVIES[30:34]:
        rows.append(row("movie", f"/srv/Movies/{title} ({year})/VIDEO_TS/VIDEO_TS.IFO", "movie",
                        title, year))  # fmt: skip
        rows.append(row("movie", f"/srv/Movies/{title} ({year})/BDMV/index.bdmv", "movie", title,
                        year))  # fmt: skip
    # Windows paths of a Kodi on Windows
    for title, year in MOVIES[:8]:
        rows.append(row("windows", f"D:\\Movies\\{title} ({year})\\{title} ({year}).mkv",
                        "movie", title, year))  # fmt: skip
    return rows


SHOWS: list[tuple[str, int | None]] = [
    ("Breaking Bad", None), ("Doctor Who", 2005), ("Game of Thrones", None),
    ("The Expanse", None), ("Stranger Things", None), ("Mr. Robot", None),
    ("Star Trek Discovery", None), ("The Last of Us", None), ("Severance", None),
    ("House of the Dragon", None), ("Fargo", None), ("Brooklyn Nine-Nine", None),
    ("Grey's Anatomy", None), ("It's Always Sunny in Philadelphia", None),
    ("Law and Order Special Victims Unit", None), ("The 100", None), ("9-1-1", None),
    ("Battlestar Galactica", 2004), ("Shameless", 2011), ("The Bear", None),
    ("Better Call Saul", None), ("Only Murders in the Building", None), ("Ted Lasso", None),
    ("The Boys", None), ("Westworld", None), ("Dark", None), ("Succession", None),
    ("Cobra Kai", None), ("Sherlock", None), ("The Crown", None),
]  # fmt: skip

EP_TITLES = ["Pilot", "The Long Night", "Pain Killer", "Home", "The Beginning", "Winter Is Coming",
             "Red Letter Day", "Ozymandias", "Blue", "Chapter One"]  # fmt: skip


def episodes() -> list[Row]:
    rows: list[Row] = []
    for i, (show, year) in enumerate(SHOWS):
        s, e = 1 + i % 5, 1 + (i * 7) % 23
        ep = EP_TITLES[i % len(EP_TITLES)]
        name = show if year is None else f"{show} ({year})"
        sc = dots(show) + (f".{year}" if year else "")
        rows.append(row("episode", f"{sc}.S{s:02}E{e:02}.1080p.WEB.h264-GRP.mkv", "episode",
                        show, year, s, (e,)))  # fmt: skip
        rows.append(row("episode", f"{sc}.S{s:02}E{e:02}.{dots(ep)}.720p.HDTV.x264-GRP.mkv",
                        "episode", show, year, s, (e,)))  # fmt: skip
        rows.append(row("episode", f"/srv/tv/{name}/Season {s}/{name} - S{s:02}E{e:02} - {ep} "
                        "WEBDL-1080p.mkv", "episode", show, year, s, (e,)))  # fmt: skip
        if i % 2 == 0:
            rows.append(row("episode", f"{name} - {s}x{e:02} - {ep}.avi", "episode", show, year,
                            s, (e,)))  # fmt: skip
        if i % 3 == 0:
            rows.append(row("season_folder", f"/media/TV/{name}/Season {s:02}/{e:02} - {ep}.mkv",
                            "episode", show, year, s, (e,)))  # fmt: skip
            rows.append(row("season_folder", f"/media/TV/{name}/Season {s}/Episode {e:02}.mkv",
                            "episode", show, year, s, (e,)))  # fmt: skip
        if i % 3 == 1:
            rows.append(row("episode", f"/home/bob/Videos/{name}/S{s:02}E{e:02}.mkv", "episode",
                            show, year, s, (e,)))  # fmt: skip
        if i % 4 == 0:
            rows.append(row("windows", f"E:\\TV\\{name}\\Season {s}\\{name} - S{s:02}E{e:02}.mkv",
                            "episode", show, year, s, (e,)))  # fmt: skip
        if i % 5 == 0:
            rows.append(row("windows", f"\\\\NAS\\tv\\{name}\\Season {s:02}\\{e:02} - {ep}.mkv",
                            "episode", show, year, s, (e,)))  # fmt: skip
        # multi-episode files
        if i % 2 == 1:
            rows.append(row("multi", f"{sc}.S{s:02}E{e:02}E{e + 1:02}.1080p.WEB.h264-GRP.mkv",
                            "episode", show, year, s, (e, e + 1)))  # fmt: skip
        if i % 3 == 2:
            rows.append(row("multi", f"{name} - S{s:02}E{e:02}-E{e + 2:02} - {ep}.mkv", "episode",
                            show, year, s, (e, e + 1, e + 2)))  # fmt: skip
        if i % 4 == 3:
            rows.append(row("multi", f"{name} - {s}x{e:02}-{s}x{e + 1:02}.mkv", "episode", show,
                            year, s, (e, e + 1)))  # fmt: skip
        if i % 5 == 4:
            rows.append(row("multi", f"{sc}.{s}{e:02}.{s}{e + 1:02}.HDTV.x264-GRP.mkv", "episode",
                            show, year, s, (e, e + 1)))  # fmt: skip
    # scene's short numbering `SSEE` (3 digits) without markers
    for show, s, e in [("The Simpsons", 3, 9), ("Family Guy", 5, 12), ("South Park", 8, 4)]:
        rows.append(row("episode", f"{dots(show).lower()}.{s}{e:02}.hdtv-grp.avi", "episode",
                        show, None, s, (e,)))  # fmt: skip
    # a country written after the title stays in it (it tells namesakes apart)
    for show, country, s, e in [
        ("The Office", "US", 5, 14),
        ("Shameless", "US", 4, 12),
        ("Queer as Folk", "UK", 1, 3),
        ("Being Human", "US", 2, 6),
    ]:
        name = f"{show} {country}"
        rows.append(row("episode", f"{dots(show)}.{country}.S{s:02}E{e:02}.720p.HDTV.x264-GRP"
                        ".mkv", "episode", name, None, s, (e,)))  # fmt: skip
        rows.append(row("episode", f"/srv/tv/{show} ({country})/Season {s}/{show} ({country}) - "
                        f"S{s:02}E{e:02}.mkv", "episode", name, None, s, (e,)))  # fmt: skip
    # a show's year kept apart from its numbers
    for show, year, n in [("Teen Wolf", 2011, 17), ("Hawaii Five-0", 2010, 5)]:
        rows.append(row("episode", f"{show} ({year}) - S02E{n:02}.mkv", "episode", show, year,
                        2, (n,)))  # fmt: skip
        rows.append(row("episode", f"{dots(show)}.{year}.S01E{n:02}.720p.HDTV.x264-GRP.mkv",
                        "episode", show, year, 1, (n,)))  # fmt: skip
    # mini-series parts
    for show in ["Chernobyl", "The Night Of", "Band of Brothers", "Olive Kitteridge"]:
        for n in (1, 3):
            rows.append(row("miniseries", f"{dots(show)}.Part.{n}.1080p.WEB.h264-GRP.mkv",
                            "episode", show, None, 1, (n,)))  # fmt: skip
    rows.append(row("miniseries", "The.Pacific.Part.Two.720p.HDTV.x264-GRP.mkv", "episode",
                    "The Pacific", None, 1, (2,)))  # fmt: skip
    # non-English season/episode markers
    rows += [
        row("foreign", "La Casa de Papel - Temporada 2 Capitulo 5.mkv", "episode",
            "La Casa de Papel", None, 2, (5,)),
        row("foreign", "Elite.Temporada.3.Capitulo.4.720p.mkv", "episode", "Elite", None, 3, (4,)),
        row("foreign", "/media/Series/Vis a Vis/Temporada 1/Vis a Vis 1x07.mkv", "episode",
            "Vis a Vis", None, 1, (7,)),
        row("foreign", "Flikken Maastricht S05 afl. 3.mkv", "episode", "Flikken Maastricht",
            None, 5, (3,)),
        row("foreign", "/media/Series/Baantjer/Seizoen 2/Baantjer afl. 4.mkv", "episode",
            "Baantjer", None, 2, (4,)),
        row("foreign", "Dark.Staffel.2.Folge.3.German.1080p.mkv", "episode", "Dark", None, 2,
            (3,)),
        row("foreign", "Engrenages.Saison.3.Episode.2.FRENCH.720p.mkv", "episode",
            "Engrenages", None, 3, (2,)),
        row("foreign", "Gomorra.Stagione.2.Episodio.6.ITA.720p.mkv", "episode", "Gomorra", None,
            2, (6,)),
        row("foreign", "Rojst.Sezon.1.Odcinek.3.PL.1080p.mkv", "episode", "Rojst", None, 1, (3,)),
        row("foreign", "Borgen.Saeson.2.Afsnit.4.DANISH.720p.mkv", "episode", "Borgen", None,
            2, (4,)),
        row("foreign", "Bron.Broen.Sasong.3.Avsnitt.8.SWEDISH.mkv", "episode", "Bron Broen",
            None, 3, (8,)),
        # Spanish releases: `Cap.SEE`
        row("foreign", "Aguila Roja - Temporada 3 [HDTV][Cap.307][Spanish].avi", "episode",
            "Aguila Roja", None, 3, (7,)),
        row("foreign", "Cuentame Como Paso [HDTV 720p][Cap.1812].mkv", "episode",
            "Cuentame Como Paso", None, 18, (12,)),
        row("foreign", "El Ministerio del Tiempo [HDTV][Cap.204].mkv", "episode",
            "El Ministerio del Tiempo", None, 2, (4,)),
    ]  # fmt: skip
    # mini-series `Part.N.of.M`
    for show, n, m in [("The Blue Planet", 2, 8), ("Roots", 3, 4), ("Planet Earth", 5, 11)]:
        rows.append(row("miniseries", f"{dots(show)}.Part.{n}.of.{m}.720p.HDTV.x264-GRP.mkv",
                        "episode", show, None, 1, (n,)))  # fmt: skip
    return rows


DAILY = ["The Daily Show", "Last Week Tonight with John Oliver", "The Late Show with Stephen "
         "Colbert", "Jimmy Kimmel Live", "Conan", "The Tonight Show Starring Jimmy Fallon",
         "Real Time with Bill Maher", "WWE Raw"]  # fmt: skip


def daily() -> list[Row]:
    rows: list[Row] = []
    for i, show in enumerate(DAILY):
        y, m, d = 2019 + i % 6, 1 + (i * 5) % 12, 1 + (i * 9) % 28
        iso = f"{y}-{m:02}-{d:02}"
        rows.append(row("daily", f"{dots(show)}.{y}.{m:02}.{d:02}.Guest.Name.720p.WEB.h264-GRP"
                        ".mkv", "episode", show, None, date=iso))  # fmt: skip
        rows.append(row("daily", f"/srv/tv/{show}/Season {y}/{show} - {iso} - Guest Name.mkv",
                        "episode", show, None, date=iso))  # fmt: skip
        if i % 3 == 0:
            rows.append(row("daily", f"/srv/tv/{show}/Season {y}/{show} ({iso}) Guest.mkv",
                            "episode", show, None, date=iso))  # fmt: skip
        if i % 2 == 0:
            rows.append(row("daily", f"{dots(show)}.{y % 100:02}{m:02}{d:02}.Guest.720p.HDTV"
                            ".x264-GRP.mkv", "episode", show, None, date=iso))  # fmt: skip
        if i % 2 == 1:
            rows.append(row("daily", f"{show} {d:02}.{m:02}.{y}.mp4", "episode", show, None,
                            date=iso))  # fmt: skip
            rows.append(row("daily", f"{dots(show).lower()}.{y}{m:02}{d:02}.hdtv.x264-grp.mkv",
                            "episode", show, None, date=iso))  # fmt: skip
        month = ["January", "February", "March", "April", "May", "June", "July", "August",
                 "September", "October", "November", "December"][m - 1]  # fmt: skip
        rows.append(row("daily", f"{show} - {d} {month} {y} - Guest Name (1).mkv", "episode",
                        show, None, date=iso))  # fmt: skip
        if d > 12:  # month first, told apart because the day cannot be a month
            rows.append(row("daily", f"{dots(show)}.{m:02}.{d:02}.{y}.HDTV.x264-GRP.mkv",
                            "episode", show, None, date=iso))  # fmt: skip
    return rows


ANIME: list[str] = [
    "Frieren Beyond Journey's End",
    "Jujutsu Kaisen",
    "Spy x Family",
    "Chainsaw Man",
    "Oshi no Ko",
    "Mushoku Tensei",
    "Vinland Saga",
    "Bocchi the Rock!",
    "Dandadan",
    "Kaguya-sama Love Is War",
    "Made in Abyss",
    "Blue Lock",
]
GROUPS = ["SubsPlease", "Erai-raws", "HorribleSubs", "Judas", "ASW", "EMBER", "Commie", "GJM"]


def anime() -> list[Row]:
    rows: list[Row] = []
    for i, title in enumerate(ANIME):
        g = GROUPS[i % len(GROUPS)]
        n = 1 + (i * 5) % 24
        rows.append(row("anime", f"[{g}] {title} - {n:02} (1080p) [A1B2C3D4].mkv", "episode",
                        title, absolute=n))  # fmt: skip
        rows.append(row("anime", f"[{g}] {title} - {n:02} [720p].mkv", "episode", title,
                        absolute=n))  # fmt: skip
        rows.append(row("anime", f"[{g}] {title} - {n:02}v2 [1080p][HEVC].mkv", "episode",
                        title, absolute=n))  # fmt: skip
        if i % 2 == 0:
            rows.append(row("anime", f"[{g}] {title} S2 - {n:02} (1080p) [E1F2A3B4].mkv",
                            "episode", title, None, 2, (n,)))  # fmt: skip
            rows.append(row("anime", f"[{g}] {title} Season 3 - {n:02} [1080p].mkv",
                            "episode", title, None, 3, (n,)))  # fmt: skip
        else:
            rows.append(row("anime", f"[{g}] {title} 2nd Season - {n:02} [1080p].mkv",
                            "episode", title, None, 2, (n,)))  # fmt: skip
            rows.append(row("anime", f"[{g}] {title} 3rd Season - {n:02} [720p].mkv",
                            "episode", title, None, 3, (n,)))  # fmt: skip
        rows.append(row("anime", f"/home/alice/Anime/{title}/[{g}] {title} - {n:02} [1080p].mkv",
                        "episode", title, absolute=n))  # fmt: skip
        rows.append(row("anime", f"[{g}] {title} - S01E{n:02} [1080p Multiple Subtitle].mkv",
                        "episode", title, None, 1, (n,)))  # fmt: skip
    # long-running shows with three- and four-digit absolute numbers
    for title, n in [("One Piece", 1071), ("Detective Conan", 1102), ("Naruto Shippuden", 157),
                     ("Bleach", 205), ("Boruto Naruto Next Generations", 293),
                     ("Dragon Ball Super", 104)]:  # fmt: skip
        rows.append(row("anime", f"[SubsPlease] {title} - {n} (1080p) [0F1E2D3C].mkv",
                        "episode", title, absolute=n))  # fmt: skip
        rows.append(row("anime", f"[Group] {title} - {n} [720p].mkv", "episode", title,
                        absolute=n))  # fmt: skip
    # titles with numbers and subtitles after " - "
    rows += [
        row("anime", "[SubsPlease] 86 - Eighty Six - 05 (1080p) [12345678].mkv", "episode",
            "86 - Eighty Six", absolute=5),
        row("anime", "[Group] 86 - Eighty Six - 18 [720p].mkv", "episode", "86 - Eighty Six",
            absolute=18),
        row("anime", "[Group] Mob Psycho 100 - 07 [1080p].mkv", "episode", "Mob Psycho 100",
            absolute=7),
        row("anime", "[Group] Mob Psycho 100 III - 04 [1080p].mkv", "episode",
            "Mob Psycho 100 III", absolute=4),
        row("anime", "[Group] Steins;Gate 0 - 12 [1080p].mkv", "episode", "Steins;Gate 0",
            absolute=12),
        row("anime", "[Group] Re Zero - Starting Life in Another World - 05 [1080p].mkv",
            "episode", "Re Zero - Starting Life in Another World", absolute=5),
        row("anime", "[Group] Code Geass - Lelouch of the Rebellion - 09 [BD 1080p].mkv",
            "episode", "Code Geass - Lelouch of the Rebellion", absolute=9),
        row("anime", "[Group] Gintama - 201 [DVD 480p].mkv", "episode", "Gintama", absolute=201),
        row("anime", "[Group] Hunter x Hunter (2011) - 148 [1080p].mkv", "episode",
            "Hunter x Hunter", 2011, absolute=148),
        row("anime", "[Group] Fullmetal Alchemist Brotherhood - 064 [BD 1080p].mkv", "episode",
            "Fullmetal Alchemist Brotherhood", absolute=64),
        row("anime", "[Group] Tokyo Ghoul Root A - 03 [720p].mkv", "episode", "Tokyo Ghoul Root A",
            absolute=3),
        row("anime", "[Group] Attack on Titan - The Final Season - 05 [1080p].mkv", "episode",
            "Attack on Titan - The Final Season", absolute=5),
    ]  # fmt: skip
    # CJK fansub layouts
    cjk = [
        ("[桜都字幕组][Spy x Family][05][1080P][简繁内封].mp4", "Spy x Family", 5),
        ("【喵萌奶茶屋】★04月新番★[Oshi no Ko][07][1080p][简日双语].mp4", "Oshi no Ko", 7),
        ("[LoliHouse] Kusuriya no Hitorigoto - 12 [WebRip 1080p HEVC-10bit AAC][简繁内封字幕].mkv",
         "Kusuriya no Hitorigoto", 12),
        ("[北宇治字幕组] Sousou no Frieren [09][WebRip][HEVC_AAC][简日内嵌].mp4",
         "Sousou no Frieren", 9),
        ("[Nekomoe kissaten][Blue Lock][14][1080p][JPSC].mp4", "Blue Lock", 14),
        ("[爱恋字幕社][Dandadan][03][1080P][MP4][GB].mp4", "Dandadan", 3),
        ("[ANi] Made in Abyss - 10 [1080P][Baha][WEB-DL][AAC AVC][CHT].mp4", "Made in Abyss", 10),
        ("【幻樱字幕组】【Chainsaw Man】【11】【BIG5_MP4】【1920X1080】.mp4", "Chainsaw Man", 11),
    ]  # fmt: skip
    for name, title, n in cjk:
        rows.append(row("anime", name, "episode", title, absolute=n))
    # fansubs that write the number right after the title, without " - "
    for i, title in enumerate(ANIME[:6]):
        n = 3 + i * 4
        rows.append(row("anime", f"[{GROUPS[i]}] {title} {n:02} [720p].mkv", "episode", title,
                        absolute=n))  # fmt: skip
    # the number alone in brackets after the tags; `END` on the last episode; `(TV)` tags
    for i, title in enumerate(ANIME[6:10]):
        n = 9 + i
        rows.append(row("anime", f"[{GROUPS[i]}] {title} [BD][1080p][{n:02}].mkv", "episode",
                        title, absolute=n))  # fmt: skip
        rows.append(row("anime", f"[{GROUPS[i]}] {title} {n + 3:02} END [1080p].mkv",
                        "episode", title, absolute=n + 3))  # fmt: skip
        rows.append(row("anime", f"[{GROUPS[i]}] {title} (TV) - {n:02} [720p].mkv", "episode",
                        title, absolute=n))  # fmt: skip
    # underscores for spaces, `#NN`, a group in parentheses
    for i, title in enumerate(ANIME[2:6]):
        n = 2 + i * 3
        g = GROUPS[i + 2]
        rows.append(row("anime", f"{title.replace(' ', '_')}_{n:02}_[1080p].mkv", "episode",
                        title, absolute=n))  # fmt: skip
        rows.append(row("anime", f"[{g}] {title} #{n:02} [720p].mkv", "episode", title,
                        absolute=n))  # fmt: skip
        rows.append(row("anime", f"({g}) {title} - {n:02} [1080p].mkv", "episode", title,
                        absolute=n))  # fmt: skip
    # `Show (2014) - 017`: the year is not a season
    rows.append(row("anime", "Arslan Senki (2015) - 017.mkv", "episode", "Arslan Senki", 2015,
                    absolute=17))  # fmt: skip
    rows.append(row("anime", "/media/Anime/Dororo (2019)/Dororo (2019) - 021.mkv", "episode",
                    "Dororo", 2019, absolute=21))  # fmt: skip
    # absolute numbers kept in a season folder
    rows.append(row("anime", "/media/Anime/Bleach/Season 02/Bleach - 105 - Title.mkv", "episode",
                    "Bleach", absolute=105))  # fmt: skip
    rows.append(row("anime", "/media/Anime/Gintama/Season 3/[Group] Gintama - 150 [720p].mkv",
                    "episode", "Gintama", absolute=150))  # fmt: skip
    return rows


def not_media() -> list[Row]:
    # Default names of cameras and recorders (their documented patterns).
    names = [
        "VID_20230704_201512.mp4",  # Android AOSP camera
        "VID_20221231_235959_123.mp4",
        "/storage/emulated/0/DCIM/Camera/VID_20240101_000102.mp4",
        "PXL_20230704_201512345.mp4",  # Pixel
        "PXL_20240215_093011812.TS.mp4",
        "IMG_1234.MOV",  # iPhone
        "/home/alice/Pictures/iPhone/IMG_0042.MOV",
        "IMG_20230704_201512.mp4",
        "20230704_201512.mp4",  # Samsung
        "/home/alice/Pictures/Camera/20220815_140233.mp4",
        "GX010123.MP4",  # GoPro HERO6+
        "GH010042.MP4",
        "GOPR0042.MP4",  # older GoPro
        "GP010042.MP4",
        "DJI_0042.MP4",  # DJI drones
        "DJI_20230704201512_0001_D.MP4",
        "MVI_1234.MOV",  # Canon
        "MVI_0001.MP4",
        "DSC_0001.MOV",  # Nikon
        "DSCF0001.MOV",  # Fujifilm
        "C0001.MP4",  # Sony
        "P1000123.MOV",  # Panasonic
        "MAH00012.MP4",  # Sony Handycam
        "00001.MTS",  # AVCHD camcorder
        "/media/alice/CAMCORDER/PRIVATE/AVCHD/BDMV/STREAM/00012.MTS",
        "Screen Recording 2024-03-01 at 10.15.22.mov",  # macOS
        "Screen Recording 2024-03-01 at 10.15.22 AM.mov",
        "/home/alice/Desktop/Screen Recording 2023-11-20 at 09.01.59.mov",
        "Screencast from 2024-03-01 10-15-22.webm",  # GNOME
        "Screencast from 03-01-2024 10:15:22 AM.webm",
        "Screen Recording 2024-03-01 101522.mp4",  # Windows Snipping Tool
        "/home/alice/Videos/Captures/Desktop 2024.03.01 - 10.15.22.01.mp4",  # Xbox Game Bar
        "2023-07-04 20-15-12.mkv",  # OBS default
        "/home/alice/Videos/2024-01-05 09-30-00.mp4",
        "Replay 2023-07-04 20-15-12.mkv",  # OBS replay buffer
        "simplescreenrecorder-2024-03-01_10.15.22.mkv",
        "kooha-2024-03-01-10-15-22.mp4",
        "vokoscreenNG-2024-03-01_10-15-22.mkv",
        "Peek 2024-03-01 10-15.webm",
        "GMT20240301-101522_Recording_1920x1080.mp4",  # Zoom cloud
        "/home/alice/Documents/Zoom/2024-03-01 10.15.22 Weekly Sync/video1234567890.mp4",
        "zoom_0.mp4",
        "Meeting Recording 2024-03-01.mp4",  # Teams
        "VID-20230704-WA0003.mp4",  # WhatsApp
        "/home/alice/WhatsApp Video/VID-20240101-WA0012.mp4",
        "video_2024-03-01_10-15-22.mp4",  # Telegram Desktop
        "signal-2024-03-01-101522.mp4",  # Signal
        "signal-2024-03-01-10-15-22-123.mp4",
        "received_1234567890123456.mp4",  # Messenger
        "FB_VID_1234567890123456789.mp4",
        "snapchat-1234567890.mp4",
        "RPReplay_Final1677000000.mp4",  # iOS screen recording
        "Screen_Recording_20240301-101522_Chrome.mp4",  # Samsung screen recorder
        "screen-20240301-101522.mp4",
        "Record_2024-03-01-10-15-22.mp4",
        "IMG_E0042.MOV",  # iPhone, edited
        "20230704_201512_F.MP4",  # dashcam, front
        "Screenrecorder-2024-03-01-10-15-22-123.mp4",
        "Meeting in General-20240301_101522-Meeting Recording.mp4",  # Teams
        "abc-defg-hij (2024-03-01 at 10 15 GMT-8).mp4",  # Meet
        "Webcam-2024-03-01-101522.webm",
        "Movie on 3-1-24 at 10.15 AM.mov",  # Photo Booth
        "WhatsApp Video 2024-03-01 at 10.15.22.mp4",  # WhatsApp desktop
        "InShot_20240301_101522.mp4",
        "/home/alice/Videos/Desktop 2024.03.01 - 10.15.22.01.DVR.mp4",  # ShadowPlay
        # disc structures
        "/media/dvd/VIDEO_TS/VTS_02_1.VOB",
        "/movies/The Matrix (1999)/VIDEO_TS/VTS_01_1.VOB",
        "/movies/Heat (1995)/BDMV/STREAM/00001.m2ts",
        "/media/bluray/BDMV/STREAM/00800.m2ts",
        "VIDEO_TS/VTS_01_0.VOB",
        "BDMV/STREAM/00001.m2ts",
        "/mnt/disc/AVCHD/BDMV/STREAM/00000.MTS",
        "/media/dvd/VIDEO_TS/VIDEO_TS.VOB",  # the disc's menu
        "/movies/Alien (1979)/BDMV/BACKUP/index.bdmv",
        "/movies/Alien (1979)/VIDEO_TS/VTS_01_0.IFO",
        # personal titles with a year, in personal folders
        "/home/alice/Videos/Birthday 2019.mp4",
        "Videos/Birthday 2019.mp4",
        "/home/bob/Videos/Wedding 2015.mov",
        "/home/bob/Pictures/Holiday 2018/Beach.mp4",
        "/home/alice/Videos/Family/Christmas 2021.mp4",
        "/home/alice/Videos/Graduation 2022.mov",
        "/home/alice/Desktop/kids soccer 2023.mp4",
        "/Users/alice/Movies/Birthday 2019.mov",  # macOS keeps a user's videos in ~/Movies
        "/Users/bob/Movies/Trip to Lisbon 2022.mp4",
        "C:\\Users\\bob\\Videos\\Graduation 2021.mp4",
        "/home/alice/Videos/Screencasts/demo.webm",
        "/home/alice/Videos/Screen Recordings/meeting notes.mp4",
    ]
    return [row("not_media", n, "unknown") for n in names]


def extras() -> list[Row]:
    names = [
        "/movies/Heat (1995)/Trailers/Heat Teaser.mkv",
        "/movies/Heat (1995)/Heat (1995)-trailer.mkv",
        "/movies/Heat (1995)/Featurettes/Making Of.mkv",
        "/movies/Heat (1995)/Behind The Scenes/Shooting the Bank.mkv",
        "The.Matrix.1999.1080p.BluRay.x264-GRP.sample.mkv",
        "/tv/Fargo/Season 1/Sample/fargo.s01e01.sample.mkv",
        "/movies/Alien (1979)/Extras/Deleted Scene 1.mkv",
        "/movies/Alien (1979)/Alien (1979)-deleted.mkv",
        "sample-heat.1995.1080p.bluray.x264-grp.mkv",  # scene samples, prefixed
        "Heat.1995.Teaser.Trailer.1080p.mkv",
        "Alien (1979) Behind the Scenes.mkv",
        "Heat.1995.Making.Of.720p.mkv",
        "/movies/Heat (1995)/Other/Interview with the director.mkv",  # Plex's 'Other' extras
        "[SubsPlease] Frieren - NCOP 01 [1080p].mkv",  # anime creditless opening
        "[Judas] Chainsaw Man - NCED [1080p].mkv",
        "[ASW] Oshi no Ko - PV 02 [1080p].mkv",
        "[Group] Blue Lock - Menu [BD 1080p].mkv",
    ]
    return [row("extra", n, "unknown") for n in names]


def all_rows() -> list[Row]:
    return movies() + episodes() + daily() + anime() + not_media() + extras()


def main() -> int:
    rows = all_rows()
    with OUT.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, FIELDS, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} rows -> {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
