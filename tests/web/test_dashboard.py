"""The dashboard through Flask's test client: login, CSRF, review decisions with the audit
trail, outbox retry, quarantine, patient timeline, escaping and the serve command."""

from __future__ import annotations

import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import REVIEW_DEFAULTS, SAMPLES, ProcessedLab, write_config
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from web_support import PASSWORD, USERS, csrf_of, dashboard, login, make_lab
from werkzeug.security import check_password_hash

from saa_lab.cli import cli
from saa_lab.store.models import OutboxMessage
from saa_lab.store.queue import record_delivery
from saa_lab.store.review import audit_entries, run_view

RUN = 1  # RUN-G5-001, waiting for review
PAGES = ["/runs", f"/runs/{RUN}", "/review", "/outbox", "/quarantine", "/patients?id=PAT-1002",
         f"/runs/{RUN}/report.html"]  # fmt: skip


@pytest.fixture
def lab(tmp_path: Path, runner: CliRunner) -> ProcessedLab:
    return make_lab(tmp_path / "lab", runner)


@pytest.fixture
def app(lab: ProcessedLab) -> Iterator[Flask]:
    with dashboard(lab) as made:
        yield made


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def _messages(lab: ProcessedLab) -> list[OutboxMessage]:
    with lab.store() as store, store.session() as s:
        rows = list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
        s.expunge_all()
        return rows


# -- login -------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES)
def test_every_page_needs_a_login(client: FlaskClient, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_static_files_and_the_login_page_need_none(client: FlaskClient) -> None:
    assert client.get("/static/style.css").status_code == 200
    page = client.get("/login")
    assert page.status_code == 200
    assert 'name="csrf_token"' in page.get_data(as_text=True)


def test_a_login_opens_every_page(client: FlaskClient) -> None:
    login(client)
    for page in PAGES:
        response = client.get(page)
        assert response.status_code == 200, page
        assert response.headers["Cache-Control"] == "no-store"
        assert "script-src" not in response.headers["Content-Security-Policy"]  # none at all


def test_login_goes_back_to_the_page_asked_for_but_not_off_site(client: FlaskClient) -> None:
    token = csrf_of(client.get("/login").get_data(as_text=True))
    form = {"username": "amoss", "password": PASSWORD, "csrf_token": token}
    assert client.post("/login?next=/outbox", data=form).headers["Location"] == "/outbox"
    token = csrf_of(client.get("/login").get_data(as_text=True))
    form["csrf_token"] = token
    assert client.post("/login?next=//evil.example/x", data=form).headers["Location"] == "/runs"


@pytest.mark.parametrize(
    ("name", "password"),
    [("amoss", "wrong password"), ("nobody", PASSWORD), ("nopass", PASSWORD), ("nopass", "")],
)
def test_a_wrong_password_unknown_user_or_user_without_hash_cannot_log_in(
    client: FlaskClient, name: str, password: str
) -> None:
    token = csrf_of(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"username": name, "password": password,
                                           "csrf_token": token})  # fmt: skip
    assert response.status_code == 401
    assert "wrong password" in response.get_data(as_text=True)
    assert client.get("/runs").status_code == 302


def test_the_session_cookie_is_httponly_and_samesite_strict(client: FlaskClient) -> None:
    response = client.get("/login")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie


def test_logging_out_ends_the_session(client: FlaskClient) -> None:
    token = login(client)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/runs").status_code == 302


def test_a_changed_password_ends_the_users_sessions(app: Flask, client: FlaskClient) -> None:
    from saa_lab.web.views import Lab

    login(client)
    lab = app.extensions["saa_lab"]
    users = tuple(
        u.model_copy(update={"password_hash": f"{u.password_hash}x"}) if u.name == "amoss" else u
        for u in lab.config.users
    )
    app.extensions["saa_lab"] = Lab(lab.config.model_copy(update={"users": users}), lab.store)
    assert client.get("/runs").status_code == 302


