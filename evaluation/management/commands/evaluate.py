"""Evaluate retrieval on a manifest of clips with known answers, in a throwaway catalog.

By default the command runs itself again in a child process whose settings point every
writable path (SQLite database, index, media, scratch) at --workdir, with Celery eager, so
the catalog and index this project is configured with are never touched. The throwaway
catalog is kept between runs: clips already ready there (same SHA-256 and metadata) are
reused, videos no longer in the manifest are removed, and everything is ingested again when
the pipeline's stages or ingestion settings changed (WORKDIR/pipeline.json records them).

--in-place evaluates in the catalog Django is configured with instead (tests, or an
environment that is already throwaway); it adds the clips to that catalog.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.test.utils import override_settings

from evaluation import evaluation
from evaluation.report import moment_table, summary_table, write_report
from retrieval.backends import reset_backends

THROWAWAY_ENV = "REELSEARCH_EVAL_WORKDIR"
PIPELINE_FILE = "pipeline.json"


def default_workdir(manifest: Path, backend: str) -> Path:
    """Return the cache directory of a manifest's throwaway catalog."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha256(f"{manifest}|{backend}".encode()).hexdigest()[:12]
    return cache / "reelsearch" / "eval" / f"{manifest.parent.name}-{digest}"


def settings_module() -> str:
    """Return the dotted path of the settings module this process runs with."""
    module = getattr(settings, "SETTINGS_MODULE", None) or os.environ.get(
        "DJANGO_SETTINGS_MODULE")
    if not module:
        raise CommandError("Cannot tell which settings module to run the evaluation with: set "
                           "DJANGO_SETTINGS_MODULE, or use --in-place.")
    return module


def isolated_environment(workdir: Path) -> dict[str, str]:
    """Return the environment of a child whose every writable path is under workdir."""
    return {
        **os.environ,
        THROWAWAY_ENV: str(workdir),
        "DJANGO_SETTINGS_MODULE": settings_module(),
        "REELSEARCH_VAR_DIR": str(workdir),
        "DATABASE_URL": "",  # the throwaway catalog is always a SQLite file
        "DATABASE_PATH": str(workdir / "db.sqlite3"),
        "REELSEARCH_INDEX_DIR": str(workdir / "index"),
        "REELSEARCH_MEDIA_ROOT": str(workdir / "media"),
        "REELSEARCH_WORK_DIR": str(workdir / "work"),
        "CELERY_BROKER_URL": "",
        "PYTHONUNBUFFERED": "1",
    }


