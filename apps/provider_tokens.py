"""The token a private clone uses: the app owner's Git-provider token, if they signed in with one."""


def clone_token_for(app) -> tuple[str, str]:
    """(token, user name for HTTP basic auth); ("", …) when the owner has no provider token."""
    return "", "x-access-token"
