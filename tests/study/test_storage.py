"""Opening study storage: where studies live by default, folders made for new SQLite files, and one
clear line for a storage that cannot be opened or a study that is not there."""

from __future__ import annotations

import pytest

from autocl.errors import StudyError
from autocl.study import default_storage, load_existing, make_storage


def test_studies_live_under_autocl_home_by_default(autocl_home, monkeypatch, tmp_path):
    assert default_storage("demo") == f"sqlite:///{autocl_home / 'demo.db'}"
    home = tmp_path / "new" / "home"
    monkeypatch.setenv("AUTOCL_HOME", str(home))
    assert default_storage("demo") == f"sqlite:///{home / 'demo.db'}" and home.is_dir()


def test_a_new_sqlite_file_gets_its_folders(tmp_path):
    path = tmp_path / "a" / "b" / "s.db"
    make_storage(f"sqlite:///{path}")
    assert path.parent.is_dir()


def test_an_unusable_storage_is_one_line_with_an_example(tmp_path):
    with pytest.raises(StudyError) as err:
        make_storage("nosuchdriver://user@host/db")
    message = str(err.value)
    assert "\n" not in message and "nosuchdriver://user@host/db" in message and "sqlite:///" in message


def test_a_missing_study_is_refused_with_the_studies_there(tmp_path):
    import optuna

    url = f"sqlite:///{tmp_path / 's.db'}"
    for name in ("first", "third"):
        optuna.create_study(study_name=name, storage=make_storage(url))
    assert load_existing("third", url).study_name == "third"
    with pytest.raises(StudyError) as err:
        load_existing("second", url)
    message = str(err.value)
    assert "no study named 'second'" in message and "studies there: first, third" in message
    assert "autocl search --study NAME" in message and "--storage" in message
    with pytest.raises(StudyError, match=r"no study database at .*empty.db"):  # and none is created for it
        load_existing("x", f"sqlite:///{tmp_path / 'empty.db'}")
    assert not (tmp_path / "empty.db").exists()
