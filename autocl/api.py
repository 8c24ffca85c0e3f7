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
    """Read-only view of one study.

    Every method takes an optional ``profile`` (default: the search's primary profile). Everything is
    read from the study's database; nothing here writes to the study. Obtain one with
    :func:`load_study`.

    Args:
        study: The Optuna study to view.
        storage: The URL of the study's database (recorded in reports and exported bundles).
    """

    def __init__(self, study: optuna.Study, storage: str) -> None:
        self.study = study
        self.storage = storage

    @property
    def name(self) -> str:
        """The study's name."""
        return self.study.study_name

    def data(self, profile: str | None = None) -> StudyData:
        """Every trial classified (front, dominated, infeasible, unmeasured, failed, pending).

        Args:
            profile: The hardware profile to classify on (default: the search's primary profile).

        Returns:
            The study's trials and settings on ``profile``.

        Raises:
            StudyError: The study has no measurement on ``profile``.
        """
        return study_data(self.study, profile)

    @property
    def profiles(self) -> tuple[str, ...]:
        """The names of the profiles the study's trials were measured on."""
        return self.data().profiles

    @property
    def baseline(self) -> dict | None:
        """The fp32 baseline stored by the search (the ``baseline`` user attribute), or None."""
        return self.study.user_attrs.get("baseline")

    def front(self, profile: str | None = None) -> pd.DataFrame:
        """The feasible Pareto front on ``profile``, fastest first.

        The frame is empty if there is no front yet; its columns are as in ``autocl.report.front_frame``.

        Args:
            profile: The hardware profile (default: the search's primary profile).

        Returns:
            One row per front member.

        Raises:
            StudyError: The study has no measurement on ``profile``.
        """
        return front_frame(self.data(profile))

    def trials(self, profile: str | None = None) -> pd.DataFrame:
        """Every trial with its status on ``profile`` and the reason for anything off the front.

        Args:
            profile: The hardware profile (default: the search's primary profile).

        Returns:
            One row per trial; columns as in ``autocl.report.trials_frame``.

        Raises:
            StudyError: The study has no measurement on ``profile``.
        """
        return trials_frame(self.data(profile))

    def pick(self, spec: str, profile: str | None = None) -> Pick:
        """A front member chosen by ``spec``.

        See ``autocl.report.pick`` for the rules.

        Args:
            spec: ``'metric_drop<=0.01,latency_ms<=5'`` (conditions; the fastest member meeting them),
                ``'fastest-within:0.01'`` (the fastest member within that metric drop) or ``'knee'``.
            profile: The hardware profile (default: the search's primary profile).

        Returns:
            The chosen trial and why it was chosen.

        Raises:
            StudyError: The front is empty, no member satisfies the conditions, a condition needs the
                fp32 baseline the study lacks, or the study has no measurement on ``profile``.
            ConfigError: ``spec`` cannot be read.
        """
        return pick(self.data(profile), spec)

    def report(
        self, path: str | Path, profile: str | None = None, *, measure_layers: bool = False, workload=None, **kwargs
    ) -> Path:
        """Write the self-contained HTML report (see ``autocl.report.write_report``).

        With ``measure_layers``, each front member's layers are timed first (needs ``workload``, see
        ``autocl.layer_latency.measure_layer_shares``).

        Args:
            path: The HTML file to write (its parent directories are created).
            profile: The hardware profile (default: the search's primary profile).
            measure_layers: Time each front member's layers first, for the report's per-layer shares.
            workload: The study's workload; required with ``measure_layers``.
            **kwargs: Passed to ``autocl.report.build_report`` (e.g. ``cache_root``, the artifact cache,
                also used to find the artifacts to time).

        Returns:
            The path written.

        Raises:
            StudyError: ``measure_layers`` without ``workload``, the study has no measurement on
                ``profile``, or it has no feasible front to report.
        """
        if measure_layers:
            from autocl.layer_latency import measure_layer_shares

            if workload is None:
                raise StudyError("timing the layers needs the study's workload; pass workload=")
            kwargs["shares"], kwargs["shares_note"] = measure_layer_shares(
                self.data(profile), workload, kwargs.get("cache_root")
            )
        return write_report(self.study, path, profile, storage=self.storage, **kwargs)

    def export(self, out_dir: str | Path, *, trial: int | None = None, pick: str | None = None, profile=None, **kwargs):
        """Export and verify one trial (see ``autocl.export.export_trial``).

        Give exactly one of ``trial`` and ``pick``.

        Args:
            out_dir: The bundle directory to write.
            trial: The number of the trial to export.
            pick: A spec choosing a front member, as in :meth:`pick`.
            profile: The profile's name or a ``HardwareProfile`` (default: the search's primary profile).
            **kwargs: Passed to ``autocl.export.export_trial`` (``workload``, ``latency_tolerance``,
                ``metric_tolerance``, ``overwrite``, ``accept_rebuilt``, ``on_stage``).

        Returns:
            The ``ExportResult``: the bundle's directory, the trial, the profile, the pick and the
            verification.

        Raises:
            ConfigError: Not exactly one of ``trial`` and ``pick``, or ``out_dir`` cannot be used.
            StudyError: See :meth:`pick`.
            TrialError: The trial is not a feasible measured one, its artifact was rebuilt differently
                (without ``accept_rebuilt``), or it fails verification.
            WorkloadError: The study's workload cannot be loaded, or its key changed since the search.
            ProfileError: The study does not store the profile's settings and none was given.
        """
        from autocl.export import export_trial

        return export_trial(
            self.study, out_dir, trial=trial, spec=pick, profile=profile, storage=self.storage, **kwargs
        )

    def __repr__(self) -> str:
        return f"StudyView({self.name!r}, storage={self.storage!r}, trials={len(self.study.trials)})"


