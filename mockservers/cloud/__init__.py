"""The fake Exchange Online / Entra ID: Graph users and delta, the EXO admin API, OAuth2."""