def test_the_secret_key_is_made_once_readable_only_by_its_owner(lab: ProcessedLab) -> None:
    with dashboard(lab) as first, dashboard(lab) as second:
        assert first.secret_key == second.secret_key
    key_file = lab.config_path.parent / "saa-lab-web.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(key_file.read_text().strip()) == 64


# -- CSRF --------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "", "forged"])
def test_a_post_without_the_csrf_token_is_refused(
    client: FlaskClient, lab: ProcessedLab, token: str | None
) -> None:
    login(client)
    form = {"meaning": "approved"} | ({} if token is None else {"csrf_token": token})
    response = client.post(f"/runs/{RUN}/release", data=form)
    assert response.status_code == 400
    assert "security token" in response.get_data(as_text=True)
    with lab.store() as store:
        assert run_view(store, RUN).review_status == "waiting"
    assert _messages(lab) == []


def test_the_login_form_needs_its_csrf_token_too(client: FlaskClient) -> None:
    client.get("/login")
    response = client.post("/login", data={"username": "amoss", "password": PASSWORD})
    assert response.status_code == 400


def test_a_post_without_a_login_is_refused(client: FlaskClient, lab: ProcessedLab) -> None:
    token = csrf_of(client.get("/login").get_data(as_text=True))
    response = client.post(f"/runs/{RUN}/release", data={"meaning": "approved",
                                                          "csrf_token": token})  # fmt: skip
    assert response.status_code == 401
    assert _messages(lab) == []


# -- review ------------------------------------------------------------------------


def test_the_review_queue_lists_the_waiting_run_with_its_forms(client: FlaskClient) -> None:
    login(client)
    page = client.get("/review").get_data(as_text=True)
    assert "1 run(s) wait for a person" in page
    assert "SAA-0002" in page  # held: possible silent inactivation
    assert f'action="/runs/{RUN}/release"' in page
    assert f'action="/runs/{RUN}/reject"' in page


def test_release_through_the_form_queues_messages_and_audits_the_user(
    client: FlaskClient, lab: ProcessedLab
) -> None:
    token = login(client)
    with lab.store() as store:
        waiting = [r.id for r in run_view(store, RUN).waiting]
        rev = run_view(store, RUN).review_rev
    assert waiting
    response = client.post(f"/runs/{RUN}/release", data={
        "csrf_token": token, "meaning": "approved", "comment": "checked the curve",
        "rev": str(rev), "back": "run"}, follow_redirects=True)  # fmt: skip
    page = response.get_data(as_text=True)
    assert f"{len(waiting)} result(s) released by amoss (approved)" in page
    messages = _messages(lab)
    assert {m.result_id for m in messages} >= set(waiting)
    assert all(m.status == "pending" for m in messages)  # the daemon sends them
    with lab.store() as store:
        assert run_view(store, RUN).review_status == "released"
        run_audit = audit_entries(store, "run", [RUN])
        result_audit = audit_entries(store, "result", waiting)
    (decision,) = [e for e in run_audit if e.action == "run-released"]
    assert decision.actor == "amoss"
    assert decision.detail["meaning"] == "approved"
    assert decision.reason == "checked the curve"
    assert {e.actor for e in result_audit if e.action == "result-released"} == {"amoss"}
    outbox = client.get("/outbox").get_data(as_text=True)
    assert messages[0].control_id in outbox


def test_a_release_the_users_roles_do_not_allow_is_shown_not_done(
    client: FlaskClient, lab: ProcessedLab
) -> None:
    token = login(client, "rvega")  # a reviewer, not an approver
    page = client.get("/review").get_data(as_text=True)
    assert '<option value="approved">' not in page
    response = client.post(f"/runs/{RUN}/release", data={
        "csrf_token": token, "meaning": "approved"}, follow_redirects=True)  # fmt: skip
    assert "not released: rvega (Rosa Vega) may not release with meaning" in response.get_data(
        as_text=True
    )
    assert _messages(lab) == []


