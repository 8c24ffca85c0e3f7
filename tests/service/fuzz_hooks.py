"""schemathesis hooks for ``test_fuzz`` (loaded through ``SCHEMATHESIS_HOOKS``): hostile inline YAML
as explicit examples of ``POST /api/jobs`` (issue 20), and links from a created job to its routes
for the stateful phase. The server's own OpenAPI document is left as it is."""

from __future__ import annotations

import schemathesis

from tests.service.conftest import PROFILE, SPACE

DEEP = "[" * 3000 + "]" * 3000
HOSTILE_YAML = {
    "surrogate-escaped": 'name: "\\ud800"',
    "surrogate": 'name: "\ud800"',
    "deep": "name: x\nprune: " + DEEP,
    "nan": "name: nan\nprune: {ratio: .nan}",
    "nan-range": "name: nan\nprune: {ratio: {low: .nan, high: 0.5}}",
    "inf": "name: inf\nquant: {calibration_samples: .inf}",
    "anchors": "a: &a [x, x]\nb: [*a, *a]",
}


def _examples() -> dict:
    base = {"workload": "digits", "space_yaml": SPACE, "profile_yaml": PROFILE, "trials": 1}
    out = {"valid": {"value": {**base, "study": "fuzz-valid"}}}
    for name, text in HOSTILE_YAML.items():
        out[f"space-{name}"] = {"value": {**base, "study": f"fuzz-{name}", "space_yaml": text}}
    out["profile-deep"] = {"value": {**base, "study": "fuzz-profile-deep", "profile_yaml": DEEP}}
    out["profile-inf"] = {
        "value": {**base, "study": "fuzz-profile-inf", "profile_yaml": PROFILE + "batch_size: .inf\n"}
    }
    out["both-spaces"] = {"value": {**base, "study": "fuzz-both", "space": "default"}}
    return out


@schemathesis.hook
def before_load_schema(context, raw_schema: dict) -> None:
    post = raw_schema["paths"]["/api/jobs"]["post"]
    post["requestBody"]["content"]["application/json"]["examples"] = _examples()
    created = post["responses"].setdefault("201", {"description": "Created"})
    created["links"] = {
        name: {
            "operationId": raw_schema["paths"][path][method]["operationId"],
            "parameters": {"job_id": "$response.body#/id"},
        }
        for name, path, method in (
            ("GetJob", "/api/jobs/{job_id}", "get"),
            ("StopJob", "/api/jobs/{job_id}/stop", "post"),
            ("ResumeJob", "/api/jobs/{job_id}/resume", "post"),
        )
    }