def load_study(name: str, storage: str | None = None) -> StudyView:
    """Open an existing study.

    Nothing is created: a missing database or study is a StudyError listing what exists.

    Args:
        name: The study's name.
        storage: The database URL (default: ``sqlite:///<AUTOCL_HOME>/<name>.db``).

    Returns:
        A read-only :class:`StudyView` of the study.

    Raises:
        StudyError: The name is not allowed, or there is no such database or study.
    """
    url = existing_storage(name, storage)
    return StudyView(load_existing(name, url), url)


def search(
    workload,
    space,
    profile,
    study: str,
    *,
    storage: str | None = None,
    n_trials: int | None = 12,
    sampler: str | optuna.samplers.BaseSampler = "tpe",
    seed: int = 0,
    **options,
) -> StudyView:
    """Run (or resume) a search from Python: what ``autocl search`` runs, with any Optuna sampler.

        sampler = optuna.samplers.QMCSampler(seed=1)
        view = autocl.search("mnist", "search_spaces/cnn-small.yaml", "hardware_profiles/cpu-local.yaml",
                             "demo", n_trials=20, sampler=sampler)

    Args:
        workload: A workload spec (as ``--workload`` takes it) or a ``Workload``.
        space: A search-space YAML path or a ``SearchSpace``.
        profile: A profile YAML path or a ``HardwareProfile``, or a list of them (the first is primary).
        study: The study's name.
        storage: The database URL (default: ``sqlite:///<AUTOCL_HOME>/<study>.db``).
        n_trials: How many more screened trials to run.
        sampler: ``tpe``, ``nsga2``, ``gp``, ``random`` (seeded with ``seed``), or an
            ``optuna.samplers.BaseSampler`` instance, used as built.
        seed: Seeds the search (and a sampler given by name).
        **options: Passed on to :func:`autocl.study.run_search` (``timeout``, ``max_drop``, ...).

    Returns:
        A :class:`StudyView` of the study.

    Raises:
        AutoclError: A file is invalid, the workload cannot be loaded, or the study cannot be resumed.
    """
    from autocl.hardware import load_profile
    from autocl.space import SearchSpace, load_space
    from autocl.study import default_storage, run_search
    from autocl.workloads import load_workload

    spec = workload if isinstance(workload, str) else None
    wl = load_workload(workload) if isinstance(workload, str) else workload
    sp = space if isinstance(space, SearchSpace) else load_space(space)
    given = profile if isinstance(profile, (list, tuple)) else [profile]
    profiles = [load_profile(p) if isinstance(p, (str, Path)) else p for p in given]
    url = storage or default_storage(study)
    result = run_search(
        wl,
        sp,
        profiles,
        study_name=study,
        storage=url,
        n_trials=n_trials,
        seed=seed,
        sampler=sampler,
        workload_spec=spec,
        **options,
    )
    return StudyView(result.study, url)


__all__ = ["StudyView", "load_study", "search"]
