"""Workers in step without a server: one-time claims, the PostgreSQL driver URL, a worker's clear refusals."""

import optuna
from typer.testing import CliRunner


def test_a_job_is_claimed_once_per_study(tmp_path):
    from autocl.study._claims import claim

    url = f"sqlite:///{tmp_path / 'c.db'}"
    a = optuna.create_study(study_name="a", storage=url)
    b = optuna.create_study(study_name="b", storage=url)
    assert claim(url, a, "recipes") and not claim(url, a, "recipes")
    assert claim(url, b, "recipes")  # another study's job is its own
    assert claim(url, a, "polish:3") and not claim(url, a, "polish:3")


def test_postgresql_urls_use_psycopg_3():
    from autocl.study._tables import driver_url

    assert driver_url("postgresql://u@h:5432/db") == "postgresql+psycopg://u@h:5432/db"
    assert driver_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert driver_url("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert driver_url("sqlite:///x.db") == "sqlite:///x.db"


def test_a_worker_needs_an_existing_study_with_stored_settings(tmp_path):
    from autocl.cli import app

    url = f"sqlite:///{tmp_path / 'w.db'}"
    optuna.create_study(study_name="bare", storage=url)
    runner = CliRunner()
    missing = runner.invoke(app, ["worker", "--study", "nope", "--storage", url, "--trials", "1"])
    assert missing.exit_code == 2 and "no study named 'nope'" in missing.output and "bare" in missing.output
    bare = runner.invoke(app, ["worker", "--study", "bare", "--storage", url, "--trials", "1"])
    assert bare.exit_code == 2 and "no stored workload, space, profiles" in bare.output, bare.output
    assert "Traceback" not in bare.output
