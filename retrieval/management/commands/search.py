"""Search the catalog from the command line."""

from __future__ import annotations

import json
import time

from django.core.management.base import BaseCommand, CommandError

from catalog.models import Video, VideoStatus
from retrieval.compose import NoReference
from retrieval.encoders import get_text_encoder, text_encoder_loaded
from retrieval.params import ParameterError, parse_request
from retrieval.search import search
from retrieval.serialize import response_json


def clock(seconds: float) -> str:
    """Format seconds as m:ss.s."""
    minutes, rest = divmod(max(seconds, 0.0), 60)
    return f"{int(minutes)}:{rest:04.1f}"


def bracketed(moment) -> str:
    """Return a moment's snippet with its highlighted spans in [brackets]."""
    text, out, at = moment.snippet, [], 0
    for start, end in moment.highlights:
        out += [text[at:start], "[", text[start:end], "]"]
        at = end
    return "".join(out) + text[at:]


class Command(BaseCommand):
    help = "Run a hybrid search and print ranked videos with their best moments."

    def add_arguments(self, parser) -> None:
        parser.add_argument("query", help="What to look for; with --like, the change to make.")
        parser.add_argument("--like", default="",
                            help="A video id: find videos like it, changed as the query says "
                                 "(a composed query; the video itself is left out).")
        parser.add_argument("--k", default="5")
        parser.add_argument("--profile", default="",
                            help="A named fusion profile (default: the API's default).")
        parser.add_argument("--fusion", default="",
                            help="arithmetic | geometric | harmonic | rrf (overrides the profile)")
        parser.add_argument("--normalization", default="")
        parser.add_argument("--weights", default="")
        parser.add_argument("--min-tier", default="", help="high | medium | low")
        parser.add_argument("--all-moments", action="store_true",
                            help="Also print low-tier moments (hidden by default).")
        parser.add_argument("--signals", default="", help="e.g. bm25 or text (default: all)")
        parser.add_argument("--backend", default="default")
        parser.add_argument("--explain", action="store_true")
        parser.add_argument("--json", action="store_true")
        parser.add_argument("--all", action="store_true", help="Include unpublished videos.")
        parser.add_argument("--facets", default="",
                            help="Count the result set's videos per value, e.g. "
                                 "tags,language,kind,duration.")
        parser.add_argument("--no-typos", action="store_true",
                            help="Match query terms exactly (no BM25 typo tolerance).")

    def handle(self, *args, **opts) -> None:
        params = {"q": opts["query"], "k": opts["k"], "fusion": opts["fusion"],
                  "normalization": opts["normalization"], "weights": opts["weights"],
                  "signals": opts["signals"], "explain": str(opts["explain"]),
                  "profile": opts["profile"], "min_tier": opts["min_tier"],
                  "like": opts["like"], "facets": opts["facets"],
                  "typos": str(not opts["no_typos"])}
        try:
            request = parse_request(params, published_default=None if opts["all"] else True,
                                    backend=opts["backend"])
        except ParameterError as exc:
            raise CommandError(str(exc)) from exc
        self._check_reference(request.like, opts["all"])
        load_ms = self._load_models(request)
        try:
            response = search(request)
        except NoReference as exc:
            raise CommandError(str(exc)) from exc
        if opts["json"]:
            self.stdout.write(json.dumps(response_json(response), indent=2))
            return
        self._print(response, opts["all_moments"])
        if load_ms is not None:
            self.stdout.write(f"(text model loaded in {load_ms:.0f} ms, before the search)")

    @staticmethod
    def _check_reference(video_id: str, everything: bool) -> None:
        """Refuse a --like video that is unknown, or unpublished without --all."""
        if not video_id:
            return
        videos = Video.objects.filter(pk=video_id)
        if not everything:
            videos = videos.filter(published=True, status=VideoStatus.READY)
        if not videos.exists():
            hint = "" if everything else " (or not published and ready: add --all)"
            raise CommandError(f"No video with id {video_id}{hint}.")

    @staticmethod
    def _load_models(request) -> float | None:
        """Load the text model ahead of the search; return how long it took (None: loaded)."""
        if "text" not in request.signals or text_encoder_loaded():
            return None
        started = time.perf_counter()
        get_text_encoder()
        return (time.perf_counter() - started) * 1000

    def _print(self, response, all_moments: bool = False) -> None:
        like = f" like {response.request.like}" if response.request.like else ""
        self.stdout.write(self.style.MIGRATE_HEADING(
            f'"{response.request.query}"{like}: {response.total} video(s), '
            f"{response.timings_ms['total']:.0f} ms"))
        for rank, match in enumerate(response.results, 1):
            self.stdout.write(f"{rank}. {match.video.title}  (score {match.score:.3f}, "
                              f"{match.tier} match)")
            sure = [m for m in match.moments if all_moments or m.tier != "low"]
            for moment in sure or match.moments[:1]:
                self.stdout.write(f"     {clock(moment.start)}–{clock(moment.end)} "
                                  f"[{moment.kind}] {bracketed(moment)}")
                for name, s in (moment.explain or {}).items():
                    if isinstance(s, dict):
                        self.stdout.write(f"         {name}: raw {s['raw']:.4f} → "
                                          f"{s['normalized']:.4f} (rank {s['rank']})")
                    else:
                        self.stdout.write(f"         {name}: {s:g}")
        if response.did_you_mean:
            self.stdout.write(f'Did you mean "{response.did_you_mean}"?')
        if response.fuzzy:
            self.stdout.write(f"(typo-tolerant terms: {', '.join(response.fuzzy)})")
        for name, values in (response.facets or {}).items():
            counts = ", ".join(f"{v.get('label', v['value'])} {v['count']}" for v in values)
            self.stdout.write(f"{name}: {counts or '-'}")
        if response.request.explain:
            self.stdout.write(f"timings (ms): {response.timings_ms}")
