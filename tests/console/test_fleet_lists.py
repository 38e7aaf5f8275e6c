"""Meter Management lists follow the area picked in the top bar."""

from __future__ import annotations

import re

import pytest

from tests.console.test_i18n import _sign_in


def _sim_numbers(page: str) -> set[str]:
    return set(re.findall(r"SIM-[A-Z0-9]+", page))


@pytest.fixture
def sims(app, console_fleet) -> None:
    """SIM cards in meters N1 (Kano, under North), N3 (North) and S1 (South), and one spare in no meter."""
    from app.extensions import db
    from app.models import Meter, Sim

    with app.app_context():
        for number in ("N1", "N3", "S1"):
            sim = Sim(number=f"SIM-{number}", ip_address=f"10.8.0.{len(number)}", port=4059)
            db.session.add(sim)
            db.session.flush()
            db.session.get(Meter, console_fleet.meters[number]).sim_id = sim.id
        db.session.add(Sim(number="SIM-SPARE", ip_address="10.8.0.99", port=4059))
        db.session.commit()


def test_sim_list_follows_the_selected_area(client, make_user, console_fleet, sims):
    """A SIM is in the area of its meter (sub-areas included); a SIM in no meter shows only with no area picked."""
    _sign_in(client, make_user, "Admin")
    everything = {"SIM-N1", "SIM-N3", "SIM-S1", "SIM-SPARE"}
    assert _sim_numbers(client.get("/simview/list/").get_data(as_text=True)) == everything
    north = client.get(f"/simview/list/?area={console_fleet.areas['North']}").get_data(as_text=True)
    assert _sim_numbers(north) == {"SIM-N1", "SIM-N3"}  # N1 sits in Kano, under North
    # The choice is kept in the session, as on every other page.
    assert _sim_numbers(client.get("/simview/list/").get_data(as_text=True)) == {"SIM-N1", "SIM-N3"}
    kano = client.get(f"/simview/list/?area={console_fleet.areas['Kano']}").get_data(as_text=True)
    assert _sim_numbers(kano) == {"SIM-N1"}
    south = client.get(f"/simview/list/?area={console_fleet.areas['South']}").get_data(as_text=True)
    assert _sim_numbers(south) == {"SIM-S1"}
    assert _sim_numbers(client.get("/simview/list/?area=").get_data(as_text=True)) == everything


def test_sim_csv_export_follows_the_selected_area(client, make_user, console_fleet, sims):
    """The list's Export CSV downloads the SIM cards the list shows: those of the area picked, none spare."""
    _sign_in(client, make_user, "Admin")
    rows = lambda resp: [line.split(",")[0] for line in resp.get_data(as_text=True).splitlines()[1:]]  # noqa: E731
    assert rows(client.get("/import/sim/export")) == ["SIM-N1", "SIM-N3", "SIM-S1", "SIM-SPARE"]
    client.get(f"/simview/list/?area={console_fleet.areas['North']}")  # picked in the top bar, kept in the session
    assert rows(client.get("/import/sim/export")) == ["SIM-N1", "SIM-N3"]
    assert rows(client.get(f"/import/sim/export?area={console_fleet.areas['South']}")) == ["SIM-S1"]
    client.get("/simview/list/?area=")
    assert len(rows(client.get("/import/sim/export"))) == 4