def test_a_decision_on_a_stale_page_is_a_conflict(client: FlaskClient, lab: ProcessedLab) -> None:
    token = login(client)
    form = {"csrf_token": token, "meaning": "approved", "rev": "99"}
    response = client.post(f"/runs/{RUN}/release", data=form, follow_redirects=True)
    assert "not released" in response.get_data(as_text=True)
    with lab.store() as store:
        assert run_view(store, RUN).review_status == "waiting"


def test_reject_through_the_form(client: FlaskClient, lab: ProcessedLab) -> None:
    token = login(client, "rvega")
    response = client.post(f"/runs/{RUN}/reject", data={
        "csrf_token": token, "reason": "bubbles in row D"}, follow_redirects=True)  # fmt: skip
    assert "rejected by rvega" in response.get_data(as_text=True)
    with lab.store() as store:
        view = run_view(store, RUN)
        assert view.review_status == "rejected"
        entries = audit_entries(store, "run", [RUN])
    assert [(e.actor, e.reason) for e in entries if e.action == "run-rejected"] == [
        ("rvega", "bubbles in row D")
    ]
    assert "Nothing waits for review" in client.get("/review").get_data(as_text=True)


def test_a_rejection_needs_a_reason(client: FlaskClient, lab: ProcessedLab) -> None:
    token = login(client)
    response = client.post(f"/runs/{RUN}/reject", data={"csrf_token": token, "reason": " "},
                           follow_redirects=True)  # fmt: skip
    assert "not rejected: a rejection needs a --reason" in response.get_data(as_text=True)


# -- run page, outbox, quarantine, patient -------------------------------------------


def test_the_run_page_shows_the_report_with_its_curve(client: FlaskClient) -> None:
    login(client)
    page = client.get(f"/runs/{RUN}").get_data(as_text=True)
    assert 'id="chart-curve"><svg' in page
    assert "Standard curve" in page
    assert f"/runs/{RUN}/report.pdf" in page


def test_the_pdf_is_rendered_on_demand(client: FlaskClient) -> None:
    login(client)
    response = client.get(f"/runs/{RUN}/report.pdf")
    assert response.status_code == 200
    assert response.data.startswith(b"%PDF")
    assert ".run1.report.pdf" in response.headers["Content-Disposition"]


def test_an_unknown_run_is_404(client: FlaskClient) -> None:
    login(client)
    assert client.get("/runs/999").status_code == 404
    assert client.get("/runs/999/report.pdf").status_code == 404


def test_a_dead_letter_is_retried_from_the_outbox_page(
    client: FlaskClient, lab: ProcessedLab
) -> None:
    token = login(client)
    client.post(f"/runs/{RUN}/release", data={"csrf_token": token, "meaning": "approved"})
    first = _messages(lab)[0]
    with lab.store() as store:
        record_delivery(store, first.id, "dead", ack_code="AR", error="unknown patient")
    page = client.get("/outbox").get_data(as_text=True)
    dead_section = page.split("<h2>Dead letters")[1].split("<h2>")[0]
    assert first.control_id in dead_section
    assert "AR: unknown patient" in dead_section
    response = client.post("/outbox/retry", data={"csrf_token": token,
                                                  "message_id": str(first.id)},
                           follow_redirects=True)  # fmt: skip
    assert "Requeued 1 dead message(s)" in response.get_data(as_text=True)
    again = next(m for m in _messages(lab) if m.id == first.id)
    assert (again.status, again.control_id) == ("pending", first.control_id)
    with lab.store() as store:
        entries = audit_entries(store, "message", [first.control_id])
    assert [e.actor for e in entries if e.action == "message-requeued"] == ["amoss"]


