"""The header's team switcher: the team whose apps the dashboard's list shows (and a new
app goes into by default), kept in the session; none chosen is All teams.

The choice is read only through chosen_team(), which asks the membership every time: a
user removed from the chosen team (or whose team was deleted) is back on All teams.
"""

from apps.models import Team
from deployments.services.teams import teams_of

SESSION_KEY = "slipway.team"


def chosen_team(request) -> Team | None:
    team_id = request.session.get(SESSION_KEY)
    if team_id is None:
        return None
    team = teams_of(request.user).filter(pk=team_id).first()
    if team is None:
        del request.session[SESSION_KEY]  # no longer theirs: quietly All teams again
    return team


def choose_team(request, team: Team | None) -> None:
    """Remember `team` (one the caller checked the user is in), or All teams for None."""
    if team is None:
        request.session.pop(SESSION_KEY, None)
    else:
        request.session[SESSION_KEY] = team.pk
