import optuna
import pytest

from tests.report.studies import searched_study


@pytest.fixture(scope="session")
def searched(tmp_path_factory, digits, fast_space, fast_profile):
    """(storage URL, study name) of a real search on digits."""
    return searched_study(tmp_path_factory, digits, fast_space, fast_profile)


@pytest.fixture(scope="session")
def mixed(searched):
    """A copy of the real study plus a trial that broke its budget and a failed one: (url, name)."""
    url, name = searched
    real = optuna.load_study(study_name=name, storage=url)
    copy = optuna.create_study(study_name="mixed", storage=url, directions=real.directions)
    copy.set_metric_names(real.metric_names)
    for key, value in real.user_attrs.items():
        copy.set_user_attr(key, value)
    done = [t for t in real.trials if t.state == optuna.trial.TrialState.COMPLETE]
    for t in done:
        copy.add_trial(t)
    best = max(done, key=lambda t: t.values[0])
    attrs = dict(best.user_attrs)
    copy_attrs = dict(attrs)
    m = {k: ([x / 10 for x in v] if isinstance(v, list) else v / 10) if k.endswith("_ms") else v
         for k, v in attrs["measurements"]["test-cpu"].items()}
    copy_attrs.update(measurements={"test-cpu": m}, size_bytes=attrs["size_bytes"] // 10)
    copy.add_trial(optuna.trial.create_trial(  # would dominate everything, but breaks a latency budget
        values=[best.values[0], m["median_ms"], copy_attrs["size_bytes"] / 1024], params=best.params,
        distributions=best.distributions, user_attrs=copy_attrs, constraints={"latency_budget": 0.25}))
    copy.add_trial(optuna.trial.create_trial(
        state=optuna.trial.TrialState.FAIL, params=best.params, distributions=best.distributions,
        user_attrs={"error": "trial 99 (quantizing): ConfigError: the runtime cannot run this layer at int4"}))
    return url, "mixed"
