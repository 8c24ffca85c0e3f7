"""The Python API for a finished (or running) study: read it, pick from it, report and export it.

    import autocl
    study = autocl.load_study("demo")            # sqlite:///studies/demo.db by default
    df = study.front()                            # the feasible Pareto front, a pandas DataFrame
    best = study.pick("fastest-within:0.01")      # a front member, chosen by a rule
    study.report("demo.html")
    study.export("bundle/", pick="knee")

Everything is read from the study's database, as the CLI does; nothing here writes to the study.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pandas as pd

from autocl.errors import StudyError
from autocl.report import Pick, StudyData, front_frame, pick, study_data, trials_frame, write_report
from autocl.study import existing_storage, load_existing


class StudyView:
    """Read-only view of one study; every method takes an optional ``profile`` (default: the
    search's primary profile)."""

    def __init__(self, study: optuna.Study, storage: str) -> None:
        self.study = study
        self.storage = storage

    @property
    def name(self) -> str:
        return self.study.study_name

    def data(self, profile: str | None = None) -> StudyData:
        """Every trial classified (front, dominated, infeasible, unmeasured, failed, pending)."""
        return study_data(self.study, profile)

    @property
    def profiles(self) -> tuple[str, ...]:
        return self.data().profiles

    @property
    def baseline(self) -> dict | None:
        return self.study.user_attrs.get("baseline")

    def front(self, profile: str | None = None) -> pd.DataFrame:
        """The feasible Pareto front on ``profile``, fastest first (empty if there is none yet);
        columns as in ``autocl.report.front_frame``."""
        return front_frame(self.data(profile))

    def trials(self, profile: str | None = None) -> pd.DataFrame:
        """Every trial with its status on ``profile`` and the reason for anything off the front."""
        return trials_frame(self.data(profile))

    def pick(self, spec: str, profile: str | None = None) -> Pick:
        """A front member chosen by ``spec``: ``'metric_drop<=0.01,latency_ms<=5'``,
        ``'fastest-within:0.01'`` or ``'knee'``."""
        return pick(self.data(profile), spec)

    def report(
        self, path: str | Path, profile: str | None = None, *, measure_layers: bool = False, workload=None, **kwargs
    ) -> Path:
        """Write the self-contained HTML report (see ``autocl.report.write_report``). With
        ``measure_layers``, each front member's layers are timed first (needs ``workload``, see
        ``autocl.layer_latency.measure_layer_shares``)."""
        if measure_layers:
            from autocl.layer_latency import measure_layer_shares

            if workload is None:
                raise StudyError("timing the layers needs the study's workload; pass workload=")
            kwargs["shares"], kwargs["shares_note"] = measure_layer_shares(
                self.data(profile), workload, kwargs.get("cache_root")
            )
        return write_report(self.study, path, profile, storage=self.storage, **kwargs)

    def export(self, out_dir: str | Path, *, trial: int | None = None, pick: str | None = None, profile=None, **kwargs):
        """Export and verify one trial (see ``autocl.export.export_trial``)."""
        from autocl.export import export_trial

        return export_trial(
            self.study, out_dir, trial=trial, spec=pick, profile=profile, storage=self.storage, **kwargs
        )

    def __repr__(self) -> str:
        return f"StudyView({self.name!r}, storage={self.storage!r}, trials={len(self.study.trials)})"


def load_study(name: str, storage: str | None = None) -> StudyView:
    """Open an existing study (``storage`` default: ``sqlite:///<AUTOCL_HOME>/<name>.db``); a
    missing database or study is a StudyError listing what exists."""
    url = existing_storage(name, storage)
    return StudyView(load_existing(name, url), url)


__all__ = ["StudyView", "load_study"]