def test_the_quarantine_page_lists_files_with_their_reasons(
    client: FlaskClient, lab: ProcessedLab
) -> None:
    folder = lab.folder / "quarantine"
    folder.mkdir(exist_ok=True)
    (folder / "plate7.txt").write_text("garbage")
    (folder / "plate7.txt.error.txt").write_text(
        "plate7.txt:3: cannot read well <B2>: 'x1.2' is not a number\n"
    )
    (folder / "lonely.csv").write_text("a,b")
    login(client)
    page = client.get("/quarantine").get_data(as_text=True)
    row = page.split("plate7.txt</td>")[1].split("</tr>")[0]
    assert "cannot read well &lt;B2&gt;: &#39;x1.2&#39; is not a number" in row
    assert "plate7.txt.error.txt</td>" not in page  # the sidecar is not a file of its own
    assert "lonely.csv</td>" in page
    assert "(no reason file)" in page


def test_the_patient_timeline_has_a_chart(client: FlaskClient) -> None:
    login(client)
    page = client.get("/patients?id=PAT-1002").get_data(as_text=True)
    assert 'id="patient-chart"><svg' in page
    assert "SAA-0002" in page
    assert "threshold 100 U/L" in page
    unknown = client.get("/patients?id=PAT-none").get_data(as_text=True)
    assert "No results for patient PAT-none" in unknown
    assert "<svg" not in unknown


def test_hostile_text_from_files_is_escaped_on_every_page(
    tmp_path: Path, runner: CliRunner
) -> None:
    """An accession and an export name that are HTML reach every page as text."""
    hostile = "<script>alert(1)</script>"
    folder = tmp_path / "lab"
    config_path = write_config(folder, USERS, database_url=f"sqlite:///{folder / 'lab.db'}",
                               autoverification=REVIEW_DEFAULTS)  # fmt: skip
    lab = ProcessedLab(config_path, folder, "", {})
    drop = tmp_path / "drop"
    drop.mkdir()
    export = drop / '<img src=x onerror="alert(2)">.txt'
    export.write_bytes((SAMPLES / "biotek_gen5" / "RUN-G5-001.txt").read_bytes())
    worklist = drop / "hostile.worklist.csv"
    text = (SAMPLES / "biotek_gen5" / "RUN-G5-001.worklist.csv").read_text()
    worklist.write_text(text.replace("SAA-0002", hostile))
    result = runner.invoke(cli, ["--config", str(lab.config_path), "process", str(export),
                                 "--worklist", str(worklist)])  # fmt: skip
    assert result.exit_code == 0, result.output
    with dashboard(lab) as app:
        client = app.test_client()
        login(client)
        run = 1
        for page in ["/runs", f"/runs/{run}", "/review", "/patients?id=PAT-1002"]:
            body = client.get(page).get_data(as_text=True)
            assert "<script>alert" not in body, page
            assert "<img src=x" not in body, page
            if page != "/runs":
                assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body, page
            if page != "/patients?id=PAT-1002":
                assert "&lt;img src=x onerror=" in body, page


# -- the commands ----------------------------------------------------------------------


def test_user_password_prints_a_hash_to_paste(runner: CliRunner, lab: ProcessedLab) -> None:
    secret = "a long enough password"
    result = runner.invoke(cli, ["--config", str(lab.config_path), "user", "password", "amoss"],
                           input=f"short\n{secret}\n{secret}\n")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "at least 10 characters" in result.output
    line = next(x for x in result.output.splitlines() if x.startswith("password_hash = "))
    hashed = line.split('"')[1]
    assert hashed.startswith("scrypt:")
    assert check_password_hash(hashed, secret)
    assert secret not in result.stdout


def test_serve_warns_when_it_listens_beyond_this_computer(
    runner: CliRunner, lab: ProcessedLab
) -> None:
    with socket.socket() as taken:  # the port is taken: serve stops after its warnings
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(cli, ["--config", str(lab.config_path), "serve",
                                     "--host", "0.0.0.0", "--port", str(port)])  # fmt: skip
    assert result.exit_code == 1
    assert "put a reverse proxy with TLS in front" in result.output
    assert f"cannot listen on 0.0.0.0:{port}" in result.output
