"""In-process fake servers: Active Directory over LDAP and Exchange Online / Graph over HTTP."""
