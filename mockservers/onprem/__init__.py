"""The fake on-premises estate: the Exchange servers' and Entra Connect's hosts, and public DNS.

`estate` is the model (hosts, services, certificates, SMTP receive log) and `zones` its DNS
zones; `setup` is Exchange Setup's /m:Uninstall against the fake AD, `api` the HTTP layer
(twisted.web) and `dns_server` the authoritative DNS server (twisted.names, UDP and TCP on one
port). `errors` holds the API's error type and JSON body.
"""