class Command(BaseCommand):
    command_name = "evaluate"
    help = ("Ingest a manifest's clips into a throwaway catalog, run every caption as a query "
            "and report R@K, MdR, MnR, mAP, nDCG@10, moment tIoU and latency per "
            "configuration (report.md, metrics.json, PNG plots).")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--manifest", type=Path, required=True,
                            help="JSON lines with clip_id, file (relative to it), captions "
                                 "and optionally moments [{query, start, end}].")
        parser.add_argument("--backend", default="default",
                            help="Alias in settings.RETRIEVAL_BACKENDS (default: default).")
        parser.add_argument("--fusion", action="append", default=[],
                            metavar="METHOD[/NORMALIZATION[/WEIGHTS]]",
                            help="A hybrid configuration to evaluate; repeat for several "
                                 f"(default: {', '.join(evaluation.DEFAULT_FUSIONS)}).")
        parser.add_argument("--out", type=Path,
                            help="Where report.md, metrics.json and the plots go "
                                 "(default: WORKDIR/report).")
        parser.add_argument("--workdir", type=Path,
                            help="Throwaway catalog and index (default: "
                                 "~/.cache/reelsearch/eval/<manifest>-<hash>).")
        parser.add_argument("--in-place", action="store_true",
                            help="Use the catalog and index Django is configured with.")

    def handle(self, *args, **opts) -> None:
        manifest = opts["manifest"].expanduser().resolve()
        if not manifest.is_file():
            raise CommandError(f"--manifest {opts['manifest']}: no such file.")
        try:
            fusions = [evaluation.parse_fusion(text) for text in opts["fusion"]]
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if opts["backend"] not in settings.RETRIEVAL_BACKENDS:
            raise CommandError(f"--backend {opts['backend']!r} is not in "
                               f"settings.RETRIEVAL_BACKENDS (configured: "
                               f"{', '.join(sorted(settings.RETRIEVAL_BACKENDS))}).")
        workdir = (opts["workdir"] or default_workdir(manifest, opts["backend"])).expanduser()
        out = (opts["out"] or workdir / "report").expanduser().resolve()
        if opts["in_place"]:
            self._evaluate(manifest, opts["backend"], fusions, out, workdir.resolve())
        else:
            self._run_child(manifest, opts, workdir.resolve(), out)

    # ------------------------------------------------------------------ isolation

    def _run_child(self, manifest: Path, opts: dict, workdir: Path, out: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        manage = Path(settings.BASE_DIR) / "manage.py"
        argv = [sys.executable, str(manage), self.command_name, "--manifest", str(manifest),
                "--in-place", "--backend", opts["backend"], "--workdir", str(workdir),
                "--out", str(out), *self.child_arguments(opts)]
        self.stdout.write(f"Throwaway catalog and index: {workdir}")
        with subprocess.Popen(argv, cwd=settings.BASE_DIR, env=isolated_environment(workdir),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              errors="replace") as child:
            last = ""
            for line in child.stdout:
                self.stdout.write(line.rstrip("\n"))
                last = line.strip() or last
        if child.returncode:
            raise CommandError(f"The evaluation failed (exit status {child.returncode}): "
                               f"{last.removeprefix('CommandError: ')}")

    def child_arguments(self, opts: dict) -> list[str]:
        """Return the options the isolated child needs besides manifest, backend and paths."""
        return [arg for text in opts["fusion"] for arg in ("--fusion", text)]

    def _throwaway_settings(self, alias: str, workdir: Path) -> dict:
        """Return settings overrides that route alias 'default' to the isolated backend."""
        conf = dict(settings.RETRIEVAL_BACKENDS[alias])
        if os.environ.get(THROWAWAY_ENV) == str(workdir):
            database = Path(settings.DATABASES["default"]["NAME"]).resolve()
            if not database.is_relative_to(workdir):
                raise CommandError(
                    f"The settings module {settings_module()} ignores DATABASE_PATH "
                    f"(its database is {database}): evaluate cannot isolate its catalog. "
                    "Point DATABASES['default']['NAME'] at os.environ['DATABASE_PATH'], or "
                    "use --in-place in a throwaway environment.")
            digest = hashlib.sha256(str(workdir).encode()).hexdigest()[:8]
            conf["PATH"] = str(workdir / ("index" if alias == "default" else f"index-{alias}"))
            if "INDEX" in conf:
                conf["INDEX"] = f"{conf['INDEX']}-eval-{digest}"
        return {"RETRIEVAL_BACKENDS": {**settings.RETRIEVAL_BACKENDS, "default": conf}}

    # ------------------------------------------------------------------ evaluation

    def _evaluate(self, manifest_path: Path, alias: str, fusions: list, out: Path,
                  workdir: Path) -> None:
        throwaway = os.environ.get(THROWAWAY_ENV) == str(workdir)
        overrides = self._throwaway_settings(alias, workdir)
        if throwaway:
            call_command("migrate", verbosity=0, interactive=False)
        try:
            manifest = evaluation.load_manifest(manifest_path)
        except evaluation.ManifestError as exc:
            raise CommandError(str(exc)) from exc
        reset_backends()
        try:
            with override_settings(**overrides):
                if throwaway:
                    self._forget_other_pipelines(workdir)
                result = self._measure(manifest, fusions, throwaway, alias)
                if throwaway:
                    (workdir / PIPELINE_FILE).write_text(
                        json.dumps(evaluation.pipeline_fingerprint(), indent=1))
        finally:
            reset_backends()
        self.finish(result, out)

    def finish(self, result: dict, out: Path) -> None:
        """Write and print the report."""
        paths = write_report(result, out)
        self._print(result, paths)
        if not result["configurations"]:
            raise CommandError("No clip of the manifest could be evaluated; see "
                               f"{out / 'report.md'} for the reasons.")

    def _forget_other_pipelines(self, workdir: Path) -> None:
        """Empty the throwaway catalog when it was built by another pipeline or settings."""
        marker = workdir / PIPELINE_FILE
        try:
            previous = json.loads(marker.read_text())
        except (OSError, ValueError):
            previous = None
        if previous is not None and previous != evaluation.pipeline_fingerprint():
            removed = evaluation.clear_catalog()
            self.stdout.write(f"The pipeline or its settings changed since the last run: "
                              f"ingesting again ({removed} videos removed).")
            marker.unlink()

    def _measure(self, manifest, fusions: list, throwaway: bool, alias: str) -> dict:
        ready = self.prepare(manifest, throwaway)
        configs = evaluation.configurations(fusions or None)
        result = evaluation.run_evaluation(manifest, ready, configs, log=self.stdout.write)
        result["environment"]["backend"] = alias
        return result

    def prepare(self, manifest, throwaway: bool) -> dict[str, str]:
        """Ingest (or reuse) the manifest's clips; return clip_id -> video id."""
        try:
            return evaluation.prepare_catalog(manifest, throwaway=throwaway,
                                              log=self.stdout.write)
        except RuntimeError as exc:
            raise CommandError(str(exc)) from exc

    def _print(self, result: dict, paths: list[Path]) -> None:
        catalog = result["catalog"]
        self.stdout.write("")
        self.stdout.write(self.style.MIGRATE_HEADING(
            f"{catalog['clips_evaluated']} of {catalog['clips_in_manifest']} clips evaluated, "
            f"{result['queries']['captions']} caption and {result['queries']['moments']} "
            f"moment queries, ranked over {catalog['videos_ranked_over']} videos"))
        for excluded in catalog["excluded"]:
            self.stdout.write(self.style.WARNING(
                f"excluded {excluded['clip_id']}: {excluded['reason']}"))
        if result["configurations"]:
            self.stdout.write(summary_table(result))
        moments = moment_table(result)
        if moments:
            self.stdout.write("")
            self.stdout.write(moment_table(result))
        self.stdout.write("")
        for path in paths:
            self.stdout.write(f"wrote {path}")
