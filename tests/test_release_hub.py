"""Releasing to a local stand-in for the Hub, then using the release as a user would.

`FakeHub` is an HTTP server on 127.0.0.1 that speaks the endpoints huggingface_hub uses to create a
repository and a branch, pre-upload and commit files, and to serve repository info and file downloads.
It answers "regular" to every pre-upload query, so files travel inline (base64) in the commit, as the
Hub does for small files: no LFS or Xet storage is involved. No test here contacts the real Hub.
"""

import base64
import hashlib
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import huggingface_hub.constants
import pytest
from huggingface_hub import ModelCard

from training_mt2kd.release.release import ReleaseError, assemble_release, check_model_folder, upload_release

from .test_release import EVAL_RESULTS, REPO_ROOT, folder_digest, write_tiny_model_folder

TOKEN = "hf_fake_token_for_tests"
REPO_ID = "mt2kd-tests/tiny-release"
SERVER_LIFETIME_S = 600  # the server stops itself after this, whatever the test does


def git_blob_sha1(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class FakeRepo:
    private: bool
    branches: dict[str, dict[str, bytes]] = field(default_factory=lambda: {"main": {}})
    heads: dict[str, str] = field(default_factory=lambda: {"main": "0" * 40})
    commit_messages: list[str] = field(default_factory=list)


class FakeHub:
    """A bounded local Hub: `start()`, point HF_ENDPOINT at `url`, `stop()` (or it stops itself)."""

    def __init__(self, token: str = TOKEN):
        self.token = token
        self.repos: dict[str, FakeRepo] = {}
        self.requests: list[str] = []
        self.unhandled: list[str] = []
        self.drops: dict[str, int] = {}  # route name → connections still to drop without an answer
        self.hangs: dict[str, threading.Event] = {}  # route name → held unanswered until the event is set
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._deadline = threading.Timer(SERVER_LIFETIME_S, self._server.shutdown)
        self._deadline.daemon = True

    def start(self) -> "FakeHub":
        self._thread.start()
        self._deadline.start()
        return self

    def stop(self) -> None:
        for event in self.hangs.values():
            event.set()
        self._deadline.cancel()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def drop_next(self, route: str, times: int = 1) -> None:
        """Close the next `times` connections of `route` ("create", "preupload", "commit", ...) unanswered."""
        self.drops[route] = times

    def hang(self, route: str) -> threading.Event:
        """Hold every request of `route` unanswered until the returned event is set (then drop it)."""
        self.hangs[route] = threading.Event()
        return self.hangs[route]

    def files(self, repo_id: str = REPO_ID, branch: str = "main") -> dict[str, bytes]:
        return dict(self.repos[repo_id].branches[branch])

    def _handler_class(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                hub._dispatch(self, "GET")

            def do_HEAD(self):
                hub._dispatch(self, "HEAD")

            def do_POST(self):
                hub._dispatch(self, "POST")

        return Handler

    # Routes: (method, pattern, route name, handler); `repo` and `rev` are URL-decoded. Reading a public
    # repository needs no token; writing needs `token`.
    WRITE_ROUTES = ("create", "validate", "branch", "preupload", "commit")
    REPO = r"(?P<repo>[^/]+/[^/]+)"
    ROUTES = (
        ("POST", r"/api/repos/create", "create", "_create_repo"),
        ("POST", r"/api/validate-yaml", "validate", "_validate_yaml"),
        ("GET", r"/api/agent-harnesses", "harnesses", "_agent_harnesses"),
        ("GET", rf"/api/models/{REPO}(?:/revision/(?P<rev>[^/]+))?", "info", "_repo_info"),
        ("GET", rf"/api/models/{REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.+))?", "tree", "_tree"),
        ("POST", rf"/api/models/{REPO}/branch/(?P<rev>[^/]+)", "branch", "_create_branch"),
        ("POST", rf"/api/models/{REPO}/preupload/(?P<rev>[^/]+)", "preupload", "_preupload"),
        ("POST", rf"/api/models/{REPO}/commit/(?P<rev>[^/]+)", "commit", "_commit"),
        ("GET", rf"/{REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "download", "_download"),
        ("HEAD", rf"/{REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "download", "_download"),
    )

    def _dispatch(self, request: BaseHTTPRequestHandler, method: str) -> None:
        path = urlsplit(request.path).path
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        route = next(
            (
                (name, handler, match)
                for route_method, pattern, name, handler in self.ROUTES
                if route_method == method and (match := re.fullmatch(pattern, path)) is not None
            ),
            None,
        )
        with self._lock:
            self.requests.append(f"{method} {path}")
            if route is None:
                self.unhandled.append(f"{method} {path}")
                return self._reply(request, 404, {"error": f"no route for {method} {path}"}, error_code="EntryNotFound")
            name, handler, match = route
            hang = self.hangs.get(name)
            drop = self.drops.get(name, 0) > 0
            if drop:
                self.drops[name] -= 1
        if hang is not None:  # wait (unlocked) until the test releases the request, then answer nothing
            hang.wait(timeout=SERVER_LIFETIME_S)
        if drop or hang is not None:
            request.close_connection = True
            request.connection.shutdown(socket.SHUT_RDWR)
            return
        with self._lock:
            if name in self.WRITE_ROUTES and not self._authorised(request):
                return self._reply(request, 401, {"error": "Invalid credentials in Authorization header"})
            arguments = {key: unquote(value) for key, value in match.groupdict().items() if value is not None}
            getattr(self, handler)(request, body, **arguments)

    def _authorised(self, request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.token}"

    def _reply(
        self,
        request,
        status: int,
        payload,
        headers: dict | None = None,
        error_code: str | None = None,
        content: bytes | None = None,
    ) -> None:
        data = content if content is not None else json.dumps(payload).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/octet-stream" if content is not None else "application/json")
        request.send_header("Content-Length", str(len(data)))
        if error_code:
            request.send_header("X-Error-Code", error_code)
        for key, value in (headers or {}).items():
            request.send_header(key, value)
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(data)

    def _repo_or_404(self, request, repo: str) -> FakeRepo | None:
        """The repository, or None after answering 404 (as the Hub does for private repos without a token)."""
        if repo not in self.repos or (self.repos[repo].private and not self._authorised(request)):
            self._reply(request, 404, {"error": "Repository not found"}, error_code="RepoNotFound")
            return None
        return self.repos[repo]

    def _create_repo(self, request, body: bytes) -> None:
        payload = json.loads(body)
        repo_id = f"{payload['organization']}/{payload['name']}" if payload.get("organization") else payload["name"]
        if repo_id in self.repos:
            return self._reply(
                request, 409, {"error": "You already created this model repo", "url": f"{self.url}/{repo_id}"}
            )
        private = payload.get("visibility") == "private" or payload.get("private") is True
        self.repos[repo_id] = FakeRepo(private=private)
        self._reply(request, 200, {"url": f"{self.url}/{repo_id}", "name": repo_id})

    def _validate_yaml(self, request, body: bytes) -> None:
        """The card's metadata must parse (the Hub refuses commits whose README.md metadata does not)."""
        try:
            ModelCard(json.loads(body)["content"])
        except Exception as error:
            return self._reply(request, 400, {"errors": [{"message": str(error)}], "warnings": []})
        self._reply(request, 200, {"errors": [], "warnings": []})

    def _agent_harnesses(self, request, body: bytes) -> None:
        """The client's user-agent registry: empty here."""
        self._reply(request, 200, {"standardEnvVars": [], "harnesses": {}})

    def _repo_info(self, request, body: bytes, repo: str, rev: str = "main") -> None:
        if (fake := self._repo_or_404(request, repo)) is None:
            return
        branch = self._branch_of(fake, rev)
        if branch is None:
            return self._reply(request, 404, {"error": f"Invalid rev id: {rev}"}, error_code="RevisionNotFound")
        siblings = [{"rfilename": name} for name in sorted(fake.branches[branch])]
        info = {
            "id": repo,
            "modelId": repo,
            "sha": fake.heads[branch],
            "private": fake.private,
            "siblings": siblings,
            "tags": [],
            "downloads": 0,
            "likes": 0,
        }
        self._reply(request, 200, info)

    def _tree(self, request, body: bytes, repo: str, rev: str, path: str = "") -> None:
        if (fake := self._repo_or_404(request, repo)) is None:
            return
        branch = self._branch_of(fake, rev)
        if branch is None:
            return self._reply(request, 404, {"error": f"Invalid rev id: {rev}"}, error_code="RevisionNotFound")
        prefix = f"{path.rstrip('/')}/" if path else ""
        entries = [
            {"type": "file", "path": name, "size": len(content), "oid": git_blob_sha1(content)}
            for name, content in sorted(fake.branches[branch].items())
            if name.startswith(prefix)
        ]
        if path and not entries:
            return self._reply(request, 404, {"error": f"{path} does not exist on {rev}"}, error_code="EntryNotFound")
        self._reply(request, 200, entries)

    def _create_branch(self, request, body: bytes, repo: str, rev: str) -> None:
        if (fake := self._repo_or_404(request, repo)) is None:
            return
        if rev in fake.branches:
            return self._reply(request, 409, {"error": f"Reference refs/heads/{rev} already exists"})
        fake.branches[rev] = dict(fake.branches["main"])
        fake.heads[rev] = fake.heads["main"]
        self._reply(request, 200, {})

    def _preupload(self, request, body: bytes, repo: str, rev: str) -> None:
        if (fake := self._repo_or_404(request, repo)) is None:
            return
        existing = fake.branches.get(rev, {})
        files = [
            {
                "path": entry["path"],
                "uploadMode": "regular",
                "shouldIgnore": False,
                "oid": git_blob_sha1(existing[entry["path"]]) if entry["path"] in existing else None,
            }
            for entry in json.loads(body)["files"]
        ]
        self._reply(request, 200, {"files": files, "commitOid": fake.heads.get(rev)})

    def _commit(self, request, body: bytes, repo: str, rev: str) -> None:
        if (fake := self._repo_or_404(request, repo)) is None:
            return
        if rev not in fake.branches:
            return self._reply(request, 404, {"error": f"Invalid rev id: {rev}"}, error_code="RevisionNotFound")
        files, summary = dict(fake.branches[rev]), None
        for line in body.decode().splitlines():
            item = json.loads(line)
            if item["key"] == "file":
                files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            elif item["key"] == "deletedFile":
                files.pop(item["value"]["path"], None)
            elif item["key"] == "header":
                summary = item["value"]["summary"]
            else:
                return self._reply(request, 400, {"error": f"this fake Hub takes inline files only, got {item['key']}"})
        fake.branches[rev] = files
        fake.commit_messages.append(summary)
        fake.heads[rev] = hashlib.sha1(
            json.dumps(sorted((k, git_blob_sha1(v)) for k, v in files.items())).encode()
        ).hexdigest()
        self._reply(
            request,
            200,
            {"commitUrl": f"{self.url}/{repo}/commit/{fake.heads[rev]}", "commitOid": fake.heads[rev], "success": True},
        )

    def _download(self, request, body: bytes, repo: str, rev: str, path: str) -> None:
        if (fake := self._repo_or_404(request, repo)) is None:
            return
        branch = self._branch_of(fake, rev)
        if branch is None:
            return self._reply(request, 404, {"error": f"Invalid rev id: {rev}"}, error_code="RevisionNotFound")
        content = fake.branches[branch].get(path)
        if content is None:
            return self._reply(
                request,
                404,
                {"error": "Entry not found"},
                error_code="EntryNotFound",
                headers={"X-Repo-Commit": fake.heads[branch]},
            )
        headers = {"X-Repo-Commit": fake.heads[branch], "ETag": f'"{git_blob_sha1(content)}"'}
        self._reply(request, 200, None, headers=headers, content=content)

    @staticmethod
    def _branch_of(fake: FakeRepo, rev: str) -> str | None:
        """The branch a revision (branch name or commit id) points to."""
        if rev in fake.branches:
            return rev
        return next((branch for branch, head in fake.heads.items() if head == rev), None)


@pytest.fixture
def hub(monkeypatch):
    """A fake Hub, with huggingface_hub in this process pointed at it and out of the suite's offline mode."""
    server = FakeHub().start()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", server.url)
    yield server
    server.stop()
    assert not server.unhandled, f"requests the fake Hub does not know: {server.unhandled}"


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory, data_dir) -> Path:
    return write_tiny_model_folder(tmp_path_factory.mktemp("trained") / "final", data_dir)


@pytest.fixture(scope="module")
def checked(model_folder):
    return check_model_folder(model_folder)


def run_python(args: list[str], env: dict, cwd: Path, timeout_s: int = 300) -> subprocess.CompletedProcess:
    environment = {**os.environ, "OMP_NUM_THREADS": "1", **env}
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        env=environment,
        cwd=cwd,
        timeout=timeout_s,
        stdin=subprocess.DEVNULL,
    )


def hub_env(hub: FakeHub, tmp_path: Path) -> dict:
    return {
        "HF_ENDPOINT": hub.url,
        "HF_HUB_OFFLINE": "0",
        "HF_TOKEN": TOKEN,
        "HF_HOME": str(tmp_path / "hf_home"),
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }


# Upload


def test_cli_release_uploads_exactly_the_release_folder(hub, model_folder, tmp_path):
    (tmp_path / "results.json").write_text(json.dumps(EVAL_RESULTS))
    before = folder_digest(model_folder)
    result = run_python(
        [
            str(REPO_ROOT / "hub_upload.py"),
            str(model_folder),
            "--repo-id",
            REPO_ID,
            "--eval-results",
            str(tmp_path / "results.json"),
            "--output-dir",
            str(tmp_path / "release"),
            "--commit-message",
            "First release",
        ],
        env=hub_env(hub, tmp_path),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"released {REPO_ID}: {hub.url}/{REPO_ID}/commit/" in result.stdout

    received = hub.files()
    local = {path.name: path.read_bytes() for path in (tmp_path / "release").iterdir()}
    assert received == local
    card = ModelCard(received["README.md"].decode())
    published = sorted(
        (r.dataset_type, r.dataset_config, r.metric_type, r.metric_value) for r in card.data.eval_results
    )
    assert published == sorted(
        (r["dataset"], r["dataset_config"], r["metric"], r["value"]) for r in EVAL_RESULTS["results"]
    )
    assert folder_digest(model_folder) == before
    assert hub.repos[REPO_ID].private is False
    assert hub.repos[REPO_ID].commit_messages == ["First release"]


def test_dropped_connections_are_retried_and_the_upload_completes(hub, model_folder, checked, tmp_path, monkeypatch):
    release = assemble_release(model_folder, tmp_path / "release", REPO_ID, checked=checked)
    before = folder_digest(release)
    hub.drop_next("create")  # not retried by huggingface_hub itself: upload_release's own retry
    hub.drop_next("commit")
    monkeypatch.setenv("HF_TOKEN", TOKEN)

    commit_url = upload_release(release, REPO_ID, endpoint=hub.url, first_retry_wait_s=0.05)

    assert commit_url.startswith(f"{hub.url}/{REPO_ID}/commit/")
    assert hub.files() == {path.name: path.read_bytes() for path in release.iterdir()}
    assert hub.requests.count("POST /api/repos/create") == 2
    assert hub.requests.count(f"POST /api/models/{REPO_ID}/commit/main") == 2
    assert folder_digest(release) == before


def test_a_hub_that_stays_unreachable_ends_in_a_message_saying_what_to_do(hub, model_folder, checked, tmp_path, monkeypatch):
    release = assemble_release(model_folder, tmp_path / "release", REPO_ID, checked=checked)
    before = folder_digest(release)
    hub.drop_next("create", times=100)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    with pytest.raises(ReleaseError, match="failed after 3 tries") as error:
        upload_release(release, REPO_ID, endpoint=hub.url, attempts=3, first_retry_wait_s=0.01)
    assert "nothing local was changed" in str(error.value) and "Re-run the same command" in str(error.value)
    assert folder_digest(release) == before and hub.requests.count("POST /api/repos/create") == 3


def test_hub_upload_reports_an_unreachable_hub_in_one_line_without_a_traceback(
    hub, model_folder, tmp_path, monkeypatch, capsys
):
    import hub_upload
    import training_mt2kd.release.release as release_module

    before = folder_digest(model_folder)
    hub.drop_next("create", times=100)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setattr(release_module.time, "sleep", lambda seconds: None)  # the five tries without their waits
    status = hub_upload.main([str(model_folder), "--repo-id", REPO_ID, "--output-dir", str(tmp_path / "release")])
    captured = capsys.readouterr()
    assert status == 1 and "Traceback" not in captured.err
    (line,) = [line for line in captured.err.splitlines() if line.startswith("error: ")]
    assert "failed after 5 tries" in line and "Re-run the same command" in line
    assert folder_digest(model_folder) == before


def test_rerunning_after_an_interrupted_upload_completes_it(hub, model_folder, tmp_path):
    command = [sys.executable, str(REPO_ROOT / "hub_upload.py"), str(model_folder), "--repo-id", REPO_ID]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", **hub_env(hub, tmp_path)}
    before = folder_digest(model_folder)
    held = hub.hang("commit")
    interrupted = subprocess.Popen(
        command,
        env=environment,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while f"POST /api/models/{REPO_ID}/commit/main" not in hub.requests and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        interrupted.kill()  # the upload dies with its commit unanswered
        interrupted.wait(timeout=30)
    held.set()
    del hub.hangs["commit"]
    assert hub.files() == {}

    rerun = run_python(command[1:], env=hub_env(hub, tmp_path), cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    release = assemble_release(model_folder, tmp_path / "expected", REPO_ID)
    assert hub.files() == {path.name: path.read_bytes() for path in release.iterdir()}
    assert folder_digest(model_folder) == before


def test_uploading_an_unchanged_release_again_makes_no_commit(hub, model_folder, checked, tmp_path):
    release = assemble_release(model_folder, tmp_path / "release", REPO_ID, checked=checked)
    upload_release(release, REPO_ID, endpoint=hub.url, token=TOKEN)
    commits = hub.requests.count(f"POST /api/models/{REPO_ID}/commit/main")
    upload_release(release, REPO_ID, endpoint=hub.url, token=TOKEN)
    assert hub.requests.count(f"POST /api/models/{REPO_ID}/commit/main") == commits


def test_private_release_to_a_branch(hub, model_folder, checked, tmp_path, monkeypatch):
    release = assemble_release(model_folder, tmp_path / "release", REPO_ID, checked=checked)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    upload_release(release, REPO_ID, endpoint=hub.url, private=True, revision="v0.1")
    assert hub.repos[REPO_ID].private is True
    assert hub.files(branch="v0.1") == {path.name: path.read_bytes() for path in release.iterdir()}
    assert hub.files(branch="main") == {}


def test_private_release_into_an_existing_public_repo_is_refused(hub, model_folder, checked, tmp_path, monkeypatch):
    release = assemble_release(model_folder, tmp_path / "release", REPO_ID, checked=checked)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    hub.repos[REPO_ID] = FakeRepo(private=False)
    with pytest.raises(ReleaseError, match="already exists and is public"):
        upload_release(release, REPO_ID, endpoint=hub.url, private=True)
    assert hub.files() == {}


def test_a_wrong_token_is_not_retried(hub, model_folder, checked, tmp_path):
    release = assemble_release(model_folder, tmp_path / "release", REPO_ID, checked=checked)
    with pytest.raises(Exception, match="401"):
        upload_release(release, REPO_ID, endpoint=hub.url, token="hf_wrong", first_retry_wait_s=0.05)
    assert hub.requests.count("POST /api/repos/create") == 1


# Using the release


def released_hub(hub: FakeHub, model_folder: Path, checked, tmp_path: Path) -> Path:
    """Upload a release of the tiny model to `hub`; returns the local release folder."""
    release = assemble_release(model_folder, tmp_path / "release", REPO_ID, EVAL_RESULTS, checked=checked)
    upload_release(release, REPO_ID, endpoint=hub.url, token=TOKEN)
    return release


BLOCK_PACKAGE = textwrap.dedent(
    """
    import importlib.abc
    import sys

    class BlockProject(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {"configuration_mt2kd", "modeling_mt2kd", "processing_mt2kd", "training_mt2kd"}:
                raise ImportError(f"the MT2KD package must not be used here: {name}")

    sys.meta_path.insert(0, BlockProject())
    """
)

USE_RELEASE = textwrap.dedent(
    """
    import json
    import sys

    import soundfile
    import torch
    from transformers import AutoModelForAudioXVector, AutoFeatureExtractor, pipeline

    repo_id, speech_path, other_speech_path = sys.argv[1:4]
    speech, rate = soundfile.read(speech_path, dtype="float32")
    other, other_rate = soundfile.read(other_speech_path, dtype="float32")
    results = {}

    asr = pipeline("automatic-speech-recognition", model=repo_id, trust_remote_code=True)
    results["asr_model"] = type(asr.model).__name__
    results["asr"] = asr({"raw": speech, "sampling_rate": rate})["text"]

    tagger = pipeline("audio-classification", model=repo_id, trust_remote_code=True)
    results["tags"] = tagger({"raw": speech, "sampling_rate": rate}, top_k=4)

    extractor = AutoFeatureExtractor.from_pretrained(repo_id, trust_remote_code=True)
    xvector = AutoModelForAudioXVector.from_pretrained(repo_id, trust_remote_code=True).eval()
    with torch.no_grad():
        embeddings = [xvector(**extractor(audio, sampling_rate=sr, return_tensors="pt")).embeddings[0]
                      for audio, sr in ((speech, rate), (other, other_rate))]
    results["embedding_dim"] = embeddings[0].numel()
    results["cosine"] = torch.nn.functional.cosine_similarity(*embeddings, dim=0).item()

    custom = json.loads(sys.argv[4])
    if "mt2kd-transducer-asr" in custom:
        transducer = pipeline("mt2kd-transducer-asr", model=repo_id, trust_remote_code=True)
        results["mt2kd-transducer-asr"] = transducer(speech_path, decoding_method="modified_beam_search")["text"]
    if "mt2kd-speaker-verification" in custom:
        verifier = pipeline("mt2kd-speaker-verification", model=repo_id, trust_remote_code=True)
        results["mt2kd-speaker-verification"] = verifier.verify(speech_path, other_speech_path)["score"]
    if "mt2kd-multitask" in custom:
        analyse = pipeline("mt2kd-multitask", model=repo_id, trust_remote_code=True)
        results["mt2kd-multitask"] = sorted(analyse(speech_path))
    if "mt2kd-audio-classification" in custom:
        windowed = pipeline("mt2kd-audio-classification", model=repo_id, trust_remote_code=True)
        results["mt2kd-audio-classification"] = windowed(speech_path, top_k=4, window_length_s=1.0)
    if "mt2kd-streaming-asr" in custom:  # this release is not causal: the pipeline loads and refuses it clearly
        try:
            pipeline("mt2kd-streaming-asr", model=repo_id, trust_remote_code=True)(speech_path)
            results["mt2kd-streaming-asr"] = "decoded a non-causal model"
        except ValueError as error:
            results["mt2kd-streaming-asr"] = str(error)
    for stock_task, key in (("automatic-speech-recognition", "asr"), ("audio-classification", "tags")):
        if stock_task in custom:  # built above through the release's own subclass of the stock pipeline
            results[stock_task] = results[key]
    print("RESULTS " + json.dumps(results))
    """
)


def test_release_downloaded_into_a_process_without_the_package_runs_every_pipeline(
    hub, model_folder, checked, tmp_path, data_dir
):
    release = released_hub(hub, model_folder, checked, tmp_path)
    custom_pipelines = sorted(json.loads((release / "config.json").read_text())["custom_pipelines"])
    (tmp_path / "use_release.py").write_text(BLOCK_PACKAGE + USE_RELEASE)
    speech = data_dir / "an4" / "wav" / "fclc" / "an146-fclc-b.wav"
    other = data_dir / "an4" / "wav" / "fclc" / "an147-fclc-b.wav"
    env = {**hub_env(hub, tmp_path), "PYTHONPATH": "", "HF_TOKEN": ""}
    result = run_python(
        [str(tmp_path / "use_release.py"), REPO_ID, str(speech), str(other), json.dumps(custom_pipelines)],
        env=env,
        cwd=tmp_path,
    )

    assert result.returncode == 0, result.stderr[-4000:]
    results = json.loads(result.stdout.split("RESULTS ", 1)[1])
    assert results["asr_model"] == "MT2KDForCTC"
    assert isinstance(results["asr"], str)
    assert sorted(tag["label"] for tag in results["tags"]) == ["Dog", "Music", "Silence", "Speech"]
    assert all(0.0 <= tag["score"] <= 1.0 for tag in results["tags"])
    assert results["embedding_dim"] == checked.config.speaker_embedding_dim
    assert -1.0 <= results["cosine"] <= 1.0
    assert set(custom_pipelines) <= set(results)
    assert results["mt2kd-streaming-asr"].startswith("streaming needs a causal model")
    assert any(request.startswith(f"GET /{REPO_ID}/resolve/") for request in hub.requests)


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.DOTALL)


RUN_SNIPPETS = textwrap.dedent(
    """
    import sys
    import traceback

    for path in sys.argv[1:]:
        code = open(path).read()
        try:
            exec(compile(code, path, "exec"), {"__name__": "__main__"})  # a fresh namespace per snippet
        except Exception:
            print(f"SNIPPET FAILED {path}\\n{code}", file=sys.stderr)
            traceback.print_exc()
            sys.exit(1)
    """
)


def test_the_cards_usage_snippets_run(hub, model_folder, checked, tmp_path, data_dir):
    release = released_hub(hub, model_folder, checked, tmp_path)
    blocks = python_blocks((release / "README.md").read_text())
    custom_pipelines = json.loads((release / "config.json").read_text())["custom_pipelines"]
    # A snippet for each MT2KD task a non-causal folder serves (the streaming task needs a causal model).
    shown = {"mt2kd-speaker-verification", "mt2kd-transducer-asr", "mt2kd-multitask", "mt2kd-audio-classification"}
    assert shown <= set(custom_pipelines) and len(blocks) == 4 + len(shown)
    work = tmp_path / "user"
    work.mkdir()
    an4 = data_dir / "an4" / "wav" / "fclc"
    for name, source in {
        "speech.wav": "an146-fclc-b.wav",
        "enrol.wav": "an147-fclc-b.wav",
        "test.wav": "an148-fclc-b.wav",
        "sound.wav": "an149-fclc-b.wav",
    }.items():
        shutil.copyfile(an4 / source, work / name)
    for index, block in enumerate(blocks):
        (work / f"snippet_{index}.py").write_text(block)
    (work / "run_snippets.py").write_text(RUN_SNIPPETS)
    result = run_python(
        ["run_snippets.py", *(f"snippet_{index}.py" for index in range(len(blocks)))],
        env={**hub_env(hub, tmp_path), "HF_TOKEN": ""},
        cwd=work,
    )
    assert result.returncode == 0, result.stderr[-4000:]


def card_command_lines() -> list[str]:
    """The `mt2kd` command lines of the card template's "Command line" section."""
    section = (REPO_ROOT / "model_card.md").read_text().split("### Command line", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.DOTALL).group(1)
    return [line for line in block.splitlines() if line.startswith("mt2kd ")]


def uses_a_custom_pipeline(command_line: str) -> bool:
    return "--decoder transducer" in command_line or command_line.startswith(("mt2kd verify", "mt2kd embed"))


def run_card_commands(hub: FakeHub, tmp_path: Path, data_dir: Path, command_lines: list[str]) -> None:
    work = tmp_path / "user"
    work.mkdir()
    an4 = data_dir / "an4" / "wav" / "fclc"
    for name, source in {
        "speech.wav": "an146-fclc-b.wav",
        "enrol.wav": "an147-fclc-b.wav",
        "test.wav": "an148-fclc-b.wav",
        "sound.wav": "an149-fclc-b.wav",
    }.items():
        shutil.copyfile(an4 / source, work / name)
    for line in command_lines:
        arguments = shlex.split(line.replace("{{ repo_id }}", REPO_ID))[1:]
        result = run_python(
            ["-m", "training_mt2kd.cli.main", *arguments], env={**hub_env(hub, tmp_path), "HF_TOKEN": ""}, cwd=work
        )
        assert result.returncode == 0, f"{line}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
        assert '"error"' not in result.stdout, f"{line}\n{result.stdout[-2000:]}"


def test_the_cards_commands_on_stock_pipelines_run(hub, model_folder, checked, tmp_path, data_dir):
    released_hub(hub, model_folder, checked, tmp_path)
    lines = [line for line in card_command_lines() if not uses_a_custom_pipeline(line)]
    assert len(lines) == 2
    run_card_commands(hub, tmp_path, data_dir, lines)


def test_the_cards_commands_on_custom_pipelines_run(hub, model_folder, checked, tmp_path, data_dir):
    released_hub(hub, model_folder, checked, tmp_path)
    lines = [line for line in card_command_lines() if uses_a_custom_pipeline(line)]
    assert len(lines) == 2
    run_card_commands(hub, tmp_path, data_dir, lines)
