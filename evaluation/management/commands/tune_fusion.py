"""Fit the fusion profile to a catalog's own labelled queries, with k-fold cross-validation.

    manage.py tune_fusion --manifest M [--name tuned] [--folds 5] [--output FILE]

The manifest is the one `evaluate` reads (captions and moment queries name their clips);
the clips are ingested into the same throwaway catalog `evaluate` uses (or reused from it).
Every query's signals are asked once, then a grid of profiles (method x normalization x BM25
weight x per-kind weights x dual-softmax re-scoring, see evaluation/tuning.py) is scored by
re-fusing those hits. Each fold's profile is fitted on the other folds and measured on it;
the held-out R@1 is printed next to the default profile's. Finally the profile fitted on
every query is written under --name to the profile file (REELSEARCH['FUSION_PROFILE_FILE']
unless --output says otherwise), where `?profile=NAME` in the search API finds it.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError

from evaluation import evaluation, tuning
from retrieval.profiles import DEFAULT, get_profile, save_profile

from .evaluate import Command as EvaluateCommand


class Command(EvaluateCommand):
    command_name = "tune_fusion"
    help = ("Fit fusion (normalization, weights, per-kind weights, re-scorer) to a manifest's "
            "labelled queries with k-fold cross-validation, print the held-out gain over the "
            "default profile and save the fitted profile by name.")

    def add_arguments(self, parser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--name", default="tuned",
                            help="Name of the fitted profile (default: tuned); `default` "
                                 "replaces the profile the API uses with no parameters.")
        parser.add_argument("--folds", type=int, default=5, help="Cross-validation folds.")
        parser.add_argument("--output", type=Path,
                            help="Profile file to write (default: "
                                 "REELSEARCH['FUSION_PROFILE_FILE']).")

    def handle(self, *args, **opts) -> None:
        if opts["folds"] < 2:
            raise CommandError("--folds must be 2 or more.")
        if opts["output"] is None:
            path = settings.REELSEARCH.get("FUSION_PROFILE_FILE")
            if not path:
                raise CommandError("Set REELSEARCH['FUSION_PROFILE_FILE'] (or pass --output) "
                                   "so the fitted profile has somewhere to go.")
            opts["output"] = Path(path)
        self.opts = opts
        super().handle(*args, **opts)

    def child_arguments(self, opts: dict) -> list[str]:
        return ["--name", opts["name"], "--folds", str(opts["folds"]),
                "--output", str(Path(opts["output"]).expanduser().resolve())]

    def _measure(self, manifest, fusions: list, throwaway: bool, alias: str) -> dict:
        ready = self.prepare(manifest, throwaway)
        captions, moments = evaluation.build_queries(manifest, ready)
        queries = [(q.text, q.targets) for q in captions + moments]
        if len(queries) < self.opts["folds"]:
            raise CommandError(f"{len(queries)} labelled queries are too few for "
                               f"{self.opts['folds']} folds.")
        signals = [s for s in evaluation.available_signals() if s in ("bm25", "text")]
        self.stdout.write(f"asking {len(queries)} queries once ({', '.join(signals)}) …")
        labelled = tuning.collect(queries, alias, signals)
        n_catalog = len(ready)
        profiles = tuning.grid()
        default = get_profile(DEFAULT)
        folds = tuning.cross_validate(labelled, profiles, default, n_catalog,
                                      self.opts["folds"], log=self.stdout.write)
        fitted, (r1, mrr) = tuning.best_profile(labelled, profiles, n_catalog, prefer=default)
        base = tuning.objective(tuning.first_ranks(labelled, default, n_catalog))
        return {"folds": folds, "fitted": fitted, "fitted_r1": r1,
                "default": default, "default_r1": base[0], "queries": len(labelled),
                "manifest": str(manifest.path), "profiles_tried": len(profiles)}

    def finish(self, result: dict, out: Path) -> None:
        folds = result["folds"]
        total = sum(f.size for f in folds)
        tuned = sum(f.tuned_r1 * f.size for f in folds) / total
        base = sum(f.default_r1 * f.size for f in folds) / total
        self.stdout.write("")
        self.stdout.write(self.style.MIGRATE_HEADING(
            f"{result['queries']} queries, {len(folds)} folds, "
            f"{result['profiles_tried']} profiles tried"))
        self.stdout.write(f"held-out R@1: tuned {tuned:.3f}, default {base:.3f} "
                          f"(gain {tuned - base:+.3f})")
        fitted = result["fitted"]
        self.stdout.write(f"fitted on every query: {fitted.key} (R@1 {result['fitted_r1']:.3f}"
                          f"; default {result['default_r1']:.3f})")
        output = Path(self.opts["output"]).expanduser()
        about = {"manifest": result["manifest"], "queries": result["queries"],
                 "held_out_r1": round(tuned, 4), "default_held_out_r1": round(base, 4),
                 "folds": len(folds)}
        save_profile(self.opts["name"], fitted, output, about)
        self.stdout.write(f"wrote profile {self.opts['name']!r} to {output}: search with "
                          f"?profile={self.opts['name']}, or put this in "
                          "REELSEARCH['FUSION_PROFILES']:")
        self.stdout.write(json.dumps({self.opts["name"]: fitted.as_settings()}, indent=1))
