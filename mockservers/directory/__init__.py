"""The fake Active Directory: an LDAPv3 server over our own indexed store."""
