"""The anonymity rules attacked from outside: every number a role can reach, solved for raters.

Random rater pools go through the real stack — invitations, answers posted to the survey
API, the manager's close, reports built by a real Celery worker into PostgreSQL — and
the attacker of ``tests/reports/adversary.py`` reads what the coach sees (report JSON, web
page, PDF text, team view) and what the manager sees (every route the site has). It
must find nothing; pointed at deliberately broken reports (a test-only switch in the
scoring: the old spread number, or a dropped group folded into Others) it must find the
leak, so the attacks are known to bite.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db.models import Exists
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from reports import scoring, selectors
from reports.models import CoachAssignment, Release, Report
from reports.services import coach_assign, report_build, report_data_compute
from surveys import services as surveys_services
from surveys.models import Cycle, Invitation, Person, Reminder, Subject
from tests.factories import UserFactory
from tests.reports.adversary import (
    DIRECT_REPORT,
    MANAGER,
    OUTSIDE,
    PEER,
    SELF,
    Interpreter,
    Rater,
    Scenario,
    Unexplained,
    decimals,
    enumeration_attack,
    json_decimals,
    linear_attack,
    visible_text,
)
from tests.reports.probe import CODES, DIMENSIONS, QUESTIONNAIRE
from tests.reports.surfaces import crawl, readable, route_urls

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# Rule constants a page may print next to the figures (the ±0.5 margins of gaps and balance).
RULE_NUMBERS = {"0.5"}


def pool_draw(rng: random.Random, *, cant_say: float) -> list[Rater]:
    """Manager 0/1, peers 0–5, direct reports 0–5, outside raters 0–3, self mostly."""
    sizes = {
        SELF: int(rng.random() < 0.85),
        MANAGER: rng.randint(0, 1),
        PEER: rng.randint(0, 5),
        DIRECT_REPORT: rng.randint(0, 5),
        OUTSIDE: rng.randint(0, 3),
    }
    raters = []
    for group, size in sizes.items():
        for _ in range(size):
            level = rng.choice((2, 3, 4))
            ratings = {
                code: None if rng.random() < cant_say else max(1, min(5, level + rng.choice((-2, -1, 0, 0, 1, 2))))
                for code in CODES
            }
            comments = {"keep_doing": f"keep {rng.randrange(10**6)}"} if rng.random() < 0.4 else {}
            raters.append(Rater(group=group, ratings=ratings, comments=comments))
    # Every subject needs a rater to be launched.
    return raters or [Rater(group=SELF, ratings=dict.fromkeys(CODES, 3), comments={})]


@dataclass
class World:
    cycle: Cycle
    scenarios: dict[int, Scenario]  # subject id → what the attacker knows about its raters
    reports: dict[int, int]  # subject id → report id


def _post_answers(client: Client, token: str, rater: Rater) -> None:
    response = client.post(
        f"/api/survey/{token}/responses/",
        {"ratings": dict(rater.ratings), "comments": dict(rater.comments)},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content


def world_build(
    *, manager: User, k: int, pools: list[list[Rater]], name: str, people: list[Person] | None = None
) -> World:
    """A cycle with one subject per pool, answered through the survey API, closed by its manager.

    ``people`` reviews people of an earlier world again (their previous report is then
    the "before" of a trend).
    """
    questionnaire = surveys_services.questionnaire_load(data=QUESTIONNAIRE)
    if people is None:
        team = surveys_services.team_create(manager=manager, name=f"Team {name}")
        people = [
            Person.objects.create(team=team, name=f"Subject {name}-{n}", email=f"subject-{name}-{n}@probe.test")
            for n in range(len(pools))
        ]
    team = people[0].team
    cycle = surveys_services.cycle_create(
        team=team,
        by=manager,
        name=f"Probe {name}",
        deadline=timezone.now() + timedelta(days=3),
        people=people,
        questionnaire=questionnaire,
        anonymity_min=k,
        default_raters=False,
    )
    subjects = {subject.person_id: subject for subject in Subject.objects.filter(cycle=cycle).select_related("person")}
    invited: list[tuple[Invitation, Rater]] = []
    scenarios = {}
    for person, pool in zip(people, pools, strict=True):
        subject = subjects[person.pk]
        for number, rater in enumerate(pool):
            email = person.email if rater.group == SELF else f"{rater.group}-{number}-{person.pk}@probe.test"
            invited.append(
                (surveys_services.rater_add(cycle=cycle, subject=subject, email=email, group=rater.group), rater)
            )
        scenarios[subject.pk] = Scenario(k=k, dimensions=DIMENSIONS, raters=tuple(pool))
    assert surveys_services.cycle_launch(cycle=cycle, by=manager)
    tokens = [(surveys_services.invitation_link_create(invitation=invitation), rater) for invitation, rater in invited]
    random.Random(k).shuffle(tokens)
    survey = Client()
    for token, rater in tokens:
        _post_answers(survey, token, rater)
    api = APIClient()
    api.force_authenticate(manager)
    assert api.post(f"/api/cycles/{cycle.pk}/close/").json() == {"changed": True, "status": "closed"}
    reports = dict(Report.objects.filter(cycle=cycle).values_list("subject_id", "id"))
    return World(cycle=cycle, scenarios=scenarios, reports=reports)


def reports_ready(worlds: list[World]) -> None:
    ids = [report for world in worlds for report in world.reports.values()]
    deadline = time.monotonic() + 240
    while Report.objects.filter(id__in=ids, status=Report.Status.READY).count() < len(ids):
        failed = list(Report.objects.filter(id__in=ids, status=Report.Status.FAILED).values_list("reason", flat=True))
        assert not failed, failed
        assert time.monotonic() < deadline, "reports not ready in time"
        time.sleep(0.25)


def attack(scenario: Scenario, figures_json: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    figures = Interpreter(scenario).read(figures_json)
    return linear_attack(scenario, figures), enumeration_attack(scenario, figures)


@pytest.fixture
def probe_people(default_questionnaire: None) -> Iterator[tuple[User, User]]:
    from django.contrib.auth.models import Group

    from reports.selectors import COACHES_GROUP

    coach = UserFactory(username="probe-coach")
    coach.groups.add(Group.objects.get_or_create(name=COACHES_GROUP)[0])
    yield UserFactory(username="probe-manager"), coach


def test_no_figure_a_coach_can_reach_gives_an_anonymous_rater_away(
    celery_worker: Any, probe_people: tuple[User, User]
) -> None:
    # given: three cycles (k = 2, 3, 4) of random pools, one with many "can't say" answers
    manager, coach = probe_people
    rng = random.Random(360)
    worlds = []
    for k, cant_say in ((2, 0.0), (3, 0.0), (3, 0.25), (4, 0.1)):
        pools = [pool_draw(rng, cant_say=cant_say) for _ in range(7)]
        world = world_build(manager=manager, k=k, pools=pools, name=f"k{k}-{int(cant_say * 100)}")
        coach_assign(cycle=world.cycle, coach=coach, by=manager)
        worlds.append(world)
    reports_ready(worlds)
    client = Client()
    client.force_login(coach)

    attacked = 0
    for world in worlds:
        cycle_numbers: set[str] = set()
        for subject_id, report_id in world.reports.items():
            scenario = world.scenarios[subject_id]
            # when: the attacker reads the JSON, the page and the PDF
            data = client.get(f"/api/reports/{report_id}/").json()["figures"]
            isolations, narrowings = attack(scenario, data)
            # then: nothing isolates fewer than k anonymous raters, nothing narrows a group
            assert isolations == [], (world.cycle.name, subject_id, isolations)
            assert narrowings == [], (world.cycle.name, subject_id, narrowings)
            known = json_decimals(data) | RULE_NUMBERS
            page = readable(client.get(f"/reports/{report_id}/"))
            pdf = readable(client.get(f"/reports/{report_id}/pdf/"))
            assert decimals(page) <= known, decimals(page) - known
            assert decimals(pdf) <= known, decimals(pdf) - known
            cycle_numbers |= json_decimals(data)
            attacked += any(r.anonymous for r in scenario.raters)
        # the team view shows no number its people's reports do not
        team = visible_text(client.get(f"/reports/cycles/{world.cycle.pk}/team/").content.decode())
        assert decimals(team) <= cycle_numbers | RULE_NUMBERS
        points = client.get(f"/api/reports/cycles/{world.cycle.pk}/team/").json()
        assert decimals(str(points)) <= cycle_numbers
    assert attacked >= 20  # the pools really had anonymous raters to attack


def test_the_attacks_find_the_leak_in_a_deliberately_broken_report(
    probe_people: tuple[User, User], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: the pools the old report leaked — two peers beside the manager at k = 2 (the
    # mean, n, spread and manager's score pin both peers down), and a lone direct report
    # beside three peers at k = 3 (a dropped group folded into Others is Others minus the
    # shown groups)
    manager, _ = probe_people
    rng = random.Random(7)

    def raters(group: str, count: int) -> list[Rater]:
        return [
            Rater(group=group, ratings={code: rng.randint(1, 5) for code in CODES}, comments={}) for _ in range(count)
        ]

    spread_pools = [raters(MANAGER, 1) + raters(PEER, 2) for _ in range(3)]
    fold_pools = [raters(MANAGER, 1) + raters(PEER, 3) + raters(DIRECT_REPORT, 1) for _ in range(2)]
    spread_world = world_build(manager=manager, k=2, pools=spread_pools, name="spread")
    fold_world = world_build(manager=manager, k=3, pools=fold_pools, name="fold")

    # when/then: the report as built is safe for these pools too
    for world in (spread_world, fold_world):
        for subject_id, report_id in world.reports.items():
            assert attack(world.scenarios[subject_id], report_data_compute(report_id=report_id)) == ([], [])

    # when: the report re-adds the spread of Others as a number
    monkeypatch.setattr(scoring, "_TEST_ONLY_LEAK", "sd")
    narrowed = 0
    for subject_id, report_id in spread_world.reports.items():
        _, narrowings = attack(spread_world.scenarios[subject_id], report_data_compute(report_id=report_id))
        narrowed += bool(narrowings)
    # then: the enumeration pins the peers' scores down further than their mean allows
    assert narrowed >= 2

    # when: the report folds a dropped group into Others
    monkeypatch.setattr(scoring, "_TEST_ONLY_LEAK", "fold_dropped")
    for subject_id, report_id in fold_world.reports.items():
        scenario = fold_world.scenarios[subject_id]
        isolations, _ = attack(scenario, report_data_compute(report_id=report_id))
        # then: the linear attack isolates the lone direct report, and solves for their answers
        lone = next(index for index, rater in enumerate(scenario.raters) if rater.group == DIRECT_REPORT)
        assert isolations, "the fold went unnoticed"
        assert all(lone in isolation.raters for isolation in isolations)
        assert all(
            len(isolation.raters & {i for i, r in enumerate(scenario.raters) if r.anonymous}) < 3
            for isolation in isolations
        )


def test_an_unexplained_number_in_a_report_is_caught(probe_people: tuple[User, User]) -> None:
    # The attacks read only the figures the rules publish: any other number is refused,
    # so a new figure cannot slip past them unexamined.
    manager, _ = probe_people
    pool = [Rater(group=PEER, ratings=dict.fromkeys(CODES, 3), comments={}) for _ in range(3)]
    world = world_build(manager=manager, k=3, pools=[pool], name="stray")
    [(subject_id, report_id)] = world.reports.items()
    data = report_data_compute(report_id=report_id)
    Interpreter(world.scenarios[subject_id]).read(data)
    data["dimensions"][0]["others"]["lowest"] = 2.0
    with pytest.raises(Unexplained, match=re.escape("dimensions[].others.lowest")):
        Interpreter(world.scenarios[subject_id]).read(data)
    data = report_data_compute(report_id=report_id)
    data["dimensions"][0]["groups"][0]["score"] += 0.1
    with pytest.raises(Unexplained, match="the published figure is"):
        Interpreter(world.scenarios[subject_id]).read(data)


def test_a_trend_shows_only_what_both_reports_show(celery_worker: Any, probe_people: tuple[User, User]) -> None:
    # given: the same people reviewed twice, at k = 3 and then at k = 3 again; between the
    # reviews one rater joins each pool — the case where subtracting the two reviews' means
    # would single out the newcomer if a trend added precision
    manager, coach = probe_people
    rng = random.Random(11)
    first_pools = [pool_draw(rng, cant_say=0.0) for _ in range(4)]
    second_pools = [[*pool, Rater(group=PEER, ratings=dict.fromkeys(CODES, 5), comments={})] for pool in first_pools]
    before = world_build(manager=manager, k=3, pools=first_pools, name="before")
    people = [Subject.objects.get(pk=subject).person for subject in before.reports]
    coach_assign(cycle=before.cycle, coach=coach, by=manager)
    reports_ready([before])
    after = world_build(manager=manager, k=3, pools=second_pools, name="after", people=people)
    coach_assign(cycle=after.cycle, coach=coach, by=manager)
    reports_ready([after])
    client = Client()
    client.force_login(coach)
    earlier = {
        Subject.objects.get(pk=subject).person_id: client.get(f"/api/reports/{report}/").json()["figures"]
        for subject, report in before.reports.items()
    }
    trends = 0
    for subject_id, report_id in after.reports.items():
        data = client.get(f"/api/reports/{report_id}/").json()["figures"]
        previous = earlier[data["subject"]["person_id"]]
        # when/then: every number of the trend repeats one of the two reports, or their difference
        figures = Interpreter(after.scenarios[subject_id]).read(data, previous=previous)
        assert linear_attack(after.scenarios[subject_id], figures) == []
        trends += data["trend"] is not None
    assert trends >= 2


def _manager_surfaces(client: Client, world: World, extra: dict[str, list[Any]] | None = None) -> dict[str, str]:
    cycle = world.cycle
    values: dict[str, list[Any]] = {
        "cycle_id": [cycle.pk],
        "team_id": [cycle.team_id],
        "person_id": list(cycle.team.people.values_list("id", flat=True)),
        "report_id": list(world.reports.values()),
        "rater_id": list(cycle.invitations.values_list("id", flat=True)),
        **(extra or {}),
    }
    urls = [*route_urls(values), f"/api/reports/?cycle={cycle.pk}"]
    return {url: text for url, (status, text) in crawl(client, urls).items() if status == 200}


def test_a_manager_who_plants_raters_sees_no_score_of_the_real_one(
    celery_worker: Any, probe_people: tuple[User, User]
) -> None:
    # given: the manager chooses the raters — k − 1 outside raters whose answers they know
    # (their own addresses) beside one real peer, plus themself as the subject's manager
    manager, coach = probe_people
    planted = [Rater(group=OUTSIDE, ratings=dict.fromkeys(CODES, 3), comments={}) for _ in range(2)]
    real = Rater(group=PEER, ratings={code: 1 + n % 5 for n, code in enumerate(CODES)}, comments={"keep_doing": "x"})
    boss = Rater(group=MANAGER, ratings=dict.fromkeys(CODES, 4), comments={})
    world = world_build(manager=manager, k=3, pools=[[boss, *planted, real]], name="planted")
    coach_assign(cycle=world.cycle, coach=coach, by=manager)
    reports_ready([world])
    coach_client = Client()
    coach_client.force_login(coach)
    scores = json_decimals(coach_client.get(f"/api/reports/{next(iter(world.reports.values()))}/").json()["figures"])
    assert scores  # the coach's report has Others figures (pooled with the real peer)
    # when: the manager reads every route the site has, with every id of the cycle
    client = Client()
    client.force_login(manager)
    surfaces = _manager_surfaces(client, world)
    # then: reports and team view are not for them, and no page or response holds a score
    assert f"/cycles/{world.cycle.pk}/" in surfaces and f"/api/cycles/{world.cycle.pk}/progress/" in surfaces
    for report_id in world.reports.values():
        for url in (f"/reports/{report_id}/", f"/api/reports/{report_id}/", f"/reports/{report_id}/pdf/"):
            assert url not in surfaces, url
    assert f"/reports/cycles/{world.cycle.pk}/team/" not in surfaces
    leaked = {url: decimals(text) for url, text in surfaces.items() if decimals(text)}
    assert leaked == {}


@pytest.mark.parametrize("rule", ["kept", "broken"])
def test_a_coach_who_rated_the_person_sees_no_score_of_the_other_raters(
    celery_worker: Any, probe_people: tuple[User, User], monkeypatch: pytest.MonkeyPatch, rule: str
) -> None:
    if rule == "broken":
        # The attack must find the leak when the rule is missing (a coach's own answer unknown to it).
        monkeypatch.setattr(selectors, "_rated_anonymously_by", lambda user: Exists(Invitation.objects.none()))
    # given: three peers, exactly k; the first answered from the address of a coach's account
    manager, other_coach = probe_people
    peers = [Rater(group=PEER, ratings={code: 1 + (n + m) % 5 for m, code in enumerate(CODES)}) for n in range(3)]
    world = world_build(manager=manager, k=3, pools=[peers], name="coach-rated")
    person = world.cycle.subjects.get().person
    coach = UserFactory(username="rating-coach", email=f"{PEER}-0-{person.pk}@probe.test".upper())
    coach_assign(cycle=world.cycle, coach=other_coach, by=manager)
    # assigned behind the service's back, which refuses it
    CoachAssignment.objects.create(coach=coach, cycle=world.cycle, created_by=manager)
    reports_ready([world])
    (report_id,) = world.reports.values()
    reader = Client()
    reader.force_login(other_coach)
    assert json_decimals(reader.get(f"/api/reports/{report_id}/").json()["figures"])  # the report has figures
    # when: the coach who rated reads every route the site has, with every id of the cycle
    client = Client()
    client.force_login(coach)
    surfaces = _manager_surfaces(client, world)
    # then: knowing their own answers, any figure would leave two peers; none is reachable
    leaked = {url: decimals(text) for url, text in surfaces.items() if decimals(text)}
    if rule == "broken":
        assert f"/api/reports/{report_id}/" in leaked
        return
    for url in (f"/reports/{report_id}/", f"/api/reports/{report_id}/", f"/reports/{report_id}/pdf/"):
        assert url not in surfaces, url
    assert f"/reports/cycles/{world.cycle.pk}/team/" not in surfaces
    assert leaked == {}


def test_a_manager_who_changes_the_subjects_address_does_not_receive_the_released_report(
    probe_people: tuple[User, User],
) -> None:
    # given: a closed cycle whose report is ready, the coach about to release it
    manager, coach = probe_people
    pool = [Rater(group=PEER, ratings=dict.fromkeys(CODES, 4), comments={}) for _ in range(3)]
    world = world_build(manager=manager, k=3, pools=[pool], name="address")
    [(subject_id, report_id)] = world.reports.items()
    report_build(report_id=report_id)
    coach_assign(cycle=world.cycle, coach=coach, by=manager)
    person = Subject.objects.get(pk=subject_id).person
    launched_with = person.email
    # when: the manager points the person's address at a mailbox of their own, then the coach releases
    api = APIClient()
    api.force_authenticate(manager)
    changed = api.patch(f"/api/people/{person.pk}/", {"email": "mine@manager.test"}, format="json")
    assert changed.status_code == 200
    api.force_authenticate(coach)
    release = api.post(f"/api/reports/{report_id}/release/")
    # then: the report goes to the address the person had when the review was launched
    assert release.status_code == 201
    assert release.json()["email"] == launched_with
    assert Release.objects.get().email == launched_with


def _normalized(surfaces: dict[str, str]) -> dict[str, str]:
    # Visible text and JSON only (the per-view CSRF token sits in a hidden field, not
    # compared), with runs of white space made one.
    return {url: " ".join(text.split()) for url, text in surfaces.items()}


def _remind(client: Client, cycle: Cycle) -> tuple[int, list[str]]:
    """What asking for a reminder answers (status, fields); the hourly limit is reset after."""
    response = client.post(f"/api/cycles/{cycle.pk}/remind/", content_type="application/json")
    Reminder.objects.filter(cycle=cycle).delete()
    return response.status_code, sorted(response.json())


@pytest.mark.parametrize("invited", [1, 4])
@pytest.mark.parametrize("action", ["answers", "declines"])
def test_a_lone_anonymous_rater_acting_changes_only_the_pooled_count(
    probe_people: tuple[User, User], invited: int, action: str
) -> None:
    # given: a subject whose anonymous raters are one direct report (and, in the second
    # case, three peers too, so that the pool reaches k = 3 invited)
    manager, _ = probe_people
    pool = [Rater(group=SELF, ratings=dict.fromkeys(CODES, 4), comments={})]
    pool += [Rater(group=DIRECT_REPORT, ratings=dict.fromkeys(CODES, 2), comments={})]
    pool += [Rater(group=PEER, ratings=dict.fromkeys(CODES, 3), comments={}) for _ in range(invited - 1)]
    questionnaire = surveys_services.questionnaire_load(data=QUESTIONNAIRE)
    team = surveys_services.team_create(manager=manager, name="Progress")
    person = Person.objects.create(team=team, name="Jonas Berg", email="jonas@probe.test")
    cycle = surveys_services.cycle_create(
        team=team,
        by=manager,
        name="Progress",
        deadline=timezone.now() + timedelta(days=3),
        people=[person],
        questionnaire=questionnaire,
        default_raters=False,
    )
    subject = cycle.subjects.get()
    invitations = [
        surveys_services.rater_add(
            cycle=cycle,
            subject=subject,
            email=person.email if rater.group == SELF else f"{rater.group}-{n}@probe.test",
            group=rater.group,
        )
        for n, rater in enumerate(pool)
    ]
    surveys_services.cycle_launch(cycle=cycle, by=manager)
    client = Client()
    client.force_login(manager)
    world = World(cycle=cycle, scenarios={}, reports={})
    before = _normalized(_manager_surfaces(client, world))
    remind_before = _remind(client, cycle)
    # when: the lone direct report acts
    token = surveys_services.invitation_link_create(invitation=invitations[1])
    if action == "answers":
        _post_answers(Client(), token, pool[1])
    else:
        assert Client().post(f"/api/survey/{token}/decline/", {}, content_type="application/json").status_code == 201
    after = _normalized(_manager_surfaces(client, world))
    remind_after = _remind(client, cycle)
    # then: below k invited nothing moves; from k invited only the pooled count, if answered
    assert remind_after == remind_before
    changed = {url for url in before if before[url] != after.get(url)}
    if invited < 3 or action == "declines":
        assert changed == set(), changed
    else:
        assert changed == {f"/cycles/{cycle.pk}/", f"/api/cycles/{cycle.pk}/progress/"}
        assert "1 of 4 answered" in after[f"/cycles/{cycle.pk}/"]
        assert '"answered": 1' in after[f"/api/cycles/{cycle.pk}/progress/"]
    assert set(before) == set(after)
    # and the survey's own link pages are not the manager's to see
    assert not [url for url in after if url.startswith(("/s/", "/survey/"))]
